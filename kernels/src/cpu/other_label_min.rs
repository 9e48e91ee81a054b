//! CPU twin of `shaders/other_label_min.wgsl`: per tile row, the smallest distance to a column of another label
//! and the largest distance, merged into the running values (indexed by pool row) when `merge`.

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
    for r in 0..rows {
        let i = row_offset + r;
        let (mut mn, mut mx) = if merge { (other_min[i], row_max[i]) } else { (OTHER_NONE, 0f32) };
        for c in 0..cols {
            let v = dist[r * cols + c];
            mx = mx.max(v);
            if labels[col_offset + c] != labels[i] {
                mn = mn.min(v);
            }
        }
        other_min[i] = mn;
        row_max[i] = mx;
    }
}
