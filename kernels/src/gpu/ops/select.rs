//! The selection scans: k-center updates, row argmax / top-k, cluster means, facility-location gains, kNN and δ-graph tiles.

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::{Error, Result};

/// k-center step: mind[i] = min(mind[i], ‖x_i − x_center‖²), or = when `init`.
#[allow(clippy::too_many_arguments)] // operands, sizes, the centre and the init flag
pub async fn min_dist_update(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    mind: &Buffer,
    n: usize,
    d: usize,
    center: usize,
    init: bool,
) -> Result<()> {
    const OP: &str = "min_dist_update";
    check_len(OP, "x", x, n * d)?;
    check_len(OP, "mind", mind, n)?;
    if center >= n {
        return Err(Error::shape(OP, format!("centre {center} is outside the {n} rows")));
    }
    let p = MinDistUpdateParams {
        n: u32_of(OP, "n", n)?,
        d: u32_of(OP, "d", d)?,
        center: center as u32,
        init: init as u32,
    };
    // 32 rows per workgroup of 256 (eight threads per row).
    ctx.dispatch(enc, OP, &p, &[x, mind], ctx.grid_threads(OP, n * 8)?).await
}

/// [`min_dist_update`] on f16 features packed two to a word: x holds n · ⌈d/2⌉ words.
#[allow(clippy::too_many_arguments)] // operands, sizes, the centre and the init flag
pub async fn min_dist_update_f16(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    mind: &Buffer,
    n: usize,
    d: usize,
    center: usize,
    init: bool,
) -> Result<()> {
    const OP: &str = "min_dist_update_f16";
    check_len(OP, "x", x, n * d.div_ceil(2))?;
    check_len(OP, "mind", mind, n)?;
    if center >= n {
        return Err(Error::shape(OP, format!("centre {center} is outside the {n} rows")));
    }
    let p = MinDistUpdateF16Params {
        n: u32_of(OP, "n", n)?,
        d: u32_of(OP, "d", d)?,
        center: center as u32,
        init: init as u32,
    };
    ctx.dispatch(enc, OP, &p, &[x, mind], ctx.grid_threads(OP, n * 8)?).await
}

/// Pruned k-center step (`cpu::kcenter_update`): rows `row0 .. row0 + n` of the pool, `x` this block's rows,
/// `dc2` [k] the new centre's squared distances to the earlier centres, `owner` and `mind` the whole pool's,
/// `count` [1] the rows read (wrapping u32).
#[allow(clippy::too_many_arguments)] // operands and the step
pub async fn kcenter_update(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    dc2: &Buffer,
    owner: &Buffer,
    mind: &Buffer,
    count: &Buffer,
    s: crate::cpu::kcenter_update::KcenterStep,
) -> Result<()> {
    const OP: &str = "kcenter_update";
    check_len(OP, "count", count, 1)?;
    check_len(OP, "x", x, s.n * s.d)?;
    check_len(OP, "dc2", dc2, (s.k as usize).max(1))?;
    check_len(OP, "owner", owner, s.row0 + s.n)?;
    check_len(OP, "mind", mind, s.row0 + s.n)?;
    if (s.center + 1) * s.d > (x.size() / 4) as usize {
        return Err(Error::shape(OP, format!("centre row {} is outside x", s.center)));
    }
    let p = KcenterUpdateParams {
        n: u32_of(OP, "n", s.n)?,
        d: u32_of(OP, "d", s.d)?,
        center: s.center as u32,
        init: s.init as u32,
        row0: u32_of(OP, "row0", s.row0)?,
        k: s.k,
        margin: s.margin,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[x, dc2, owner, mind, count], ctx.grid_threads(OP, s.n * 8)?).await
}

