//! CPU twin of `shaders/dwconv2d.wgsl`: depthwise convolution, channels-last, zero padding, f32 accumulation in
//! the kernel's order (bias, then taps row by row). The channel loop is innermost so it runs in SIMD lanes;
//! output rows are split across the CPU backend's threads.

use super::par;
use crate::gpu::ops::ConvGeom;

pub fn dwconv2d(x: &[f32], wt: &[f32], bias: &[f32], g: ConvGeom) -> Vec<f32> {
    let (ho, wo) = g.out_hw();
    let c = g.c;
    assert!(x.len() >= g.h * g.w * c && wt.len() >= c * g.k * g.k && bias.len() >= c, "dwconv2d twin: short operand");
    let mut y = vec![0f32; ho * wo * c];
    if y.is_empty() {
        return y;
    }
    // Taps laid out [ky, kx, C] so each tap is one contiguous run over the channels.
    let kk = g.k * g.k;
    let mut taps = vec![0f32; kk * c];
    for ch in 0..c {
        for t in 0..kk {
            taps[t * c + ch] = wt[ch * kk + t];
        }
    }
    let rows = par::rows_per_task(ho, wo * c * kk, 1 << 16);
    par::for_chunks(&mut y, rows * wo * c, |task, yblk| {
        for (r, yrow) in yblk.chunks_exact_mut(wo * c).enumerate() {
            let oy = task * rows + r;
            for ox in 0..wo {
                let acc = &mut yrow[ox * c..(ox + 1) * c];
                acc.copy_from_slice(&bias[..c]);
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
                        let xs = &x[(iy as usize * g.w + ix as usize) * c..][..c];
                        let ts = &taps[(ky * g.k + kx) * c..][..c];
                        for ((a, &xv), &tv) in acc.iter_mut().zip(xs).zip(ts) {
                            *a += xv * tv;
                        }
                    }
                }
            }
        }
    });
    y
}
