//! CPU twin of `shaders/pairwise_sqdist.wgsl`: D[i,j] = max(‖a_i‖² + ‖b_j‖² − 2·a_i·b_j, 0), in f64 (the
//! selection strategies' reference arithmetic; stored as f32 like the kernel's output). The dot products are
//! matrixmultiply's `dgemm` over blocks of D (64 rows × 1024 columns), one task per block on the CPU backend's
//! threads, each converting only its own rows and columns to f64: a few rows against a wide pool (k-means++
//! trials, facility-location candidates) split over the columns, and nothing the size of the pool is copied.
//! Each value is computed the same way whatever the block or thread count.

use super::par;

/// Rows and columns of D per task.
const BLOCK_ROWS: usize = 64;
const BLOCK_COLS: usize = 1024;

pub fn pairwise_sqdist(a: &[f32], b: &[f32], n: usize, m: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * m];
    pairwise_sqdist_into(a, b, &mut out, n, m, d);
    out
}

/// [`pairwise_sqdist`] into `out` [n, m].
pub fn pairwise_sqdist_into(a: &[f32], b: &[f32], out: &mut [f32], n: usize, m: usize, d: usize) {
    assert!(a.len() >= n * d && b.len() >= m * d && out.len() >= n * m, "pairwise_sqdist twin: short operands");
    if n == 0 || m == 0 {
        return;
    }
    let norms = |x: &[f32], rows: usize| -> Vec<f64> {
        par::map(rows, |i| x[i * d..(i + 1) * d].iter().map(|&v| v as f64 * v as f64).sum())
    };
    let (na, nb) = (norms(a, n), norms(b, m));
    let (row_blocks, col_blocks) = (n.div_ceil(BLOCK_ROWS), m.div_ceil(BLOCK_COLS));
    let dst = par::SendPtr(out.as_mut_ptr());
    par::map(row_blocks * col_blocks, |t| {
        let (rb, cb) = (t / col_blocks, t % col_blocks);
        let (r0, r1) = (rb * BLOCK_ROWS, ((rb + 1) * BLOCK_ROWS).min(n));
        let (c0, c1) = (cb * BLOCK_COLS, ((cb + 1) * BLOCK_COLS).min(m));
        let (r, w) = (r1 - r0, c1 - c0);
        let a64: Vec<f64> = a[r0 * d..r1 * d].iter().map(|&v| v as f64).collect();
        let b64: Vec<f64> = b[c0 * d..c1 * d].iter().map(|&v| v as f64).collect();
        let mut dot = vec![0f64; r * w];
        if d > 0 {
            // SAFETY: a64 is [r, d] (row stride d), b64 is [w, d] read transposed (strides 1, d), and `dot` holds
            // r·w values written with row stride w.
            unsafe {
                matrixmultiply::dgemm(
                    r,
                    d,
                    w,
                    1.0,
                    a64.as_ptr(),
                    d as isize,
                    1,
                    b64.as_ptr(),
                    1,
                    d as isize,
                    0.0,
                    dot.as_mut_ptr(),
                    w as isize,
                    1,
                );
            }
        }
        for i in 0..r {
            let ni = na[r0 + i];
            let row: Vec<f32> =
                (0..w).map(|j| (ni + nb[c0 + j] - 2.0 * dot[i * w + j]).max(0.0) as f32).collect();
            // SAFETY: this task alone writes row r0 + i, columns c0..c1 of `out` ([n, m], checked above).
            unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), dst.get().add((r0 + i) * m + c0), row.len()) };
        }
    });
}
