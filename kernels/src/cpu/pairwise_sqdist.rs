//! CPU twin of `shaders/pairwise_sqdist.wgsl`: D[i,j] = max(‖a_i‖² + ‖b_j‖² − 2·a_i·b_j, 0), in f64 (the
//! selection strategies' reference arithmetic; stored as f32 like the kernel's output). The dot products are
//! matrixmultiply's `dgemm` over blocks of D (rows × columns) on the CPU backend's threads; each value is
//! computed the same way whatever the block or thread count.

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
    let b64: Vec<f64> = b[..m * d].iter().map(|&v| v as f64).collect();
    let col_blocks = m.div_ceil(BLOCK_COLS);
    // One task per block of BLOCK_ROWS rows; within it, column blocks in order (a scratch of one block).
    par::for_chunks(&mut out[..n * m], BLOCK_ROWS * m, |task, rows_out| {
        let r0 = task * BLOCK_ROWS;
        let r = rows_out.len() / m;
        let a64: Vec<f64> = a[r0 * d..(r0 + r) * d].iter().map(|&v| v as f64).collect();
        let mut dot = vec![0f64; r * BLOCK_COLS.min(m)];
        for cb in 0..col_blocks {
            let (c0, c1) = (cb * BLOCK_COLS, ((cb + 1) * BLOCK_COLS).min(m));
            let w = c1 - c0;
            if d > 0 {
                // SAFETY: a64 is [r, d] (row stride d), b64's rows c0..c1 are [w, d] read transposed (row stride
                // d), and `dot` holds r·w values written with row stride w.
                unsafe {
                    matrixmultiply::dgemm(
                        r,
                        d,
                        w,
                        1.0,
                        a64.as_ptr(),
                        d as isize,
                        1,
                        b64[c0 * d..].as_ptr(),
                        1,
                        d as isize,
                        0.0,
                        dot.as_mut_ptr(),
                        w as isize,
                        1,
                    );
                }
            } else {
                dot.iter_mut().for_each(|v| *v = 0.0);
            }
            for i in 0..r {
                let (ni, row) = (na[r0 + i], &mut rows_out[i * m + c0..i * m + c1]);
                for (j, o) in row.iter_mut().enumerate() {
                    *o = (ni + nb[c0 + j] - 2.0 * dot[i * w + j]).max(0.0) as f32;
                }
            }
        }
    });
}
