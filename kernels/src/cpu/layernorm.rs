//! CPU twin of `shaders/layernorm.wgsl`: (x − μ)/sqrt(σ² + eps)·w + b over the last dim, biased variance; the
//! row statistics in f64 (two passes, as exact as the kernel's or better), rows split across threads.

use super::par;

pub fn layernorm(x: &[f32], w: &[f32], b: &[f32], rows: usize, d: usize, eps: f32) -> Vec<f32> {
    assert!(x.len() >= rows * d && w.len() >= d && b.len() >= d, "layernorm twin: short operand");
    let mut y = vec![0f32; rows * d];
    if d == 0 {
        return y;
    }
    let per = par::rows_per_task(rows, d, 1 << 14);
    par::for_chunks(&mut y, per * d, |task, yblk| {
        for (r, yrow) in yblk.chunks_exact_mut(d).enumerate() {
            let row = &x[(task * per + r) * d..][..d];
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            let rstd = 1.0 / (var + eps as f64).sqrt();
            let (mean, rstd) = (mean as f32, rstd as f32);
            for ((o, &v), (&wc, &bc)) in yrow.iter_mut().zip(row).zip(w.iter().zip(b)) {
                *o = (v - mean) * rstd * wc + bc;
            }
        }
    });
    y
}
