//! CPU twin of `shaders/attention.wgsl`: per window and head, softmax(Q·Kᵀ·scale (+ TinyViT relative bias))·V
//! with max subtraction, in f32 like the kernel. Each (window, head) is one task: Q, K and V gathered into
//! contiguous [n, hd] blocks, S = Q·Kᵀ and O = P·V as sgemm, one exp per logit. Tasks run across the CPU backend's
//! threads; each computes alone, so the result does not depend on the thread count.

use super::par;
use crate::gpu::ops::AttnGeom;

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
    let jobs = nx * ny * g.heads;
    let blocks = par::map(jobs, |job| {
        let (win, h) = (job / g.heads, job % g.heads);
        let hb = h * g.head_stride;
        let mut q = vec![0f32; n * hd];
        let mut k = vec![0f32; n * hd];
        let mut v = vec![0f32; n * hd];
        for t in 0..n {
            let base = token(win, t) * g.qkv_stride + hb;
            q[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base..base + hd]);
            k[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base + g.k_off..base + g.k_off + hd]);
            v[t * hd..(t + 1) * hd].copy_from_slice(&qkv[base + g.v_off..base + g.v_off + hd]);
        }
        let mut s = vec![0f32; n * n];
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
                0.0,
                s.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        for (i, row) in s.chunks_exact_mut(n).enumerate() {
            if let Some(b) = biases {
                let bh = &b[h * n..];
                let (ri, ci) = (i / g.ws_w, i % g.ws_w);
                for (j, sj) in row.iter_mut().enumerate() {
                    let dr = ri.abs_diff(j / g.ws_w);
                    let dc = ci.abs_diff(j % g.ws_w);
                    *sj += bh[dr * g.ws_w + dc];
                }
            }
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            super::math::map_in_place(row, |v| super::math::exp_f32(v - m));
            let z: f32 = row.iter().sum();
            let inv = 1.0 / z;
            for sj in row.iter_mut() {
                *sj *= inv;
            }
        }
        // SAFETY: s is [n, n], v is [n, hd], q (reused for O) is [n, hd].
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
                q.as_mut_ptr(),
                hd as isize,
                1,
            );
        }
        q
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
