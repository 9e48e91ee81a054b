//! The pool of features on the GPU ([`Pool`], in row blocks that each fit one storage binding) and the streamed
//! tile of squared distances every n×n scan reuses ([`TileScan`]), with the scans built directly on them: top-k
//! (kNN, nearest centres), facility-location gains, one distance column.

use wgpu::Buffer;

use super::Matrix;
use crate::cpu::{segments, GainMode};
use crate::gpu::ops::{self, Tile};
use crate::gpu::{read_f32, GpuContext};
use crate::{Error, Result};

/// Largest distance tile, in floats (128 MiB).
pub(super) const TILE_FLOATS: usize = 32 << 20;

/// Rows per tile at most (the thread-per-row kernels then keep a large GPU busy).
pub(super) const TILE_ROWS: usize = 16384;

pub(super) static TILE_LIMITS: std::sync::Mutex<(usize, usize)> = std::sync::Mutex::new((TILE_ROWS, TILE_FLOATS));

/// Set the largest tile (rows, floats) for every scan from now on, returning the previous limits. Results do not
/// depend on it (tests use small tiles to exercise the streaming on small pools); memory and speed do.
pub fn set_tile_limits(rows: usize, floats: usize) -> (usize, usize) {
    let mut g = TILE_LIMITS.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::replace(&mut *g, (rows.max(1), floats.max(64)))
}

pub(super) fn tile_limits() -> (usize, usize) {
    *TILE_LIMITS.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static BINDING_FLOATS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// On this thread, treat a storage binding as holding at most `floats` f32 values (`None`: the device's limit,
/// when that is smaller), returning the previous setting. Pools, tile scans and the δ-graph then block and chunk
/// as they would on a device with that limit; results do not depend on it beyond the summation order of k-means
/// centres. Tests use it to run the paths of pools larger than a binding on small pools.
pub fn set_binding_limit(floats: Option<usize>) -> Option<usize> {
    BINDING_FLOATS.with(|c| c.replace(floats.map(|f| f.max(1))))
}

/// The f32 values one storage binding (and one buffer) may hold on this device, or less on this thread.
pub(super) fn binding_floats(ctx: &GpuContext) -> usize {
    let device = (ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size) / 4) as usize;
    BINDING_FLOATS.with(|c| c.get()).map_or(device, |f| f.min(device))
}

/// Rows `row0 .. row0 + rows` of a blocked pool; the buffer has one spare row at the end (the centre row of a
/// blocked `min_dist_update`).
pub(super) struct PoolBlock {
    pub(super) row0: usize,
    pub(super) rows: usize,
    pub(super) buf: Buffer,
}

/// A feature matrix uploaded once, shared by every pass a strategy makes over it: one buffer when it fits a
/// storage binding, else row blocks that each do.
pub struct Pool<'a> {
    pub x: Matrix<'a>,
    pub(super) blocks: Vec<PoolBlock>,
    /// Blocked pools: the centre row and a block's share of a per-row output.
    pub(super) scratch: Option<(Buffer, Buffer)>,
}

/// Where the rows of one side of a [`TileScan`] come from.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    Buf(&'a Buffer),
    Pool(&'a Pool<'a>),
}

