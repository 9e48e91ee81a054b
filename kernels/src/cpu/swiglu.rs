//! CPU twin of `shaders/swiglu.wgsl`: y[r, j] = silu(x[r, j]) · x[r, H + j] over rows of [x1 | x2], in f64.

pub fn swiglu(x: &[f32], rows: usize, hidden: usize) -> Vec<f32> {
    let mut y = Vec::with_capacity(rows * hidden);
    for r in 0..rows {
        let row = &x[r * 2 * hidden..(r + 1) * 2 * hidden];
        for j in 0..hidden {
            let a = row[j] as f64;
            let silu = a / (1.0 + (-a).exp());
            y.push((silu * row[hidden + j] as f64) as f32);
        }
    }
    y
}
