//! CPU twin of `shaders/im2col.wgsl`: Y[oy·Wo + ox, (c·k + ky)·k + kx] = X[oy·s − p + ky, ox·s − p + kx, c].
//! Output rows (one per output pixel row) split across the CPU backend's threads; each tap reads a pixel's
//! channels as one contiguous run.
//!
//! Also the CPU backend's convolution as im2col + GEMM done a block of output pixels at a time ([`conv2d`],
//! [`conv2d_weight_grad`]), so the k²-times-larger column matrix is never built whole: a block's columns are
//! multiplied while they are in cache (the segmentation head's 3×3 conv over 256 channels would otherwise write
//! and read 37 MB per image, twice per training step).

use super::par;
use crate::gpu::ops::ConvGeom;

/// Output pixels per block of the blocked convolution (a block's columns: 256 × k²·C floats, 2.4 MB at 3×3×256).
const CONV_BLOCK: usize = 256;

pub fn im2col(x: &[f32], g: ConvGeom) -> Vec<f32> {
    let (ho, wo) = g.out_hw();
    let cols = g.c * g.k * g.k;
    let mut y = vec![0f32; ho * wo * cols];
    if y.is_empty() {
        return y;
    }
    let rows = par::rows_per_task(ho, wo * cols, 1 << 15);
    par::for_chunks(&mut y, rows * wo * cols, |task, yblk| im2col_pixels(x, g, task * rows * wo, yblk));
    y
}

/// The im2col rows of output pixels `p0 .. p0 + out.len() / (k²·C)` (pixel p = oy·Wo + ox) into `out`, which
/// must be zero where a tap falls in the padding.
pub fn im2col_pixels(x: &[f32], g: ConvGeom, p0: usize, out: &mut [f32]) {
    let (_, wo) = g.out_hw();
    let cols = g.c * g.k * g.k;
    let kk = g.k * g.k;
    for (r, out) in out.chunks_exact_mut(cols).enumerate() {
        let (oy, ox) = ((p0 + r) / wo, (p0 + r) % wo);
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

/// Y [P, N] = im2col(X, g) · Wᵀ + bias (W [N, k²·C]), one block of CONV_BLOCK output pixels per task; equal to
/// `matmul(im2col(x, g), w, bias, P, N, k²·C, true)`.
pub fn conv2d(x: &[f32], g: ConvGeom, w: &[f32], bias: Option<&[f32]>, n: usize) -> Vec<f32> {
    let (ho, wo) = g.out_hw();
    let (p, k) = (ho * wo, g.c * g.k * g.k);
    assert!(w.len() >= n * k, "conv2d: weights shorter than N × k²·C");
    let mut y = vec![0f32; p * n];
    if y.is_empty() {
        return y;
    }
    par::for_chunks(&mut y, CONV_BLOCK * n, |task, yblk| {
        let rows = yblk.len() / n;
        let mut cols = vec![0f32; rows * k];
        im2col_pixels(x, g, task * CONV_BLOCK, &mut cols);
        // SAFETY: cols is [rows, k] (row stride k), W is read as Wᵀ [k, n] (strides 1, k) inside w's N·k values,
        // and yblk is [rows, n] with row stride n.
        unsafe {
            super::sgemm::sgemm(
                rows,
                k,
                n,
                1.0,
                cols.as_ptr(),
                k as isize,
                1,
                w.as_ptr(),
                1,
                k as isize,
                0.0,
                yblk.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        if let Some(b) = bias {
            for row in yblk.chunks_exact_mut(n) {
                for (v, &bv) in row.iter_mut().zip(b) {
                    *v += bv;
                }
            }
        }
    });
    y
}

/// dW [N, k²·C] = dYᵀ · im2col(X, g) for dY [P, N]: each block of CONV_BLOCK output pixels gives a partial
/// product from its own columns, and the partials are summed in block order, so the result does not depend on
/// the thread count.
pub fn conv2d_weight_grad(x: &[f32], g: ConvGeom, dy: &[f32], n: usize) -> Vec<f32> {
    let (ho, wo) = g.out_hw();
    let (p, k) = (ho * wo, g.c * g.k * g.k);
    assert!(dy.len() >= p * n, "conv2d_weight_grad: dY shorter than P × N");
    let blocks = p.div_ceil(CONV_BLOCK);
    let mut parts = vec![0f32; blocks * n * k];
    par::for_chunks(&mut parts, n * k, |b, part| {
        let p0 = b * CONV_BLOCK;
        let rows = CONV_BLOCK.min(p - p0);
        let mut cols = vec![0f32; rows * k];
        im2col_pixels(x, g, p0, &mut cols);
        // SAFETY: dY's rows p0..p0+rows are read as dYᵀ [n, rows] (strides 1, n) inside dy; cols is [rows, k];
        // part is [n, k] with row stride k.
        unsafe {
            super::sgemm::sgemm(
                n,
                rows,
                k,
                1.0,
                dy[p0 * n..].as_ptr(),
                1,
                n as isize,
                cols.as_ptr(),
                k as isize,
                1,
                0.0,
                part.as_mut_ptr(),
                k as isize,
                1,
            );
        }
    });
    let mut dw = vec![0f32; n * k];
    let per = par::rows_per_task(n * k, blocks, 1 << 14);
    par::for_chunks(&mut dw, per, |t, out| {
        for (i, o) in out.iter_mut().enumerate() {
            let j = t * per + i;
            *o = (0..blocks).map(|b| parts[b * n * k + j]).sum();
        }
    });
    dw
}