impl<'a> Pool<'a> {
    pub fn upload(ctx: &GpuContext, x: Matrix<'a>) -> Result<Self> {
        let limit = binding_floats(ctx);
        let d = x.d.max(1);
        if x.n * d <= limit {
            let buf = ctx.upload("pool", x.data)?;
            return Ok(Pool { x, blocks: vec![PoolBlock { row0: 0, rows: x.n, buf }], scratch: None });
        }
        // Each block keeps one spare row (the centre row of a blocked `min_dist_update`).
        let rows = (limit / d).saturating_sub(1);
        if rows == 0 {
            return Err(Error::TooLarge {
                op: "pool",
                what: format!("two rows of {d} features"),
                bytes: (2 * d * 4) as u64,
                limit: (limit * 4) as u64,
            });
        }
        let mut blocks = Vec::new();
        for row0 in (0..x.n).step_by(rows) {
            let r = rows.min(x.n - row0);
            let buf = ctx.storage("pool", ((r + 1) * d * 4) as u64)?;
            ctx.queue.write_buffer(&buf, 0, bytemuck::cast_slice(&x.data[row0 * d..(row0 + r) * d]));
            blocks.push(PoolBlock { row0, rows: r, buf });
        }
        let scratch = (ctx.storage("pool", (d * 4) as u64)?, ctx.storage("pool", ((rows + 1) * 4) as u64)?);
        Ok(Pool { x, blocks, scratch: Some(scratch) })
    }

    /// True when the rows are split over several buffers.
    pub fn is_blocked(&self) -> bool {
        self.scratch.is_some()
    }

    /// Number of buffers holding the rows.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The scan of every row against every row.
    pub(super) fn self_scan<'s>(&'s self, ctx: &'s GpuContext) -> Result<TileScan<'s>> {
        TileScan::new(ctx, Rows::Pool(self), self.x.n, Rows::Pool(self), self.x.n, self.x.d)
    }

    /// Record copies of rows `start .. start + len` into `dst` (from row 0).
    pub(super) fn copy_rows(&self, enc: &mut wgpu::CommandEncoder, start: usize, len: usize, dst: &Buffer) {
        let d4 = (self.x.d * 4) as u64;
        for b in &self.blocks {
            let (lo, hi) = (start.max(b.row0), (start + len).min(b.row0 + b.rows));
            if lo < hi {
                enc.copy_buffer_to_buffer(
                    &b.buf,
                    (lo - b.row0) as u64 * d4,
                    dst,
                    (lo - start) as u64 * d4,
                    (hi - lo) as u64 * d4,
                );
            }
        }
    }

    /// `target[i] = ‖x_i − x_center‖²` (`init`) or the minimum of that and `target[i]`, for every row.
    pub async fn min_dist_update(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        target: &Buffer,
        center: usize,
        init: bool,
    ) -> Result<()> {
        let (n, d) = (self.x.n, self.x.d);
        let Some((crow, tblk)) = &self.scratch else {
            return ops::min_dist_update(ctx, enc, &self.blocks[0].buf, target, n, d, center, init).await;
        };
        if center >= n {
            return Err(Error::shape("min_dist_update", format!("centre {center} is outside the {n} rows")));
        }
        let d4 = (d * 4) as u64;
        self.copy_rows(enc, center, 1, crow);
        for b in &self.blocks {
            // The centre goes to the block's spare row; the block's share of `target` through `tblk`.
            enc.copy_buffer_to_buffer(crow, 0, &b.buf, b.rows as u64 * d4, d4);
            if !init {
                enc.copy_buffer_to_buffer(target, b.row0 as u64 * 4, tblk, 0, b.rows as u64 * 4);
            }
            ops::min_dist_update(ctx, enc, &b.buf, tblk, b.rows + 1, d, b.rows, init).await?;
            enc.copy_buffer_to_buffer(tblk, 0, target, b.row0 as u64 * 4, b.rows as u64 * 4);
        }
        Ok(())
    }