/// k-means++'s potential decrease of each trial centre, pruned as `kcenter_update` (`cpu::kmeanspp_gain`): rows
/// `row0 .. row0 + n` of the pool, `x` this block's rows, trials `t0 .. t0 + trials` of `cand` [total, d] and
/// `dcand` [total, stride], `owner` and `mind` the whole pool's, `partial` one sum per trial and 32 rows (from
/// group `wg0`, `total` a group), `count` [1] the
/// (row, trial) pairs read.
#[allow(clippy::too_many_arguments)] // operands, outputs and the pass
pub async fn kmeanspp_gain(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    cand: &Buffer,
    dcand: &Buffer,
    owner: &Buffer,
    mind: &Buffer,
    partial: &Buffer,
    count: &Buffer,
    s: crate::cpu::kmeanspp_gain::KmeansppGain,
) -> Result<()> {
    const OP: &str = "kmeanspp_gain";
    use crate::cpu::kmeanspp_gain::{KMEANSPP_GAIN_ROWS, KMEANSPP_GAIN_TRIALS};
    let groups = s.n.div_ceil(KMEANSPP_GAIN_ROWS);
    if s.trials > KMEANSPP_GAIN_TRIALS || s.t0 + s.trials > s.total {
        return Err(Error::shape(
            OP,
            format!("trials {}..{} of {} (at most 16 a pass)", s.t0, s.t0 + s.trials, s.total),
        ));
    }
    check_len(OP, "x", x, s.n * s.d)?;
    check_len(OP, "cand", cand, s.total * s.d)?;
    check_len(OP, "dcand", dcand, s.total * s.stride)?;
    check_len(OP, "owner", owner, s.row0 + s.n)?;
    check_len(OP, "mind", mind, s.row0 + s.n)?;
    check_len(OP, "partial", partial, (s.wg0 + groups) * s.total)?;
    check_len(OP, "count", count, 1)?;
    let p = KmeansppGainParams {
        n: u32_of(OP, "n", s.n)?,
        d: u32_of(OP, "d", s.d)?,
        trials: u32_of(OP, "trials", s.trials)?,
        row0: u32_of(OP, "row0", s.row0)?,
        stride: u32_of(OP, "stride", s.stride)?,
        wg0: u32_of(OP, "wg0", s.wg0)?,
        margin: s.margin,
        t0: u32_of(OP, "t0", s.t0)?,
        total: u32_of(OP, "total", s.total)?,
        ..Default::default()
    };
    u32_of(OP, "(wg0 + groups)·total", (s.wg0 + groups) * s.total)?;
    if s.n == 0 || s.trials == 0 {
        return Ok(());
    }
    // 32 rows per workgroup of 128 (four threads per row).
    ctx.dispatch(enc, OP, &p, &[x, cand, dcand, owner, mind, partial, count], ctx.grid_threads(OP, s.n * 4)?).await
}

/// [`kcenter_update`] on the f16 store's packed rows (`cpu::kcenter_update_f16`); `x` holds ⌈d/2⌉ words a row.
/// Pruned k-center step (`cpu::kcenter_update`): rows `row0 .. row0 + n` of the pool, `x` this block's rows,
/// `dc2` [k] the new centre's squared distances to the earlier centres, `owner` and `mind` the whole pool's,
/// `count` [1] the rows read (wrapping u32).
#[allow(clippy::too_many_arguments)] // operands and the step
pub async fn kcenter_update_f16(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    dc2: &Buffer,
    owner: &Buffer,
    mind: &Buffer,
    count: &Buffer,
    s: crate::cpu::kcenter_update::KcenterStep,
) -> Result<()> {
    const OP: &str = "kcenter_update_f16";
    check_len(OP, "count", count, 1)?;
    check_len(OP, "x", x, s.n * s.d.div_ceil(2))?;
    check_len(OP, "dc2", dc2, (s.k as usize).max(1))?;
    check_len(OP, "owner", owner, s.row0 + s.n)?;
    check_len(OP, "mind", mind, s.row0 + s.n)?;
    if (s.center + 1) * s.d.div_ceil(2) > (x.size() / 4) as usize {
        return Err(Error::shape(OP, format!("centre row {} is outside x", s.center)));
    }
    let p = KcenterUpdateF16Params {
        n: u32_of(OP, "n", s.n)?,
        d: u32_of(OP, "d", s.d)?,
        center: s.center as u32,
        init: s.init as u32,
        row0: u32_of(OP, "row0", s.row0)?,
        k: s.k,
        margin: s.margin,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[x, dc2, owner, mind, count], ctx.grid_threads(OP, s.n * 8)?).await
}

