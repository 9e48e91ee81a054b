//! CPU twin of `shaders/reduce_rows.wgsl`: per-row sum, mean or max (sums in f64).

use crate::gpu::ops::Reduce;

pub fn reduce_rows(x: &[f32], rows: usize, cols: usize, op: Reduce) -> Vec<f32> {
    (0..rows)
        .map(|r| {
            let row = &x[r * cols..(r + 1) * cols];
            match op {
                Reduce::Sum => row.iter().map(|&v| v as f64).sum::<f64>() as f32,
                Reduce::Mean => (row.iter().map(|&v| v as f64).sum::<f64>() / cols as f64) as f32,
                Reduce::Max => row.iter().fold(-3.402_823_5e38f32, |a, &b| a.max(b)),
            }
        })
        .collect()
}
