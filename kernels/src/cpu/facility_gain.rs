//! CPU twin of `shaders/facility_gain.wgsl` (f64 sums): facility location on unit vectors,
//! gain[r] = Σ_j max(0, (1 − D[r,j]/2) − max(0, 1 − mind[j]/2)), or with `potential` k-means++'s potential
//! decrease gain[r] = Σ_j max(0, mind[j] − D[r,j]); `accumulate` adds to `gain` instead of overwriting it.

pub fn facility_gain(dist: &[f32], mind: &[f32], gain: &mut [f32], rows: usize, cols: usize, mode: GainMode) {
    let potential = mode.potential;
    for r in 0..rows {
        let g = {
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
            g
        };
        gain[r] = if mode.accumulate { (gain[r] as f64 + g) as f32 } else { g as f32 };
    }
}

/// What `facility_gain` computes (`potential`) and whether it adds to the output (`accumulate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GainMode {
    pub potential: bool,
    pub accumulate: bool,
}

impl GainMode {
    pub fn bits(self) -> u32 {
        self.potential as u32 | (self.accumulate as u32) << 1
    }
}
