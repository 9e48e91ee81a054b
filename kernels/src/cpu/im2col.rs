//! CPU twin of `shaders/im2col.wgsl`: Y[oy·Wo + ox, (c·k + ky)·k + kx] = X[oy·s − p + ky, ox·s − p + kx, c].
//! Output rows (one per output pixel row) split across the CPU backend's threads; each tap reads a pixel's
//! channels as one contiguous run.

use super::par;
use crate::gpu::ops::ConvGeom;

pub fn im2col(x: &[f32], g: ConvGeom) -> Vec<f32> {
    let (ho, wo) = g.out_hw();
    let cols = g.c * g.k * g.k;
    let kk = g.k * g.k;
    let mut y = vec![0f32; ho * wo * cols];
    if y.is_empty() {
        return y;
    }
    let rows = par::rows_per_task(ho, wo * cols, 1 << 15);
    par::for_chunks(&mut y, rows * wo * cols, |task, yblk| {
        for (r, yrow) in yblk.chunks_exact_mut(wo * cols).enumerate() {
            let oy = task * rows + r;
            for ox in 0..wo {
                let out = &mut yrow[ox * cols..(ox + 1) * cols];
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
                        let src = &x[(iy as usize * g.w + ix as usize) * g.c..][..g.c];
                        let t = ky * g.k + kx;
                        for (ch, &v) in src.iter().enumerate() {
                            out[ch * kk + t] = v;
                        }
                    }
                }
            }
        }
    });
    y
}
