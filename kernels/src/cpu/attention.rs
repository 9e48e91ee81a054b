//! CPU twin of `shaders/attention.wgsl`: per window and head, softmax(Q·Kᵀ·scale (+ TinyViT relative bias))·V
//! with max subtraction, in f32 like the kernel. Each (window, head) is one task: Q, K and V gathered into
//! contiguous [n, hd] blocks (read in place where a window's tokens are evenly spaced rows), S = scale·Q·Kᵀ + bias as one sgemm onto the head's expanded bias, the softmax
//! numerators in SIMD lanes, O = P·V as sgemm, each output row divided by its denominator. Tasks run across the
//! CPU backend's threads; each computes alone, so the result does not depend on the thread count.

use std::cell::RefCell;

use super::par::SendPtr;
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
    assert!(qkv.len() >= g.tokens() * g.qkv_stride, "attention: qkv shorter than the geometry");
    // A window whose tokens are evenly spaced rows (a sequence, or windows as wide as the grid) is read in place
    // and its output written in place; other windows are gathered into contiguous blocks and scattered back.
    let in_place = g.ws_h == 1 || g.ws_w == g.grid_w;
    let outp = SendPtr(out.as_mut_ptr());
    par::map(nx * ny * g.heads, |job| {
        let (win, h) = (job / g.heads, job % g.heads);
        let hb = h * g.head_stride;
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let blocks = if in_place { 0 } else { 4 * n * hd };
            scratch.resize(blocks + n * n, 0.0);
            let (qkvo, s) = scratch.split_at_mut(blocks);
            let (qp, kp, vp, rs) = if in_place {
                let base = token(win, 0) * g.qkv_stride + hb;
                (qkv[base..].as_ptr(), qkv[base + g.k_off..].as_ptr(), qkv[base + g.v_off..].as_ptr(), g.qkv_stride)
            } else {
                let (q, rest) = qkvo.split_at_mut(n * hd);
                let (k, rest) = rest.split_at_mut(n * hd);
                let v = &mut rest[..n * hd];
                for t in 0..n {
                    let base = token(win, t) * g.qkv_stride + hb;
                    q[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base..base + hd]);
                    k[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base + g.k_off..base + g.k_off + hd]);
                    v[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base + g.v_off..base + g.v_off + hd]);
                }
                (q.as_ptr(), k.as_ptr(), v.as_ptr(), hd)
            };
            let beta = match &bias_full {
                Some(full) => {
                    s.copy_from_slice(&full[h * n * n..(h + 1) * n * n]);
                    1.0
                }
                None => 0.0,
            };
            // SAFETY: Q and K are n rows of hd values, row stride rs, inside qkv (asserted above) or the scratch;
            // s is [n, n].
            unsafe { super::sgemm::sgemm(n, hd, n, g.scale, qp, rs as isize, 1, kp, 1, rs as isize, beta, s.as_mut_ptr(), n as isize, 1) };
            let mut z = vec![0f32; n];
            for (row, zi) in s.chunks_exact_mut(n).zip(&mut z) {
                *zi = math::softmax_numerators(row);
            }
            // O = P·V: in place into this job's (tokens, head) block of `out`, or into scratch and scattered.
            let (op, ors) = if in_place {
                // SAFETY: the block starts inside out (token(win, 0) < tokens).
                (unsafe { outp.get().add(token(win, 0) * c + h * hd) }, c)
            } else {
                (qkvo[3 * n * hd..].as_mut_ptr(), hd)
            };
            // SAFETY: s is [n, n], V is n rows of hd values with row stride rs; O is n rows of hd values with row
            // stride ors, inside out or the scratch; no other job writes these (token, head) values.
            unsafe { super::sgemm::sgemm(n, n, hd, 1.0, s.as_ptr(), n as isize, 1, vp, rs as isize, 1, 0.0, op, ors as isize, 1) };
            for (t, &zi) in z.iter().enumerate() {
                let inv = 1.0 / zi;
                // SAFETY: row t of O as above.
                let row = unsafe { std::slice::from_raw_parts_mut(op.add(t * ors), hd) };
                for x in row.iter_mut() {
                    *x *= inv;
                }
                if !in_place {
                    // SAFETY: this job's (token, head) values of out.
                    let dst = unsafe { std::slice::from_raw_parts_mut(outp.get().add(token(win, t) * c + h * hd), hd) };
                    dst.copy_from_slice(row);
                }
            }
        });
    });
    out
}
