//! CPU twin of `shaders/facility_gain.wgsl`: gain[r] = Σ_j max(0, (1 − D[r,j]/2) − max(0, 1 − mind[j]/2)) in f64.

pub fn facility_gain(dist: &[f32], mind: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..rows)
        .map(|r| {
            let g: f64 = (0..cols)
                .map(|j| {
                    let s = 1.0 - 0.5 * dist[r * cols + j] as f64;
                    let m = (1.0 - 0.5 * mind[j] as f64).max(0.0);
                    (s - m).max(0.0)
                })
                .sum();
            g as f32
        })
        .collect()
}
