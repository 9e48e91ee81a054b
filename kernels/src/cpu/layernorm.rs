//! CPU twin of `shaders/layernorm.wgsl`: (x − μ)/sqrt(σ² + eps)·w + b over the last dim, biased variance; the
//! row statistics in f64 (two passes in eight f64 lanes, as exact as the kernel's or better), rows split across
//! threads.

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
            norm_row(&x[(task * per + r) * d..][..d], w, b, eps, yrow);
        }
    });
    y
}

super::math::multiversion! {
    /// One row: its mean and biased variance in two passes of eight f64 lanes (vectorised; the lanes' order does
    /// not depend on the SIMD level), then y = (x − μ)·rstd·w + b in f32.
    fn norm_row(row: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32]) => norm_row_body
}

#[inline(always)]
fn norm_row_body(row: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32]) {
    let (mean, var) = row_stats(row);
    let rstd = 1.0 / (var + eps as f64).sqrt();
    let (mean, rstd) = (mean as f32, rstd as f32);
    for ((o, &v), (&wc, &bc)) in y.iter_mut().zip(row).zip(w.iter().zip(b)) {
        *o = (v - mean) * rstd * wc + bc;
    }
}

#[inline(always)]
fn row_stats(row: &[f32]) -> (f64, f64) {
    let d = row.len() as f64;
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    let mut lanes = [0f64; 8];
    for x in chunks.clone() {
        for l in 0..8 {
            lanes[l] += x[l] as f64;
        }
    }
    let mean = (lanes.iter().sum::<f64>() + tail.iter().map(|&v| v as f64).sum::<f64>()) / d;
    let mut lanes = [0f64; 8];
    for x in chunks {
        for l in 0..8 {
            let c = x[l] as f64 - mean;
            lanes[l] += c * c;
        }
    }
    let var = (lanes.iter().sum::<f64>() + tail.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>()) / d;
    (mean, var)
}