    /// k-means centre update: the mean of the rows of each label (`labels` [n] < k); a centre without rows keeps
    /// its value in `centers` [k·d]. Returns the new centres, also written to `bc`. Blocked pools average each
    /// block on the device and combine the block means weighted by their counts on the host (f64).
    pub async fn segment_mean(
        &self,
        ctx: &GpuContext,
        labels: &[u32],
        k: usize,
        centers: &[f32],
        bc: &Buffer,
    ) -> Result<Vec<f32>> {
        let d = self.x.d;
        if !self.is_blocked() {
            let (order, offsets) = segments(labels, k);
            let bo = ctx.upload("kmeans", &order)?;
            let boff = ctx.upload("kmeans", &offsets)?;
            let mut enc = ctx.encoder();
            ops::segment_mean(ctx, &mut enc, &self.blocks[0].buf, &bo, &boff, bc, self.x.n, k, d).await?;
            ctx.submit(enc);
            return read_f32(ctx, bc, k * d).await;
        }
        let mut sum = vec![0f64; k * d];
        let mut count = vec![0usize; k];
        let part = ctx.storage("kmeans", (k * d * 4) as u64)?;
        for b in &self.blocks {
            let lab = &labels[b.row0..b.row0 + b.rows];
            let (order, offsets) = segments(lab, k);
            let bo = ctx.upload("kmeans", &order)?;
            let boff = ctx.upload("kmeans", &offsets)?;
            let mut enc = ctx.encoder();
            ops::segment_mean(ctx, &mut enc, &b.buf, &bo, &boff, &part, b.rows, k, d).await?;
            ctx.submit(enc);
            let means = read_f32(ctx, &part, k * d).await?;
            for c in 0..k {
                let m = (offsets[c + 1] - offsets[c]) as usize;
                if m > 0 {
                    count[c] += m;
                    for j in 0..d {
                        sum[c * d + j] += means[c * d + j] as f64 * m as f64;
                    }
                }
            }
        }
        let new: Vec<f32> = (0..k * d)
            .map(|i| if count[i / d] > 0 { (sum[i] / count[i / d] as f64) as f32 } else { centers[i] })
            .collect();
        ctx.queue.write_buffer(bc, 0, bytemuck::cast_slice(&new));
        Ok(new)
    }
}

/// Streams the squared distances between the rows of `a` [na, d] and `b` [nb, d] tile by tile into one buffer.
pub struct TileScan<'a> {
    pub(super) ctx: &'a GpuContext,
    pub(super) a: Rows<'a>,
    pub(super) b: Rows<'a>,
    pub na: usize,
    pub nb: usize,
    pub(super) d: usize,
    pub rows: usize,
    pub cols: usize,
    pub dist: Buffer,
    pub(super) a_blk: Option<Buffer>,
    pub(super) b_blk: Option<Buffer>,
}

impl<'a> TileScan<'a> {
    pub fn new(ctx: &'a GpuContext, a: Rows<'a>, na: usize, b: Rows<'a>, nb: usize, d: usize) -> Result<Self> {
        let limit = binding_floats(ctx);
        let (max_rows, max_floats) = tile_limits();
        let cap = max_floats.min(limit);
        // Rows of d features one block buffer may hold: a few rows against many columns (k-means++ trials
        // against the pool) must not put the whole pool in one column block.
        let fit = (limit / d.max(1)).max(1);
        let rows = na.clamp(1, max_rows.min(fit));
        let cols = nb.clamp(1, (cap / rows).max(64).min(fit));
        if rows * d > limit || cols * d > limit {
            return Err(Error::TooLarge {
                op: "tile scan",
                what: format!("a block of {} rows of {d} features", rows.max(cols)),
                bytes: (rows.max(cols) * d * 4) as u64,
                limit: (limit * 4) as u64,
            });
        }
        let dist = ctx.storage("tile scan", (rows * cols * 4) as u64)?;
        let blocked = |r: &Rows| matches!(r, Rows::Pool(p) if p.is_blocked());
        let a_blk =
            if rows < na || blocked(&a) { Some(ctx.storage("tile scan", (rows * d * 4) as u64)?) } else { None };
        let b_blk =
            if cols < nb || blocked(&b) { Some(ctx.storage("tile scan", (cols * d * 4) as u64)?) } else { None };
        Ok(TileScan { ctx, a, b, na, nb, d, rows, cols, dist, a_blk, b_blk })
    }

