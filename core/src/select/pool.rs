//! The pool of features where the scans run ([`Pool`]: on the GPU in row blocks that each fit one storage
//! binding; on the CPU the caller's rows, borrowed) and the streamed tile of squared distances every n×n scan
//! reuses ([`TileScan`]), with the scans built directly on them: top-k (kNN, nearest centres), facility-location
//! gains, one distance column. Every kernel call goes through `Exec`, so the code is the same on both backends.

use super::Matrix;
use crate::cpu::{segments, GainMode};
use crate::exec::{Backend, Buf, Exec};
use crate::gpu::ops::Tile;
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

/// The f32 values one storage binding (and one buffer) may hold on this backend, or less on this thread.
pub(super) fn binding_floats(be: &Backend) -> usize {
    let device = be.max_words();
    BINDING_FLOATS.with(|c| c.get()).map_or(device, |f| f.min(device))
}

/// The CPU backend's largest distance tile, in floats (16 MiB: the tile is written and scanned while it is
/// still in the caches' reach) and rows.
const CPU_TILE_FLOATS: usize = 4 << 20;
const CPU_TILE_ROWS: usize = 2048;

/// Rows `row0 .. row0 + rows` of a blocked pool; the buffer has one spare row at the end (the centre row of a
/// blocked `min_dist_update`).
pub(super) struct PoolBlock<'a> {
    pub(super) row0: usize,
    pub(super) rows: usize,
    pub(super) buf: Buf<'a>,
}

/// A feature matrix uploaded once, shared by every pass a strategy makes over it: one buffer when it fits a
/// storage binding, else row blocks that each do.
pub struct Pool<'a> {
    pub x: Matrix<'a>,
    pub be: Backend<'a>,
    pub(super) blocks: Vec<PoolBlock<'a>>,
    /// Blocked pools: the centre row and a block's share of a per-row output.
    pub(super) scratch: Option<(Buf<'a>, Buf<'a>)>,
    /// The f16 store ([`Pool::upload_f16`]): `x` holds packed words (⌈D/2⌉ a row) and this is D. Only
    /// [`Pool::min_dist_update`] reads such a pool.
    pub f16_d: Option<usize>,
}

/// Where the rows of one side of a [`TileScan`] come from.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    Buf(&'a Buf<'a>),
    Pool(&'a Pool<'a>),
}

impl<'a> Pool<'a> {
    pub fn upload(be: Backend<'a>, x: Matrix<'a>) -> Result<Self> {
        let limit = binding_floats(&be);
        let d = x.d.max(1);
        if x.n * d <= limit {
            let buf = be.rows("pool", x.data)?;
            return Ok(Pool { x, be, blocks: vec![PoolBlock { row0: 0, rows: x.n, buf }], scratch: None, f16_d: None });
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
            let buf = be.storage("pool", (r + 1) * d)?;
            be.write(&buf, 0, &x.data[row0 * d..(row0 + r) * d])?;
            blocks.push(PoolBlock { row0, rows: r, buf });
        }
        let scratch = (be.storage("pool", d)?, be.storage("pool", rows + 1)?);
        Ok(Pool { x, be, blocks, scratch: Some(scratch), f16_d: None })
    }

    /// The f16 feature store: `packed` is `cpu::min_dist_update_f16::pack_f16_rows` of n rows of `d` features
    /// (⌈d/2⌉ words a row, viewed as f32 words only to be moved); half the bytes of [`Pool::upload`] for every
    /// k-center step to read.
    pub fn upload_f16(be: Backend<'a>, packed: &'a [u32], n: usize, d: usize) -> Result<Self> {
        let words: &'a [f32] = bytemuck::cast_slice(packed);
        let mut p = Pool::upload(be, Matrix::new(words, n, d.div_ceil(2))?)?;
        p.f16_d = Some(d);
        Ok(p)
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
    pub(super) fn self_scan(&self) -> Result<TileScan<'_>> {
        TileScan::new(self.be, Rows::Pool(self), self.x.n, Rows::Pool(self), self.x.n, self.x.d)
    }

