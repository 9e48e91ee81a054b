//! CPU twin of `shaders/matmul.wgsl`, and the CPU backend's GEMM: C[M,N] = A[M,K] · B (B [K,N]) or A · Bᵀ
//! (B [N,K]) + bias[N], in f32 with f32 accumulation like the kernel. On x86-64 with AVX-512 the product is
//! medpick's own engine (`sgemm.rs`: a 14 × 32 AVX-512 micro-kernel, B packed once per call and shared by the
//! threads, a model's weights packed once per model); elsewhere matrixmultiply's `sgemm` (AVX2+FMA/SSE2 on
//! x86-64, NEON on aarch64, simd128 where the wasm build enables it), C split over its rows across the CPU
//! backend's threads, each task an independent sgemm. A value never depends on the thread count.
//! matrixmultiply was chosen over the `gemm` crate by measurement (docs/cpu-backend.md): 130–148 GFLOP/s vs
//! 76–85 on one core of the 2-core AVX-512 machine at ViT/TinyViT shapes; it has no AVX-512 kernel.

use super::par::{self, SendPtr};

pub fn matmul(a: &[f32], b: &[f32], bias: Option<&[f32]>, m: usize, n: usize, k: usize, trans_b: bool) -> Vec<f32> {
    matmul_then(a, b, bias, m, n, k, trans_b, |_| {})
}

/// The GEMM with `epilogue` applied to each finished block of rows of C (bias already added), while it is still
/// in cache: GELU for `matmul_gelu`.
#[allow(clippy::too_many_arguments)] // the GEMM signature and its epilogue
pub fn matmul_then(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
    epilogue: impl Fn(&mut [f32]) + Sync + Send,
) -> Vec<f32> {
    assert!(a.len() >= m * k && b.len() >= k * n, "matmul twin: operands shorter than the shape");
    if let Some(bias) = bias {
        assert!(bias.len() >= n, "matmul twin: bias shorter than N");
    }
    // B's strides as sgemm reads it: [K,N] row-major, or Bᵀ of a [N,K] row-major matrix.
    let (rsb, csb) = if trans_b { (1, k as isize) } else { (n as isize, 1) };
    let finish = |task_rows: &mut [f32]| {
        add_bias(task_rows, bias, n);
        epilogue(task_rows);
    };
    if let Some(c) = super::sgemm::gemm_rows(a, b, None, m, n, k, trans_b, &finish) {
        return c;
    }
    let mut c = vec![0f32; m * n];
    if m == 0 || n == 0 {
        return c;
    }
    let threads = par::threads();
    if threads > 1 && m < 512 && n >= 128 * threads && k > 0 {
        // Few rows (a weight gradient: M = channels, K = pixels): split the columns of C instead, so B is packed
        // once in all (each row block would pack all of it again). Each task owns columns j0..j1 of every row.
        let per = n.div_ceil(threads).div_ceil(16) * 16;
        let cptr = SendPtr(c.as_mut_ptr());
        par::map(n.div_ceil(per), |t| {
            let (j0, j1) = (t * per, ((t + 1) * per).min(n));
            let boff = if trans_b { j0 * k } else { j0 };
            // SAFETY: A [m, k] and B's columns j0..j1 lie inside the slices checked by the assert; the task writes
            // only columns j0..j1 of C ([m, n], row stride n), disjoint from every other task's.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    j1 - j0,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b[boff..].as_ptr(),
                    rsb,
                    csb,
                    0.0,
                    cptr.get().add(j0),
                    n as isize,
                    1,
                );
            }
        });
        let rows = (1usize << 16).div_ceil(n).max(1);
        par::for_chunks(&mut c, rows * n, |_, blk| finish(blk));
        return c;
    }
    let rows = row_block(m, n, k, threads);
    par::for_chunks(&mut c, rows * n, |task, cblk| {
        let r0 = task * rows;
        let r = cblk.len() / n;
        if k > 0 {
            // SAFETY: A's rows r0..r0+r ([r, k], row stride k) and B ([k, n] under the strides above) lie inside
            // the slices checked by the assert; C's block is exactly [r, n] with row stride n, owned by this task.
            unsafe {
                matrixmultiply::sgemm(
                    r,
                    k,
                    n,
                    1.0,
                    a[r0 * k..].as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    rsb,
                    csb,
                    0.0,
                    cblk.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
        }
        finish(cblk);
    });
    c
}

/// [`matmul_then`] with B a model weight kept packed for the GEMM ([`super::sgemm::PackedWeight`]).
#[allow(clippy::too_many_arguments)] // the GEMM signature and its epilogue
pub fn matmul_weight(
    a: &[f32],
    w: &super::sgemm::PackedWeight,
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
    epilogue: impl Fn(&mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let finish = |rows: &mut [f32]| {
        add_bias(rows, bias, n);
        epilogue(rows);
    };
    match super::sgemm::gemm_rows_weight(a, w, m, n, k, trans_b, &finish) {
        Some(c) => c,
        None => matmul_then(a, w.values(), bias, m, n, k, trans_b, epilogue),
    }
}

/// Each row of `rows` (n values each) += bias.
fn add_bias(rows: &mut [f32], bias: Option<&[f32]>, n: usize) {
    if let Some(bias) = bias {
        for row in rows.chunks_exact_mut(n) {
            for (v, &bv) in row.iter_mut().zip(&bias[..n]) {
                *v += bv;
            }
        }
    }
}

/// Rows of C per task. Each task is one sgemm that packs all of B again, so a large B (k·n ≥ 128K values: DINOv2's
/// and TinyViT's later stages) gets blocks of 512–1023 rows (packing then costs a few % of the block's
/// 2·rows·k·n flops), a small one blocks of about 64K values of C (at least 256 rows) that the bias and the
/// epilogue find in cache; the block count aims at a multiple of the threads where there are several.
fn row_block(m: usize, n: usize, k: usize, threads: usize) -> usize {
    let target = if k * n >= 1 << 17 { 512 } else { (1usize << 16).div_ceil(n.max(1)).max(256) };
    let mut blocks = (m / target).max(1);
    if threads > 1 && m >= 2 * threads {
        blocks = blocks.div_ceil(threads) * threads;
    }
    m.div_ceil(blocks).max(1)
}
