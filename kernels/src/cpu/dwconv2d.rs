//! CPU twin of `shaders/dwconv2d.wgsl`: depthwise convolution, channels-last, zero padding, f64 accumulation.

use crate::gpu::ops::ConvGeom;

pub fn dwconv2d(x: &[f32], wt: &[f32], bias: &[f32], g: ConvGeom) -> Vec<f32> {
    let (ho, wo) = g.out_hw();
    let mut y = vec![0f32; ho * wo * g.c];
    for oy in 0..ho {
        for ox in 0..wo {
            for ch in 0..g.c {
                let mut acc = bias[ch] as f64;
                for ky in 0..g.k {
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    for kx in 0..g.k {
                        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                        if ix < 0 || ix >= g.w as isize {
                            continue;
                        }
                        acc += x[(iy as usize * g.w + ix as usize) * g.c + ch] as f64
                            * wt[(ch * g.k + ky) * g.k + kx] as f64;
                    }
                }
                y[(oy * wo + ox) * g.c + ch] = acc as f32;
            }
        }
    }
    y
}