    /// Record copies of rows `start .. start + len` into `dst` (from row 0).
    pub(super) fn copy_rows(&self, ex: &mut Exec, start: usize, len: usize, dst: &Buf) -> Result<()> {
        let d = self.x.d;
        for b in &self.blocks {
            let (lo, hi) = (start.max(b.row0), (start + len).min(b.row0 + b.rows));
            if lo < hi {
                ex.copy(&b.buf, (lo - b.row0) * d, dst, (lo - start) * d, (hi - lo) * d)?;
            }
        }
        Ok(())
    }

    /// Partial sums per trial and 32 rows of [`Pool::kmeanspp_gain`] over the whole pool.
    pub(super) fn kmeanspp_groups(&self) -> usize {
        let g = crate::cpu::kmeanspp_gain::KMEANSPP_GAIN_ROWS;
        self.blocks.iter().map(|b| b.rows.div_ceil(g)).sum()
    }

    /// Record k-means++'s potential decrease of each of `trials` candidate rows `cand` (`kmeanspp_gain`, pruned by
    /// `dcand` [trials, stride] as `kcenter_update`): `partial` gets [`Pool::kmeanspp_groups`] sums per trial, block
    /// after block; `count` [1] grows by the (row, trial) pairs read.
    #[allow(clippy::too_many_arguments)] // operands, outputs and the pass
    pub(super) async fn kmeanspp_gain(
        &self,
        ex: &mut Exec<'_>,
        cand: &Buf<'_>,
        dcand: &Buf<'_>,
        owner: &Buf<'_>,
        mind: &Buf<'_>,
        partial: &Buf<'_>,
        count: &Buf<'_>,
        trials: usize,
        stride: usize,
    ) -> Result<()> {
        use crate::cpu::kcenter_update::margin_for;
        use crate::cpu::kmeanspp_gain::{KmeansppGain, KMEANSPP_GAIN_ROWS, KMEANSPP_GAIN_TRIALS};
        if self.f16_d.is_some() {
            return Err(Error::Invalid("kmeanspp_gain: the f16 store holds packed words, not rows".into()));
        }
        let d = self.x.d;
        let mut wg0 = 0;
        for b in &self.blocks {
            for t0 in (0..trials).step_by(KMEANSPP_GAIN_TRIALS) {
                let t = KMEANSPP_GAIN_TRIALS.min(trials - t0);
                let (row0, margin) = (b.row0, margin_for(d));
                let s = KmeansppGain { n: b.rows, d, trials: t, t0, total: trials, row0, stride, wg0, margin };
                ex.kmeanspp_gain(&b.buf, cand, dcand, owner, mind, partial, count, s).await?;
            }
            wg0 += b.rows.div_ceil(KMEANSPP_GAIN_ROWS);
        }
        Ok(())
    }

    /// Record the packing of rows `open[lo..hi]` (ascending row numbers, uploaded whole as `idx`) into `dst` from
    /// row 0, block by block (a block's rows are one run of `open`).
    pub(super) async fn gather(
        &self,
        ex: &mut Exec<'_>,
        idx: &Buf<'_>,
        open: &[u32],
        lo: usize,
        hi: usize,
        dst: &Buf<'_>,
    ) -> Result<()> {
        if self.f16_d.is_some() {
            return Err(Error::Invalid("gather_rows: the f16 store holds packed words, not rows".into()));
        }
        let d = self.x.d;
        let run = &open[lo..hi];
        for b in &self.blocks {
            let s = run.partition_point(|&i| (i as usize) < b.row0);
            let e = run.partition_point(|&i| (i as usize) < b.row0 + b.rows);
            if s < e {
                let g = crate::cpu::GatherRows {
                    rows: e - s,
                    d,
                    idx_offset: lo + s,
                    src_row0: b.row0,
                    src_rows: b.rows,
                    dst_row0: s,
                };
                ex.gather_rows(&b.buf, idx, dst, g).await?;
            }
        }
        Ok(())
    }

