//! CPU twin of `shaders/layernorm_backward.wgsl`: the gradient through a LayerNorm without affine parameters,
//! dx = (dy − mean(dy) − ŷ·mean(dy·ŷ)) / σ per row, in f64.

pub fn layernorm_backward(x: &[f32], dy: &[f32], rows: usize, d: usize, eps: f32) -> Vec<f32> {
    let mut dx = vec![0f32; rows * d];
    for r in 0..rows {
        let xr = &x[r * d..(r + 1) * d];
        let gr = &dy[r * d..(r + 1) * d];
        let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        let yh: Vec<f64> = xr.iter().map(|&v| (v as f64 - mean) * rstd).collect();
        let mdy = gr.iter().map(|&g| g as f64).sum::<f64>() / d as f64;
        let mdyy = gr.iter().zip(&yh).map(|(&g, &y)| g as f64 * y).sum::<f64>() / d as f64;
        for j in 0..d {
            dx[r * d + j] = ((gr[j] as f64 - mdy - yh[j] * mdyy) * rstd) as f32;
        }
    }
    dx
}
