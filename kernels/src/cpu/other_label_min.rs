//! CPU twin of `shaders/other_label_min.wgsl`: per tile row, the smallest distance to a column of another label
//! and the largest distance, merged into the running values (indexed by pool row) when `merge`. Rows run on the
//! CPU backend's threads (min and max are exact, so the split changes nothing).

use super::par;

pub const OTHER_NONE: f32 = f32::MAX;

#[allow(clippy::too_many_arguments)] // the tile, its place in the pool, the labels, both outputs and the flag
pub fn other_label_min(
    dist: &[f32],
    rows: usize,
    cols: usize,
    row_offset: usize,
    col_offset: usize,
    labels: &[u32],
    other_min: &mut [f32],
    row_max: &mut [f32],
    merge: bool,
) {
    let per = par::rows_per_task(rows, cols, 1 << 15);
    let mut pairs: Vec<(f32, f32)> =
        (row_offset..row_offset + rows).map(|i| if merge { (other_min[i], row_max[i]) } else { (OTHER_NONE, 0f32) }).collect();
    let col_labels = &labels[col_offset..col_offset + cols];
    par::for_chunks(&mut pairs, per, |task, out| {
        for (rr, (mn, mx)) in out.iter_mut().enumerate() {
            let r = task * per + rr;
            let li = labels[row_offset + r];
            for (&v, &lc) in dist[r * cols..(r + 1) * cols].iter().zip(col_labels) {
                *mx = mx.max(v);
                if lc != li {
                    *mn = mn.min(v);
                }
            }
        }
    });
    for (r, (mn, mx)) in pairs.into_iter().enumerate() {
        other_min[row_offset + r] = mn;
        row_max[row_offset + r] = mx;
    }
}