    /// `target[i] = ‖x_i − x_center‖²` (`init`) or the minimum of that and `target[i]`, for every row.
    pub async fn min_dist_update(&self, ex: &mut Exec<'_>, target: &Buf<'_>, center: usize, init: bool) -> Result<()> {
        let (n, d) = (self.x.n, self.x.d);
        let Some((crow, tblk)) = &self.scratch else {
            return match self.f16_d {
                Some(fd) => ex.min_dist_update_f16(&self.blocks[0].buf, target, n, fd, center, init).await,
                None => ex.min_dist_update(&self.blocks[0].buf, target, n, d, center, init).await,
            };
        };
        if center >= n {
            return Err(Error::shape("min_dist_update", format!("centre {center} is outside the {n} rows")));
        }
        self.copy_rows(ex, center, 1, crow)?;
        for b in &self.blocks {
            // The centre goes to the block's spare row; the block's share of `target` through `tblk`.
            ex.copy(crow, 0, &b.buf, b.rows * d, d)?;
            if !init {
                ex.copy(target, b.row0, tblk, 0, b.rows)?;
            }
            match self.f16_d {
                Some(fd) => ex.min_dist_update_f16(&b.buf, tblk, b.rows + 1, fd, b.rows, init).await?,
                None => ex.min_dist_update(&b.buf, tblk, b.rows + 1, d, b.rows, init).await?,
            }
            ex.copy(tblk, 0, target, b.row0, b.rows)?;
        }
        Ok(())
    }

    /// The pruned k-center step (`kcenter_update`) from row `center` as centre number `k`: `dc2` [k] holds its
    /// squared distances to the earlier centres, `owner` and `mind` [n] each row's centre and minimum, `count` [1]
    /// the rows read. Either store.
    #[allow(clippy::too_many_arguments)] // buffers, the centre and the step
    pub async fn kcenter_update(
        &self,
        ex: &mut Exec<'_>,
        dc2: &Buf<'_>,
        owner: &Buf<'_>,
        mind: &Buf<'_>,
        count: &Buf<'_>,
        center: usize,
        k: u32,
        init: bool,
    ) -> Result<()> {
        use crate::cpu::kcenter_update::{margin_for, KcenterStep};
        // `d`: words a row (what blocks copy); `fd`: features (what the step measures).
        let (n, d) = (self.x.n, self.x.d);
        let fd = self.f16_d.unwrap_or(d);
        if center >= n {
            return Err(Error::shape("kcenter_update", format!("centre {center} is outside the {n} rows")));
        }
        let step = |n, center, row0| KcenterStep { n, d: fd, center, init, row0, k, margin: margin_for(fd) };
        // The f16 store's packed rows or f32 rows: two ops, one signature.
        let f16 = self.f16_d.is_some();
        let Some((crow, _)) = &self.scratch else {
            let x = &self.blocks[0].buf;
            return match f16 {
                true => ex.kcenter_update_f16(x, dc2, owner, mind, count, step(n, center, 0)).await,
                false => ex.kcenter_update(x, dc2, owner, mind, count, step(n, center, 0)).await,
            };
        };
        self.copy_rows(ex, center, 1, crow)?;
        for b in &self.blocks {
            ex.copy(crow, 0, &b.buf, b.rows * d, d)?;
            let s = step(b.rows, b.rows, b.row0);
            match f16 {
                true => ex.kcenter_update_f16(&b.buf, dc2, owner, mind, count, s).await?,
                false => ex.kcenter_update(&b.buf, dc2, owner, mind, count, s).await?,
            }
        }
        Ok(())
    }

