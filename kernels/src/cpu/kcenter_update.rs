//! CPU twin of `shaders/kcenter_update.wgsl`: [`super::min_dist_update`] with triangle-inequality pruning. A row
//! whose centre j has `dc2[j] > 4 · mind · (1 + margin)` is not read (the new centre cannot lower it); every other
//! row gets `min_dist_update`'s value (f64 sums over eight lanes) and moves to centre `k` when that is smaller.
//! `count[0]` grows by the number of rows read (wrapping, as the kernel's u32 atomic).

use super::min_dist_update::sqdist_f64;
use super::par;

/// One pruned k-center step over rows `row0 .. row0 + n` of the pool (`x` holds this block's rows from its row 0;
/// `owner` and `mind` are the whole pool's).
#[derive(Clone, Copy, Debug)]
pub struct KcenterStep {
    pub n: usize,
    pub d: usize,
    /// The new centre's row within `x`.
    pub center: usize,
    /// First centre: every row measured, owner = k.
    pub init: bool,
    pub row0: usize,
    /// The new centre's index (what `owner` records).
    pub k: u32,
    /// Relative margin of the skip test, above the sums' rounding ([`margin_for`]).
    pub margin: f32,
}

/// The skip test's margin for D features: the f32 sums' relative rounding (⌈D/8⌉ + 8 additions, each diff and
/// square rounded) on both distances, with room for the host's ‖c − cⱼ‖².
pub fn margin_for(d: usize) -> f32 {
    (8.0 * (d.div_ceil(8) as f64 + 11.0) * f64::from(f32::EPSILON) / 2.0 + 1e-6) as f32
}

/// True when a row at squared distance `m` from its centre j cannot move to a centre at `dc2` from j.
#[inline]
pub fn skipped(dc2: f32, m: f32, margin: f32) -> bool {
    dc2 > 4.0 * m * (1.0 + margin)
}

pub fn kcenter_update(x: &[f32], dc2: &[f32], owner: &mut [u32], mind: &mut [f32], count: &mut [u32], s: KcenterStep) {
    let d = s.d;
    let c = &x[s.center * d..(s.center + 1) * d];
    prune_step(dc2, owner, mind, count, s, 0, |i, _| sqdist_f64(&x[i * d..(i + 1) * d], c));
}

/// The step over `s.n` rows whose distance to the new centre `dist(i, scratch)` gives (`scratch` a buffer of
/// `scratch_len` values per task, for rows that must be widened first).
pub(super) fn prune_step(
    dc2: &[f32],
    owner: &mut [u32],
    mind: &mut [f32],
    count: &mut [u32],
    s: KcenterStep,
    scratch_len: usize,
    dist: impl Fn(usize, &mut [f32]) -> f64 + Sync,
) {
    let n = s.n;
    let (own, md) = (&owner[s.row0..s.row0 + n], &mind[s.row0..s.row0 + n]);
    let rows = par::rows_per_task(n, s.d, 1 << 16);
    let parts: Vec<(usize, Vec<(usize, f32)>)> = par::map(n.div_ceil(rows), |t| {
        let (mut read, mut moved, mut buf) = (0, Vec::new(), vec![0f32; scratch_len]);
        for i in t * rows..((t + 1) * rows).min(n) {
            if !s.init && skipped(dc2[own[i] as usize], md[i], s.margin) {
                continue;
            }
            read += 1;
            let v = dist(i, &mut buf) as f32;
            if s.init || v < md[i] {
                moved.push((i, v));
            }
        }
        (read, moved)
    });
    let mut read = 0usize;
    for (r, moved) in parts {
        read += r;
        for (i, v) in moved {
            mind[s.row0 + i] = v;
            owner[s.row0 + i] = s.k;
        }
    }
    count[0] = count[0].wrapping_add(read as u32);
}