/// Per row of X [R,C]: max value and its lowest column index (u32::MAX when the row has no comparable value).
pub async fn argmax_rows(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    out_val: &Buffer,
    out_idx: &Buffer,
    rows: usize,
    cols: usize,
) -> Result<()> {
    const OP: &str = "argmax_rows";
    check_len(OP, "x", x, rows * cols)?;
    check_len(OP, "out_val", out_val, rows)?;
    check_len(OP, "out_idx", out_idx, rows)?;
    let p = ArgmaxRowsParams { rows: u32_of(OP, "rows", rows)?, cols: u32_of(OP, "cols", cols)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, out_val, out_idx], ctx.grid_1d(rows, 1)).await
}

/// Per row of X [R,C]: the k smallest values (ascending, ties to the lower column) and their columns +
/// `col_offset`; with `merge`, extend the lists already in the outputs (tiles in increasing column order).
#[allow(clippy::too_many_arguments)] // operands, sizes, streaming offset and flag
pub async fn topk_rows(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    out_val: &Buffer,
    out_idx: &Buffer,
    rows: usize,
    cols: usize,
    k: usize,
    col_offset: usize,
    merge: bool,
) -> Result<()> {
    const OP: &str = "topk_rows";
    if k == 0 || k > 64 {
        return Err(Error::shape(OP, format!("k = {k}; the kernel supports 1 ≤ k ≤ 64")));
    }
    check_len(OP, "x", x, rows * cols)?;
    check_len(OP, "out_val", out_val, rows * k)?;
    check_len(OP, "out_idx", out_idx, rows * k)?;
    let p = TopkRowsParams {
        rows: u32_of(OP, "rows", rows)?,
        cols: u32_of(OP, "cols", cols)?,
        k: k as u32,
        col_offset: u32_of(OP, "col_offset", col_offset)?,
        merge: merge as u32,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[x, out_val, out_idx], ctx.grid_threads(OP, rows)?).await
}

/// k-means centre update: centers[c] = mean of the rows `order[offsets[c]..offsets[c+1]]` (empty: unchanged).
#[allow(clippy::too_many_arguments)] // operands, output, sizes
pub async fn segment_mean(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    order: &Buffer,
    offsets: &Buffer,
    centers: &Buffer,
    n: usize,
    k: usize,
    d: usize,
) -> Result<()> {
    const OP: &str = "segment_mean";
    check_len(OP, "x", x, n * d)?;
    check_len(OP, "order", order, n)?;
    check_len(OP, "offsets", offsets, k + 1)?;
    check_len(OP, "centers", centers, k * d)?;
    let p = SegmentMeanParams { k: u32_of(OP, "k", k)?, d: u32_of(OP, "d", d)?, ..Default::default() };
    u32_of(OP, "k·d", k * d)?;
    ctx.dispatch(enc, OP, &p, &[x, order, offsets, centers], ctx.grid_threads(OP, k * d)?).await
}

/// Pack rows for a pruned scan: dst[dst_row0 + r] = src[idx[idx_offset + r] − src_row0] (see
/// `cpu::gather_rows`; rows outside the source's `src_rows` are left as they were).
pub async fn gather_rows(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    src: &Buffer,
    idx: &Buffer,
    dst: &Buffer,
    g: crate::cpu::GatherRows,
) -> Result<()> {
    const OP: &str = "gather_rows";
    check_len(OP, "src", src, g.src_rows * g.d)?;
    check_len(OP, "idx", idx, g.idx_offset + g.rows)?;
    check_len(OP, "dst", dst, (g.dst_row0 + g.rows) * g.d)?;
    let p = GatherRowsParams {
        rows: u32_of(OP, "rows", g.rows)?,
        d: u32_of(OP, "d", g.d)?,
        idx_offset: u32_of(OP, "idx_offset", g.idx_offset)?,
        src_row0: u32_of(OP, "src_row0", g.src_row0)?,
        src_rows: u32_of(OP, "src_rows", g.src_rows)?,
        dst_row0: u32_of(OP, "dst_row0", g.dst_row0)?,
        ..Default::default()
    };
    u32_of(OP, "(dst_row0 + rows)·d", (g.dst_row0 + g.rows) * g.d)?;
    if g.rows == 0 || g.d == 0 {
        return Ok(());
    }
    ctx.dispatch(enc, OP, &p, &[src, idx, dst], ctx.grid_threads(OP, g.rows * g.d)?).await
}