    /// Every tile, row blocks in order and within each the column blocks in increasing order.
    pub fn tiles(&self) -> Vec<Tile> {
        let mut v = Vec::new();
        for r0 in (0..self.na).step_by(self.rows) {
            for c0 in (0..self.nb).step_by(self.cols) {
                v.push(Tile {
                    rows: self.rows.min(self.na - r0),
                    cols: self.cols.min(self.nb - c0),
                    row_offset: r0,
                    col_offset: c0,
                });
            }
        }
        v
    }

    /// Record the copies of the tile's blocks and the distance computation into `enc` (result in `self.dist`,
    /// [t.rows, t.cols]). Tiles must come in the order of [`TileScan::tiles`]: a row block is copied once, at its
    /// first column tile.
    pub async fn compute(&self, enc: &mut wgpu::CommandEncoder, t: Tile) -> Result<()> {
        let d4 = (self.d * 4) as u64;
        let copy = |enc: &mut wgpu::CommandEncoder, src: Rows, start: usize, len: usize, dst: &Buffer| match src {
            Rows::Buf(buf) => enc.copy_buffer_to_buffer(buf, start as u64 * d4, dst, 0, len as u64 * d4),
            Rows::Pool(p) => p.copy_rows(enc, start, len, dst),
        };
        let whole = |r: Rows<'a>| -> &'a Buffer {
            match r {
                Rows::Buf(buf) => buf,
                Rows::Pool(p) => &p.blocks[0].buf,
            }
        };
        let a = match &self.a_blk {
            Some(blk) => {
                if t.col_offset == 0 {
                    copy(enc, self.a, t.row_offset, t.rows, blk);
                }
                blk
            }
            None => whole(self.a),
        };
        let b = match &self.b_blk {
            Some(blk) => {
                copy(enc, self.b, t.col_offset, t.cols, blk);
                blk
            }
            None => whole(self.b),
        };
        ops::sqdist(self.ctx, enc, a, b, &self.dist, t.rows, t.cols, self.d).await
    }
}

/// Σ over all columns of `facility_gain` for every row of a scan (`mind` holds one value per column of the
/// scan), accumulated tile by tile on the device with one readback at the end; the buffers are allocated once
/// and reused by every pass (a greedy loop runs many).
pub(super) struct Gains<'a> {
    pub(super) scan: TileScan<'a>,
    pub(super) all: Buffer,
    pub(super) blk: Buffer,
    pub(super) mind_blk: Option<Buffer>,
}

impl<'a> Gains<'a> {
    pub(super) fn new(ctx: &GpuContext, scan: TileScan<'a>) -> Result<Self> {
        let all = ctx.storage("gains", (scan.na * 4) as u64)?;
        let blk = ctx.storage("gains", (scan.rows * 4) as u64)?;
        let mind_blk = if scan.cols < scan.nb { Some(ctx.storage("gains", (scan.cols * 4) as u64)?) } else { None };
        Ok(Gains { scan, all, blk, mind_blk })
    }

    pub(super) async fn run(&self, ctx: &GpuContext, mind: &Buffer, potential: bool) -> Result<Vec<f32>> {
        let scan = &self.scan;
        let mut enc = ctx.encoder();
        let tiles = scan.tiles();
        for (i, &t) in tiles.iter().enumerate() {
            scan.compute(&mut enc, t).await?;
            let m = match &self.mind_blk {
                Some(mb) => {
                    enc.copy_buffer_to_buffer(mind, t.col_offset as u64 * 4, mb, 0, t.cols as u64 * 4);
                    mb
                }
                None => mind,
            };
            let mode = GainMode { potential, accumulate: t.col_offset > 0 };
            ops::facility_gain(ctx, &mut enc, &scan.dist, m, &self.blk, t.rows, t.cols, mode).await?;
            if tiles.get(i + 1).is_none_or(|n| n.row_offset != t.row_offset) {
                enc.copy_buffer_to_buffer(&self.blk, 0, &self.all, t.row_offset as u64 * 4, t.rows as u64 * 4);
                ctx.submit(std::mem::replace(&mut enc, ctx.encoder()));
            }
        }
        ctx.submit(enc);
        read_f32(ctx, &self.all, scan.na).await
    }
}

