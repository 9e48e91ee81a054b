//! CPU twin of `shaders/layernorm.wgsl`: (x − μ)/sqrt(σ² + eps)·w + b over the last dim, biased variance, in f64.

pub fn layernorm(x: &[f32], w: &[f32], b: &[f32], rows: usize, d: usize, eps: f32) -> Vec<f32> {
    let mut y = vec![0f32; rows * d];
    for r in 0..rows {
        let row = &x[r * d..(r + 1) * d];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        for c in 0..d {
            y[r * d + c] = ((row[c] as f64 - mean) * rstd * w[c] as f64 + b[c] as f64) as f32;
        }
    }
    y
}
