//! CPU twin of `shaders/topk_rows.wgsl`: the k smallest (value, column + col_offset) per row, ascending, ties to
//! the lower column; `prev` lists (from earlier column tiles) are merged when given.

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
    for r in 0..rows {
        let mut list: Vec<(f32, u32)> = match prev {
            Some((pv, pi)) => (0..k).map(|j| (pv[r * k + j], pi[r * k + j])).collect(),
            None => Vec::new(),
        };
        list.extend(
            x[r * cols..(r + 1) * cols]
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .map(|(c, &v)| (v, (c + col_offset) as u32)),
        );
        // Stable sort by value keeps earlier (lower-column) entries first among equals, as the kernel does.
        list.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (j, (v, i)) in list.into_iter().filter(|(_, i)| *i != TOPK_EMPTY_IDX).take(k).enumerate() {
            vals[r * k + j] = v;
            idxs[r * k + j] = i;
        }
    }
    (vals, idxs)
}
