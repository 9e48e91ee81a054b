//! CPU twin of `shaders/kmeanspp_gain.wgsl`: k-means++'s potential decrease of trial centres `t0 .. t0 + trials`
//! (of `total`), Σᵢ max(0, mind[i] − ‖xᵢ − cand_t‖²), summed per group of 32 rows (the kernel's workgroups) into
//! `partial[(wg0 + group)·total + t]`, with [`super::kcenter_update`]'s pruning: a row of centre j is not read
//! for trial t when `dcand[t·stride + j] > 4 · mind · (1 + margin)` (its term is 0 in the plain sum too). Distances
//! and sums in f64. `count[0]` grows by the (row, trial) pairs read (wrapping, as the kernel's u32 atomic).

use super::kcenter_update::skipped;
use super::min_dist_update::sqdist_f64;
use super::par;

/// Rows per partial sum (the kernel's rows per workgroup).
pub const KMEANSPP_GAIN_ROWS: usize = 32;

/// Trials one pass measures at most (the kernel keeps each thread's sums of every trial).
pub const KMEANSPP_GAIN_TRIALS: usize = 16;

/// One gain pass over rows `row0 .. row0 + n` of the pool (`x` holds this block's rows from its row 0; `owner`
/// and `mind` are the whole pool's).
#[derive(Clone, Copy, Debug)]
pub struct KmeansppGain {
    pub n: usize,
    pub d: usize,
    /// Trials `t0 .. t0 + trials` (at most [`KMEANSPP_GAIN_TRIALS`]) of `total` (the rows of `cand` and `dcand`).
    pub trials: usize,
    pub t0: usize,
    pub total: usize,
    pub row0: usize,
    /// Values per trial in `dcand` (at least the number of centres so far).
    pub stride: usize,
    /// The first partial-sum group of this block.
    pub wg0: usize,
    /// Relative margin of the skip test ([`super::kcenter_update::margin_for`]).
    pub margin: f32,
}

#[allow(clippy::too_many_arguments)] // operands, outputs and the pass
pub fn kmeanspp_gain(
    x: &[f32],
    cand: &[f32],
    dcand: &[f32],
    owner: &[u32],
    mind: &[f32],
    partial: &mut [f32],
    count: &mut [u32],
    s: KmeansppGain,
) {
    let (d, t) = (s.d, s.trials);
    let groups = s.n.div_ceil(KMEANSPP_GAIN_ROWS);
    let sums: Vec<(Vec<f64>, u64)> = par::map(groups, |w| {
        let mut acc = vec![0f64; t];
        let mut read = 0u64;
        for i in w * KMEANSPP_GAIN_ROWS..((w + 1) * KMEANSPP_GAIN_ROWS).min(s.n) {
            let (m, own) = (mind[s.row0 + i], owner[s.row0 + i] as usize);
            for (tt, a) in acc.iter_mut().enumerate() {
                let tt = s.t0 + tt;
                if skipped(dcand[tt * s.stride + own], m, s.margin) {
                    continue;
                }
                read += 1;
                let v = sqdist_f64(&x[i * d..(i + 1) * d], &cand[tt * d..(tt + 1) * d]);
                *a += (m as f64 - v).max(0.0);
            }
        }
        (acc, read)
    });
    let mut read = 0u64;
    for (w, (acc, r)) in sums.into_iter().enumerate() {
        read += r;
        for (tt, a) in acc.into_iter().enumerate() {
            partial[(s.wg0 + w) * s.total + s.t0 + tt] = a as f32;
        }
    }
    count[0] = count[0].wrapping_add(read as u32);
}
