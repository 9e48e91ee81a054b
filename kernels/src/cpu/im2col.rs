//! CPU twin of `shaders/im2col.wgsl`: Y[oy·Wo + ox, (c·k + ky)·k + kx] = X[oy·s − p + ky, ox·s − p + kx, c].

use crate::gpu::ops::ConvGeom;

pub fn im2col(x: &[f32], g: ConvGeom) -> Vec<f32> {
    let (ho, wo) = g.out_hw();
    let cols = g.c * g.k * g.k;
    let mut y = vec![0f32; ho * wo * cols];
    for oy in 0..ho {
        for ox in 0..wo {
            for ch in 0..g.c {
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                        if iy >= 0 && iy < g.h as isize && ix >= 0 && ix < g.w as isize {
                            y[(oy * wo + ox) * cols + (ch * g.k + ky) * g.k + kx] =
                                x[(iy as usize * g.w + ix as usize) * g.c + ch];
                        }
                    }
                }
            }
        }
    }
    y
}
