//! CPU twin of `shaders/topk_rows.wgsl`: the k smallest (value, column + col_offset) per row, ascending, ties to
//! the lower column (NaN skipped); the lists already in the outputs (from earlier column tiles) are extended when
//! `merge`. Each row keeps a sorted list of at most k entries and inserts a value only when it is below the k-th
//! (or below TOPK_EMPTY_VAL while the list is not full), after its equals, as the kernel does; rows run on the
//! CPU backend's threads.

use super::par;

pub const TOPK_EMPTY_VAL: f32 = 3.402_823_5e38;
pub const TOPK_EMPTY_IDX: u32 = u32::MAX;

pub fn topk_rows(
    x: &[f32],
    rows: usize,
    cols: usize,
    k: usize,
    col_offset: usize,
    prev: Option<(&[f32], &[u32])>,
) -> (Vec<f32>, Vec<u32>) {
    let mut vals = vec![TOPK_EMPTY_VAL; rows * k];
    let mut idxs = vec![TOPK_EMPTY_IDX; rows * k];
    if let Some((pv, pi)) = prev {
        vals.copy_from_slice(&pv[..rows * k]);
        idxs.copy_from_slice(&pi[..rows * k]);
    }
    topk_rows_into(x, rows, cols, k, col_offset, prev.is_some(), &mut vals, &mut idxs);
    (vals, idxs)
}

/// [`topk_rows`] in place: `vals`/`idxs` [rows, k] are read as the earlier lists when `merge`, then overwritten.
#[allow(clippy::too_many_arguments)] // the tile, k, its place and both outputs
pub fn topk_rows_into(
    x: &[f32],
    rows: usize,
    cols: usize,
    k: usize,
    col_offset: usize,
    merge: bool,
    vals: &mut [f32],
    idxs: &mut [u32],
) {
    if rows == 0 || k == 0 {
        return;
    }
    let per = par::rows_per_task(rows, cols, 1 << 15);
    // Values and indices of a row travel together through one chunked slice of pairs.
    let mut pairs: Vec<(f32, u32)> = vec![(TOPK_EMPTY_VAL, TOPK_EMPTY_IDX); rows * k];
    par::for_chunks(&mut pairs, per * k, |task, out| {
        let mut list: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        for (rr, slot) in out.chunks_exact_mut(k).enumerate() {
            let r = task * per + rr;
            list.clear();
            if merge {
                list.extend((0..k).map(|j| (vals[r * k + j], idxs[r * k + j])).filter(|e| e.1 != TOPK_EMPTY_IDX));
            }
            for (c, &v) in x[r * cols..(r + 1) * cols].iter().enumerate() {
                // As the kernel: a value enters only below the k-th (whose empty slots hold TOPK_EMPTY_VAL), so
                // NaN, +∞ and TOPK_EMPTY_VAL itself never do; equal values (−0 = +0) keep column order.
                let kth = if list.len() == k { list[k - 1].0 } else { TOPK_EMPTY_VAL };
                #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN must fail the test, as in the kernel
                if !(v < kth) {
                    continue;
                }
                let at = list.partition_point(|e| e.0 <= v);
                list.insert(at, (v, (c + col_offset) as u32));
                list.truncate(k);
            }
            slot[..list.len()].copy_from_slice(&list);
        }
    });
    for (j, (v, i)) in pairs.into_iter().enumerate() {
        vals[j] = v;
        idxs[j] = i;
    }
}
