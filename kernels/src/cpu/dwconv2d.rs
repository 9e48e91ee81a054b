//! CPU twin of `shaders/dwconv2d.wgsl`: depthwise convolution, channels-last, zero padding, f32 accumulation in
//! the kernel's order (bias, then taps row by row). The channel loop is innermost so it runs in SIMD lanes;
//! output rows are split across the CPU backend's threads.

use super::{math, par};
use crate::gpu::ops::ConvGeom;

pub fn dwconv2d(x: &[f32], wt: &[f32], bias: &[f32], g: ConvGeom) -> Vec<f32> {
    dwconv2d_then(x, wt, bias, g, |_| {})
}

/// The convolution with `epilogue` applied to each finished block of output rows while it is in cache (GELU).
pub fn dwconv2d_then(
    x: &[f32],
    wt: &[f32],
    bias: &[f32],
    g: ConvGeom,
    epilogue: impl Fn(&mut [f32]) + Sync + Send,
) -> Vec<f32> {
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
    // Blocks of output rows small enough to stay in cache for the epilogue (64K values), and several per thread.
    let rows = par::rows_per_task(ho, wo * c * kk, 1 << 16).min((1usize << 16).div_ceil(wo * c)).max(1);
    par::for_chunks(&mut y, rows * wo * c, |task, yblk| {
        dw_rows(x, &taps, bias, g, task * rows, yblk);
        epilogue(yblk);
    });
    y
}

/// Channels per register block: the block's accumulators and its k·k taps stay in SIMD registers while a
/// row of outputs is computed (the per-output order of the sum is the same as channel by channel).
const CB: usize = 16;

#[inline(always)]
fn dw_rows_body(x: &[f32], taps: &[f32], bias: &[f32], g: ConvGeom, oy0: usize, yblk: &mut [f32]) {
    let (_, wo) = g.out_hw();
    let c = g.c;
    for (r, yrow) in yblk.chunks_exact_mut(wo * c).enumerate() {
        let oy = oy0 + r;
        // The kernel rows of this output row that fall inside the image: (ky, iy).
        let rows: Vec<(usize, usize)> = (0..g.k)
            .filter_map(|ky| {
                let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                (iy >= 0 && iy < g.h as isize).then_some((ky, iy as usize))
            })
            .collect();
        // Output pixel by pixel, all its channel blocks in turn: the pixel's inputs are contiguous runs of C
        // values, read in order (a block at a time across a row strides by C and misses the cache).
        let full = c / CB * CB;
        for ox in 0..wo {
            let out = &mut yrow[ox * c..(ox + 1) * c];
            let mut c0 = 0;
            while c0 < full {
                dw_block(x, taps, bias, g, &rows, ox, c0, &mut out[c0..c0 + CB]);
                c0 += CB;
            }
            // The last channels, fewer than a block: one at a time, same order of the sum.
            for ch in full..c {
                let mut acc = bias[ch];
                for &(ky, iy) in &rows {
                    for kx in 0..g.k {
                        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                        if ix >= 0 && ix < g.w as isize {
                            acc += x[(iy * g.w + ix as usize) * c + ch] * taps[(ky * g.k + kx) * c + ch];
                        }
                    }
                }
                out[ch] = acc;
            }
        }
    }
}

/// Channels `c0 .. c0 + CB` of output pixel `ox`: the accumulators are a fixed-size array, so they live in a
/// SIMD register.
#[allow(clippy::too_many_arguments)] // the convolution's operands and the block's place
#[inline(always)]
fn dw_block(
    x: &[f32],
    taps: &[f32],
    bias: &[f32],
    g: ConvGeom,
    rows: &[(usize, usize)],
    ox: usize,
    c0: usize,
    out: &mut [f32],
) {
    let c = g.c;
    let mut acc: [f32; CB] = bias[c0..c0 + CB].try_into().expect("a whole block");
    for &(ky, iy) in rows {
        for kx in 0..g.k {
            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
            if ix < 0 || ix >= g.w as isize {
                continue;
            }
            let base = (iy * g.w + ix as usize) * c + c0;
            let xs: &[f32; CB] = x[base..base + CB].try_into().expect("a whole block");
            let t: &[f32; CB] = taps[(ky * g.k + kx) * c + c0..][..CB].try_into().expect("a whole block");
            for l in 0..CB {
                acc[l] += xs[l] * t[l];
            }
        }
    }
    out.copy_from_slice(&acc);
}

math::multiversion! {
    /// Output rows `oy0 ..` of the convolution into `yblk` (whole rows of [Wo, C]).
    fn dw_rows(x: &[f32], taps: &[f32], bias: &[f32], g: ConvGeom, oy0: usize, yblk: &mut [f32]) => dw_rows_body
}
