//! CPU twin of `shaders/radius_edges.wgsl`: mode 0 adds the count of entries ≤ radius2 per tile row to
//! `cursor`; mode 1 writes their pool columns at `edges[cursor[i] − base..]` (positions base..base +
//! `edges.len()` only: one chunk of a graph larger than a buffer) and advances it. The count pass runs on the
//! CPU backend's threads.

use super::par;

#[allow(clippy::too_many_arguments)] // the tile, its place in the pool, the mode, threshold and both buffers
pub fn radius_edges(
    dist: &[f32],
    rows: usize,
    cols: usize,
    row_offset: usize,
    col_offset: usize,
    write: bool,
    radius2: f32,
    cursor: &mut [u32],
    edges: &mut [u32],
    base: usize,
) {
    let cursor = &mut cursor[row_offset..row_offset + rows];
    if !write {
        // The count pass on the CPU backend's threads (counts are exact).
        let per = par::rows_per_task(rows, cols, 1 << 15);
        par::for_chunks(cursor, per, |task, out| {
            for (rr, at) in out.iter_mut().enumerate() {
                let r = task * per + rr;
                *at += dist[r * cols..(r + 1) * cols].iter().filter(|&&v| v <= radius2).count() as u32;
            }
        });
        return;
    }
    for (r, at) in cursor.iter_mut().enumerate() {
        for (c, &v) in dist[r * cols..(r + 1) * cols].iter().enumerate() {
            if v <= radius2 {
                let pos = (*at as usize).wrapping_sub(base);
                if *at as usize >= base && pos < edges.len() {
                    edges[pos] = (col_offset + c) as u32;
                }
                *at += 1;
            }
        }
    }
}

/// The host half of the two passes: exclusive prefix sums of the per-row counts (the write positions) and the
/// total number of edges.
pub fn exclusive_prefix(counts: &[u32]) -> (Vec<u32>, usize) {
    let mut out = Vec::with_capacity(counts.len());
    let mut acc = 0usize;
    for &c in counts {
        out.push(acc as u32);
        acc += c as usize;
    }
    (out, acc)
}
