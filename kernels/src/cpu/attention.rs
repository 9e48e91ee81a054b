//! CPU twin of `shaders/attention.wgsl`: per window and head, softmax(Q·Kᵀ·scale (+ TinyViT relative bias))·V
//! with max subtraction, in f64.

use crate::gpu::ops::AttnGeom;

pub fn attention(qkv: &[f32], biases: Option<&[f32]>, g: AttnGeom) -> Vec<f32> {
    let n = g.ws_h * g.ws_w;
    let c = g.heads * g.hd;
    let (nx, ny) = g.windows();
    let mut out = vec![0f32; g.tokens() * c];
    let token = |win: usize, t: usize| -> usize {
        let (wy, wx) = (win / nx, win % nx);
        (wy * g.ws_h + t / g.ws_w) * g.grid_w + wx * g.ws_w + t % g.ws_w
    };
    let mut logits = vec![0f64; n];
    for win in 0..nx * ny {
        for h in 0..g.heads {
            let hb = h * g.head_stride;
            for i in 0..n {
                let qb = token(win, i) * g.qkv_stride + hb;
                for (j, lj) in logits.iter_mut().enumerate() {
                    let kb = token(win, j) * g.qkv_stride + hb + g.k_off;
                    let mut s = 0f64;
                    for d in 0..g.hd {
                        s += qkv[qb + d] as f64 * qkv[kb + d] as f64;
                    }
                    s *= g.scale as f64;
                    if let Some(b) = biases {
                        let dr = (i / g.ws_w).abs_diff(j / g.ws_w);
                        let dc = (i % g.ws_w).abs_diff(j % g.ws_w);
                        s += b[h * n + dr * g.ws_w + dc] as f64;
                    }
                    *lj = s;
                }
                let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = logits.iter().map(|&s| (s - m).exp()).sum();
                let ob = token(win, i) * c + h * g.hd;
                for d in 0..g.hd {
                    let mut acc = 0f64;
                    for (j, &s) in logits.iter().enumerate() {
                        acc += (s - m).exp() * qkv[token(win, j) * g.qkv_stride + hb + g.v_off + d] as f64;
                    }
                    out[ob + d] = (acc / z) as f32;
                }
            }
        }
    }
    out
}