    /// k-means centre update: the mean of the rows of each label (`labels` [n] < k); a centre without rows keeps
    /// its value in `centers` [k·d]. Returns the new centres, also written to `bc`. Blocked pools average each
    /// block on the device and combine the block means weighted by their counts on the host (f64).
    pub async fn segment_mean(&self, labels: &[u32], k: usize, centers: &[f32], bc: &Buf<'_>) -> Result<Vec<f32>> {
        let (be, d) = (self.be, self.x.d);
        let mut ex = be.exec();
        if !self.is_blocked() {
            let (order, offsets) = segments(labels, k);
            let bo = be.upload("kmeans", &order)?;
            let boff = be.upload("kmeans", &offsets)?;
            ex.segment_mean(&self.blocks[0].buf, &bo, &boff, bc, self.x.n, k, d).await?;
            return ex.read_f32(bc, k * d).await;
        }
        let mut sum = vec![0f64; k * d];
        let mut count = vec![0usize; k];
        let part = be.storage("kmeans", k * d)?;
        for b in &self.blocks {
            let lab = &labels[b.row0..b.row0 + b.rows];
            let (order, offsets) = segments(lab, k);
            let bo = be.upload("kmeans", &order)?;
            let boff = be.upload("kmeans", &offsets)?;
            ex.segment_mean(&b.buf, &bo, &boff, &part, b.rows, k, d).await?;
            let means = ex.read_f32(&part, k * d).await?;
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
        be.write(bc, 0, &new)?;
        Ok(new)
    }
}

/// Streams the squared distances between the rows of `a` [na, d] and `b` [nb, d] tile by tile into one buffer.
pub struct TileScan<'a> {
    pub(super) be: Backend<'a>,
    pub(super) a: Rows<'a>,
    pub(super) b: Rows<'a>,
    pub na: usize,
    pub nb: usize,
    pub(super) d: usize,
    pub rows: usize,
    pub cols: usize,
    pub dist: Buf<'a>,
    pub(super) a_blk: Option<Buf<'a>>,
    pub(super) b_blk: Option<Buf<'a>>,
}

impl<'a> TileScan<'a> {
    pub fn new(be: Backend<'a>, a: Rows<'a>, na: usize, b: Rows<'a>, nb: usize, d: usize) -> Result<Self> {
        let limit = binding_floats(&be);
        let (mut max_rows, mut max_floats) = tile_limits();
        if !be.is_gpu() {
            (max_rows, max_floats) = (max_rows.min(CPU_TILE_ROWS), max_floats.min(CPU_TILE_FLOATS));
        }
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
        let dist = be.storage("tile scan", rows * cols)?;
        let blocked = |r: &Rows| matches!(r, Rows::Pool(p) if p.is_blocked());
        let a_blk = if rows < na || blocked(&a) { Some(be.storage("tile scan", rows * d)?) } else { None };
        let b_blk = if cols < nb || blocked(&b) { Some(be.storage("tile scan", cols * d)?) } else { None };
        Ok(TileScan { be, a, b, na, nb, d, rows, cols, dist, a_blk, b_blk })
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

    /// Record the copies of the tile's blocks and the distance computation into `ex` (result in `self.dist`,
    /// [t.rows, t.cols]). Tiles must come in the order of [`TileScan::tiles`]: a row block is copied once, at its
    /// first column tile.
    pub async fn compute(&self, ex: &mut Exec<'_>, t: Tile) -> Result<()> {
        let d = self.d;
        let copy = |ex: &mut Exec, src: Rows, start: usize, len: usize, dst: &Buf| match src {
            Rows::Buf(buf) => ex.copy(buf, start * d, dst, 0, len * d),
            Rows::Pool(p) => p.copy_rows(ex, start, len, dst),
        };
        let whole = |r: Rows<'a>| -> &'a Buf<'a> {
            match r {
                Rows::Buf(buf) => buf,
                Rows::Pool(p) => &p.blocks[0].buf,
            }
        };
        let a = match &self.a_blk {
            Some(blk) => {
                if t.col_offset == 0 {
                    copy(ex, self.a, t.row_offset, t.rows, blk)?;
                }
                blk
            }
            None => whole(self.a),
        };
        let b = match &self.b_blk {
            Some(blk) => {
                copy(ex, self.b, t.col_offset, t.cols, blk)?;
                blk
            }
            None => whole(self.b),
        };
        ex.sqdist(a, b, &self.dist, t.rows, t.cols, d).await
    }
}

/// Σ over all columns of `facility_gain` for every row of a scan (`mind` holds one value per column of the
/// scan), accumulated tile by tile with one readback at the end; the buffers are allocated once and reused by
/// every pass (a greedy loop runs many).
pub(super) struct Gains<'a> {
    pub(super) scan: TileScan<'a>,
    pub(super) all: Buf<'a>,
    pub(super) blk: Buf<'a>,
    pub(super) mind_blk: Option<Buf<'a>>,
}