/// Facility-location marginal gain of each row of a squared-distance tile [R,C] between L2-normalised rows,
/// given `mind` [C] (squared distance of each column to its nearest chosen row); with `potential`, k-means++'s
/// potential decrease Σ_j max(0, mind_j − D_rj) of each candidate centre instead; `mode.accumulate` adds.
#[allow(clippy::too_many_arguments)] // operands, output, sizes, the mode
pub async fn facility_gain(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    dist: &Buffer,
    mind: &Buffer,
    gain: &Buffer,
    rows: usize,
    cols: usize,
    mode: crate::cpu::GainMode,
) -> Result<()> {
    const OP: &str = "facility_gain";
    check_len(OP, "dist", dist, rows * cols)?;
    check_len(OP, "mind", mind, cols)?;
    check_len(OP, "gain", gain, rows)?;
    let p = FacilityGainParams {
        rows: u32_of(OP, "rows", rows)?,
        cols: u32_of(OP, "cols", cols)?,
        mode: mode.bits(),
        _pad0: 0,
    };
    ctx.dispatch(enc, OP, &p, &[dist, mind, gain], ctx.grid_1d(rows, 1)).await
}

/// Where a squared-distance tile sits in the pool: rows `row_offset..+rows`, columns `col_offset..+cols`.
#[derive(Clone, Copy, Debug)]
pub struct Tile {
    pub rows: usize,
    pub cols: usize,
    pub row_offset: usize,
    pub col_offset: usize,
}

/// ProbCover's purity scan over one tile: per row the smallest distance to another label and the largest
/// distance, extending earlier column tiles when `merge`.
#[allow(clippy::too_many_arguments)] // the tile, the labels, both outputs and the flag
pub async fn other_label_min(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    dist: &Buffer,
    labels: &Buffer,
    other_min: &Buffer,
    row_max: &Buffer,
    n: usize,
    t: Tile,
    merge: bool,
) -> Result<()> {
    const OP: &str = "other_label_min";
    check_len(OP, "dist", dist, t.rows * t.cols)?;
    if t.row_offset + t.rows > n || t.col_offset + t.cols > n {
        return Err(Error::shape(OP, format!("tile {t:?} reaches outside the {n} rows")));
    }
    check_len(OP, "labels", labels, n)?;
    check_len(OP, "other_min", other_min, n)?;
    check_len(OP, "row_max", row_max, n)?;
    let p = OtherLabelMinParams {
        rows: u32_of(OP, "rows", t.rows)?,
        cols: u32_of(OP, "cols", t.cols)?,
        row_offset: u32_of(OP, "row_offset", t.row_offset)?,
        col_offset: u32_of(OP, "col_offset", t.col_offset)?,
        merge: merge as u32,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[dist, labels, other_min, row_max], ctx.grid_threads(OP, t.rows)?).await
}

/// The δ-graph of one tile: count the entries ≤ `radius2` per row into `cursor` (`write` false), or write their
/// columns at `edges[cursor[i] − base..]` and advance `cursor` (`write` true; only the positions
/// `base..base + capacity` are kept, `capacity` = edges' length: one chunk of a graph larger than a buffer).
#[allow(clippy::too_many_arguments)] // the tile, the pass, the threshold and both buffers
pub async fn radius_edges(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    dist: &Buffer,
    cursor: &Buffer,
    edges: &Buffer,
    n: usize,
    t: Tile,
    write: bool,
    radius2: f32,
    capacity: usize,
    base: usize,
) -> Result<()> {
    const OP: &str = "radius_edges";
    check_len(OP, "dist", dist, t.rows * t.cols)?;
    if t.row_offset + t.rows > n || t.col_offset + t.cols > n {
        return Err(Error::shape(OP, format!("tile {t:?} reaches outside the {n} rows")));
    }
    check_len(OP, "cursor", cursor, n)?;
    check_len(OP, "edges", edges, capacity)?;
    let p = RadiusEdgesParams {
        rows: u32_of(OP, "rows", t.rows)?,
        cols: u32_of(OP, "cols", t.cols)?,
        row_offset: u32_of(OP, "row_offset", t.row_offset)?,
        col_offset: u32_of(OP, "col_offset", t.col_offset)?,
        mode: write as u32,
        radius2,
        capacity: u32_of(OP, "capacity", capacity)?,
        base: u32_of(OP, "base", base)?,
    };
    ctx.dispatch(enc, OP, &p, &[dist, cursor, edges], ctx.grid_threads(OP, t.rows)?).await
}
