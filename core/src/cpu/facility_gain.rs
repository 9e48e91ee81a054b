//! CPU twin of `shaders/facility_gain.wgsl` (f64 sums): facility location on unit vectors,
//! gain[r] = Σ_j max(0, (1 − D[r,j]/2) − max(0, 1 − mind[j]/2)), or with `potential` k-means++'s potential
//! decrease gain[r] = Σ_j max(0, mind[j] − D[r,j]).

pub fn facility_gain(dist: &[f32], mind: &[f32], rows: usize, cols: usize, potential: bool) -> Vec<f32> {
    (0..rows)
        .map(|r| {
            let g: f64 = (0..cols)
                .map(|j| {
                    let dd = dist[r * cols + j] as f64;
                    if potential {
                        return (mind[j] as f64 - dd).max(0.0);
                    }
                    let s = 1.0 - 0.5 * dd;
                    let m = (1.0 - 0.5 * mind[j] as f64).max(0.0);
                    (s - m).max(0.0)
                })
                .sum();
            g as f32
        })
        .collect()
}