/// The `k` nearest rows of `b` for every row of `a` ([na, k], ascending, ties to the lower index).
pub(super) async fn topk(ctx: &GpuContext, scan: &TileScan<'_>, k: usize) -> Result<(Vec<f32>, Vec<u32>)> {
    let (ov, oi) = (ctx.storage("knn", (scan.rows * k * 4) as u64)?, ctx.storage("knn", (scan.rows * k * 4) as u64)?);
    let (mut vals, mut idx) = (Vec::with_capacity(scan.na * k), Vec::with_capacity(scan.na * k));
    let tiles = scan.tiles();
    let mut enc = ctx.encoder();
    for (i, &t) in tiles.iter().enumerate() {
        scan.compute(&mut enc, t).await?;
        ops::topk_rows(ctx, &mut enc, &scan.dist, &ov, &oi, t.rows, t.cols, k, t.col_offset, t.col_offset > 0).await?;
        if tiles.get(i + 1).is_none_or(|n| n.row_offset != t.row_offset) {
            ctx.submit(std::mem::replace(&mut enc, ctx.encoder()));
            let parts =
                crate::gpu::readback::read_many(ctx, &[(&ov, (t.rows * k * 4) as u64), (&oi, (t.rows * k * 4) as u64)])
                    .await?;
            vals.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&parts[0]));
            idx.extend(bytemuck::pod_collect_to_vec::<u8, u32>(&parts[1]));
        }
    }
    Ok((vals, idx))
}

/// The `k` nearest other rows of every row of the pool (self excluded by index): squared distances [n, k'] with
/// k' = min(k, n − 1) and their indices.
pub async fn knn(ctx: &GpuContext, pool: &Pool<'_>, k: usize) -> Result<(Vec<f32>, Vec<u32>, usize)> {
    let x = pool.x;
    let k = k.min(x.n.saturating_sub(1));
    if k + 1 > 64 {
        return Err(Error::Invalid(format!("kNN on the GPU supports k ≤ 63, not {k}")));
    }
    if k == 0 {
        return Ok((vec![], vec![], 0));
    }
    let (v, i) = topk(ctx, &pool.self_scan(ctx)?, k + 1).await?;
    let (mut vals, mut idx) = (Vec::with_capacity(x.n * k), Vec::with_capacity(x.n * k));
    for r in 0..x.n {
        let row = (r * (k + 1))..((r + 1) * (k + 1));
        let skip = i[row.clone()].iter().position(|&j| j as usize == r).unwrap_or(k);
        for (t, p) in row.enumerate() {
            if t != skip {
                vals.push(v[p]);
                idx.push(i[p]);
            }
        }
    }
    Ok((vals, idx, k))
}

/// The `k` nearest rows of `b` for every row of the pool: squared distances and indices [n, k], ascending.
pub async fn nearest_k(ctx: &GpuContext, pool: &Pool<'_>, b: Matrix<'_>, k: usize) -> Result<(Vec<f32>, Vec<u32>)> {
    let bb = ctx.upload("nearest", b.data)?;
    let scan = TileScan::new(ctx, Rows::Pool(pool), pool.x.n, Rows::Buf(&bb), b.n, pool.x.d)?;
    topk(ctx, &scan, k.min(b.n)).await
}

/// Squared distances from row `a` to every row, computed on the device into `col` and read back.
pub(super) async fn distance_column(ctx: &GpuContext, pool: &Pool<'_>, col: &Buffer, a: usize) -> Result<Vec<f32>> {
    let mut enc = ctx.encoder();
    pool.min_dist_update(ctx, &mut enc, col, a, true).await?;
    ctx.submit(enc);
    read_f32(ctx, col, pool.x.n).await
}
