//! CPU twin of `shaders/cross_attention.wgsl`: per head, softmax(Q·Kᵀ·scale)·V between two sequences, with max
//! subtraction, in f64.

use crate::gpu::ops::CrossAttnGeom;

pub fn cross_attention(q: &[f32], k: &[f32], v: &[f32], g: CrossAttnGeom) -> Vec<f32> {
    let mut out = vec![0f32; g.nq * g.out_stride];
    let mut logits = vec![0f64; g.nk];
    for h in 0..g.heads {
        let off = h * g.hd;
        for i in 0..g.nq {
            let qb = i * g.q_stride + off;
            for (j, lj) in logits.iter_mut().enumerate() {
                let kb = j * g.k_stride + off;
                let s: f64 = (0..g.hd).map(|d| q[qb + d] as f64 * k[kb + d] as f64).sum();
                *lj = s * g.scale as f64;
            }
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logits.iter().map(|&s| (s - m).exp()).sum();
            for d in 0..g.hd {
                let acc: f64 =
                    logits.iter().enumerate().map(|(j, &s)| (s - m).exp() * v[j * g.v_stride + off + d] as f64).sum();
                out[i * g.out_stride + off + d] = (acc / z) as f32;
            }
        }
    }
    out
}
