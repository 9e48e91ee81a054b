//! CPU twin of `shaders/gather_rows.wgsl`: dst[dst_row0 + r] = src[idx[idx_offset + r] − src_row0] for r < rows
//! (rows of `d` features; a row whose index falls outside the `src_rows` source rows is left as it was).

/// One gather: which entries of `idx`, which source rows and where they land.
#[derive(Clone, Copy, Debug)]
pub struct GatherRows {
    pub rows: usize,
    pub d: usize,
    /// The first entry of `idx` read.
    pub idx_offset: usize,
    /// The row number of the source's first row, and its row count.
    pub src_row0: usize,
    pub src_rows: usize,
    /// The destination row of the first gathered row.
    pub dst_row0: usize,
}

pub fn gather_rows(src: &[f32], idx: &[u32], dst: &mut [f32], g: GatherRows) {
    let d = g.d;
    for r in 0..g.rows {
        let i = idx[g.idx_offset + r] as usize;
        if i < g.src_row0 || i - g.src_row0 >= g.src_rows {
            continue;
        }
        let s = (i - g.src_row0) * d;
        dst[(g.dst_row0 + r) * d..(g.dst_row0 + r + 1) * d].copy_from_slice(&src[s..s + d]);
    }
}
