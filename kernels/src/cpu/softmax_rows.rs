//! CPU twin of `shaders/softmax_rows.wgsl`: row-wise softmax with max subtraction, in f64.

pub fn softmax_rows(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut y = vec![0f32; rows * cols];
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let z: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        for (c, &v) in row.iter().enumerate() {
            y[r * cols + c] = ((v as f64 - m).exp() / z) as f32;
        }
    }
    y
}
