//! CPU twin of `shaders/facility_gain.wgsl` (f64 sums): facility location on unit vectors,
//! gain[r] = Σ_j max(0, (1 − D[r,j]/2) − max(0, 1 − mind[j]/2)), or with `potential` k-means++'s potential
//! decrease gain[r] = Σ_j max(0, mind[j] − D[r,j]); `accumulate` adds to `gain` instead of overwriting it.
//! Rows run on the CPU backend's threads, each summed in column order.

use super::par;

pub fn facility_gain(dist: &[f32], mind: &[f32], gain: &mut [f32], rows: usize, cols: usize, mode: GainMode) {
    let potential = mode.potential;
    // Each column's max(0, 1 − mind/2) once, not once per row.
    let floor: Vec<f64> = if potential { Vec::new() } else { mind[..cols].iter().map(|&m| (1.0 - 0.5 * m as f64).max(0.0)).collect() };
    let per = par::rows_per_task(rows, cols, 1 << 15);
    par::for_chunks(&mut gain[..rows], per, |task, out| {
        for (rr, o) in out.iter_mut().enumerate() {
            let r = task * per + rr;
            let row = &dist[r * cols..(r + 1) * cols];
            let g: f64 = if potential {
                row.iter().zip(mind).map(|(&dd, &m)| (m as f64 - dd as f64).max(0.0)).sum()
            } else {
                row.iter().zip(&floor).map(|(&dd, &f)| ((1.0 - 0.5 * dd as f64) - f).max(0.0)).sum()
            };
            *o = if mode.accumulate { (*o as f64 + g) as f32 } else { g as f32 };
        }
    });
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
