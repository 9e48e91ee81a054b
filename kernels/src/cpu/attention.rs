//! CPU twin of `shaders/attention.wgsl`: per window and head, softmax(Q·Kᵀ·scale (+ TinyViT relative bias))·V
//! with max subtraction, in f32 like the kernel. Each (window, head) is one task: Q, K and V gathered into
//! contiguous [n, hd] blocks, S = scale·Q·Kᵀ + bias as one sgemm onto the head's expanded bias, the softmax
//! numerators in SIMD lanes, O = P·V as sgemm, each output row divided by its denominator. Tasks run across the
//! CPU backend's threads; each computes alone, so the result does not depend on the thread count.

use std::cell::RefCell;

use super::{math, par};
use crate::gpu::ops::AttnGeom;

thread_local! {
    /// Per-thread scratch for one task (Q, K, V and S): reused, so a task allocates nothing.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

pub fn attention(qkv: &[f32], biases: Option<&[f32]>, g: AttnGeom) -> Vec<f32> {
    let n = g.ws_h * g.ws_w;
    let c = g.heads * g.hd;
    let hd = g.hd;
    let (nx, ny) = g.windows();
    let mut out = vec![0f32; g.tokens() * c];
    if n == 0 || hd == 0 {
        return out;
    }
    let token = |win: usize, t: usize| -> usize {
        let (wy, wx) = (win / nx, win % nx);
        (wy * g.ws_h + t / g.ws_w) * g.grid_w + wx * g.ws_w + t % g.ws_w
    };
    // The relative-position bias expanded to [heads, n, n] once (the kernel indexes it per logit).
    let bias_full: Option<Vec<f32>> = biases.map(|b| {
        let mut full = vec![0f32; g.heads * n * n];
        for h in 0..g.heads {
            for i in 0..n {
                let (ri, ci) = (i / g.ws_w, i % g.ws_w);
                for j in 0..n {
                    let (dr, dc) = (ri.abs_diff(j / g.ws_w), ci.abs_diff(j % g.ws_w));
                    full[(h * n + i) * n + j] = b[h * n + dr * g.ws_w + dc];
                }
            }
        }
        full
    });
    let blocks = par::map(nx * ny * g.heads, |job| {
        let (win, h) = (job / g.heads, job % g.heads);
        let hb = h * g.head_stride;
        let mut o = vec![0f32; n * hd];
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            scratch.resize(3 * n * hd + n * n, 0.0);
            let (q, rest) = scratch.split_at_mut(n * hd);
            let (k, rest) = rest.split_at_mut(n * hd);
            let (v, s) = rest.split_at_mut(n * hd);
            for t in 0..n {
                let base = token(win, t) * g.qkv_stride + hb;
                q[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base..base + hd]);
                k[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base + g.k_off..base + g.k_off + hd]);
                v[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base + g.v_off..base + g.v_off + hd]);
            }
            let beta = match &bias_full {
                Some(full) => {
                    s.copy_from_slice(&full[h * n * n..(h + 1) * n * n]);
                    1.0
                }
                None => 0.0,
            };
            // SAFETY: q, k are [n, hd] and s is [n, n], all row-major and exactly that long.
            unsafe {
                matrixmultiply::sgemm(
                    n,
                    hd,
                    n,
                    g.scale,
                    q.as_ptr(),
                    hd as isize,
                    1,
                    k.as_ptr(),
                    1,
                    hd as isize,
                    beta,
                    s.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
            let mut z = vec![0f32; n];
            for (row, zi) in s.chunks_exact_mut(n).zip(&mut z) {
                *zi = math::softmax_numerators(row);
            }
            // SAFETY: s is [n, n], v is [n, hd], o is [n, hd].
            unsafe {
                matrixmultiply::sgemm(
                    n,
                    n,
                    hd,
                    1.0,
                    s.as_ptr(),
                    n as isize,
                    1,
                    v.as_ptr(),
                    hd as isize,
                    1,
                    0.0,
                    o.as_mut_ptr(),
                    hd as isize,
                    1,
                );
            }
            for (row, &zi) in o.chunks_exact_mut(hd).zip(&z) {
                let inv = 1.0 / zi;
                for x in row {
                    *x *= inv;
                }
            }
        });
        o
    });
    for (job, o) in blocks.iter().enumerate() {
        let (win, h) = (job / g.heads, job % g.heads);
        for t in 0..n {
            let ob = token(win, t) * c + h * hd;
            out[ob..ob + hd].copy_from_slice(&o[t * hd..(t + 1) * hd]);
        }
    }
    out
}