impl<'a> Gains<'a> {
    pub(super) fn new(scan: TileScan<'a>) -> Result<Self> {
        let be = scan.be;
        let all = be.storage("gains", scan.na)?;
        let blk = be.storage("gains", scan.rows)?;
        let mind_blk = if scan.cols < scan.nb { Some(be.storage("gains", scan.cols)?) } else { None };
        Ok(Gains { scan, all, blk, mind_blk })
    }

    pub(super) async fn run(&self, mind: &Buf<'_>, potential: bool) -> Result<Vec<f32>> {
        let scan = &self.scan;
        let mut ex = scan.be.exec();
        let tiles = scan.tiles();
        for (i, &t) in tiles.iter().enumerate() {
            scan.compute(&mut ex, t).await?;
            let m = match &self.mind_blk {
                Some(mb) => {
                    ex.copy(mind, t.col_offset, mb, 0, t.cols)?;
                    mb
                }
                None => mind,
            };
            let mode = GainMode { potential, accumulate: t.col_offset > 0 };
            ex.facility_gain(&scan.dist, m, &self.blk, t.rows, t.cols, mode).await?;
            if tiles.get(i + 1).is_none_or(|n| n.row_offset != t.row_offset) {
                ex.copy(&self.blk, 0, &self.all, t.row_offset, t.rows)?;
                ex.flush();
            }
        }
        ex.read_f32(&self.all, scan.na).await
    }
}

/// The `k` nearest rows of `b` for every row of `a` ([na, k], ascending, ties to the lower index).
pub(super) async fn topk(scan: &TileScan<'_>, k: usize) -> Result<(Vec<f32>, Vec<u32>)> {
    let be = scan.be;
    let (ov, oi) = (be.storage("knn", scan.rows * k)?, be.storage("knn", scan.rows * k)?);
    let (mut vals, mut idx) = (Vec::with_capacity(scan.na * k), Vec::with_capacity(scan.na * k));
    let tiles = scan.tiles();
    let mut ex = be.exec();
    for (i, &t) in tiles.iter().enumerate() {
        scan.compute(&mut ex, t).await?;
        ex.topk_rows(&scan.dist, &ov, &oi, t.rows, t.cols, k, t.col_offset, t.col_offset > 0).await?;
        if tiles.get(i + 1).is_none_or(|n| n.row_offset != t.row_offset) {
            let mut parts = ex.read_many_f32(&[(&ov, t.rows * k), (&oi, t.rows * k)]).await?.into_iter();
            vals.extend(parts.next().unwrap_or_default());
            idx.extend(parts.next().unwrap_or_default().into_iter().map(f32::to_bits));
        }
    }
    Ok((vals, idx))
}

/// The `k` nearest other rows of every row of the pool (self excluded by index): squared distances [n, k'] with
/// k' = min(k, n − 1) and their indices.
pub async fn knn(pool: &Pool<'_>, k: usize) -> Result<(Vec<f32>, Vec<u32>, usize)> {
    let x = pool.x;
    let k = k.min(x.n.saturating_sub(1));
    if k + 1 > 64 {
        return Err(Error::Invalid(format!("kNN in the scans supports k ≤ 63, not {k}")));
    }
    if k == 0 {
        return Ok((vec![], vec![], 0));
    }
    let (v, i) = topk(&pool.self_scan()?, k + 1).await?;
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
pub async fn nearest_k(pool: &Pool<'_>, b: Matrix<'_>, k: usize) -> Result<(Vec<f32>, Vec<u32>)> {
    let bb = pool.be.rows("nearest", b.data)?;
    let scan = TileScan::new(pool.be, Rows::Pool(pool), pool.x.n, Rows::Buf(&bb), b.n, pool.x.d)?;
    topk(&scan, k.min(b.n)).await
}

/// Squared distances from row `a` to every row, computed into `col` and read back.
pub(super) async fn distance_column(pool: &Pool<'_>, col: &Buf<'_>, a: usize) -> Result<Vec<f32>> {
    let mut ex = pool.be.exec();
    pool.min_dist_update(&mut ex, col, a, true).await?;
    ex.read_f32(col, pool.x.n).await
}
