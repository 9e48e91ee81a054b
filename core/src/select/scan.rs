//! The heavy parts of the selection strategies on a backend (the WGSL kernels or the CPU backend, through `Exec`),
//! streaming every n×n computation through one reused tile of squared distances ([`TileScan`], at most 128 MiB
//! on a GPU, 16 MiB on the CPU), so no n×n matrix is ever stored:
//! - k-means: greedy k-means++ seeding (candidate potentials by `facility_gain` in potential mode, the chosen
//!   centre's update by `min_dist_update`) and Lloyd (assignment by `pairwise_sqdist` + `topk_rows` with k = 1,
//!   centre update by the host's counting sort + `segment_mean`, the two-pass reduction WGSL needs without
//!   float atomics);
//! - kNN: `pairwise_sqdist` tiles merged by `topk_rows`;
//! - ProbCover: the purity scan (`other_label_min`) and the sparse δ-graph (`radius_edges`, two passes);
//! - facility location (RepDiv): lazy greedy over `facility_gain` upper bounds.
//!
//! GPU arithmetic is f32 with distances by the norm expansion; the CPU backend computes the same kernels with f64
//! distances and sums (stored as f32 like the kernels' outputs); the plain code in `strategies` is the f64
//! reference. The paths agree except where two candidates' scores are within rounding of each other.
//!
//! A feature matrix larger than one storage binding (128 MiB in browsers and on lavapipe: 43k rows of 768
//! floats) is held as row blocks ([`Pool`]); tiles copy their rows out of the blocks, the per-row passes
//! (`min_dist_update`, `segment_mean`) run block by block, so no strategy fails on a pool that fits the device's
//! memory as a whole. Results do not depend on the blocking except for the summation order of k-means centres.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::argmax;
use super::kmeans::Clustering;
pub use super::pool::*;
pub use super::scan_kmeans::{set_seed_host_work, Scanned};
use super::{Matrix, Selection};
use crate::cpu::{exclusive_prefix, segments};
use crate::exec::{Backend, Buf};
use crate::{Error, Result};

/// k-means as [`super::kmeans::kmeans`] does it (same seeding rule, RNG stream, iteration and stopping rule),
/// with every O(n·k·d) pass in the scans and Lloyd's iterations pruned by Hamerly's bounds: the result of
/// [`kmeans_plain`] (see [`super::scan_kmeans`]).
pub async fn kmeans(pool: &Pool<'_>, k: usize, seed: u64, max_iter: usize, tol: f64) -> Result<Clustering> {
    Ok(kmeans_counted(pool, k, seed, max_iter, tol).await?.0)
}

/// [`kmeans`], with the rows its iterations measured against every centre and the plain scans' count.
pub async fn kmeans_counted(
    pool: &Pool<'_>,
    k: usize,
    seed: u64,
    max_iter: usize,
    tol: f64,
) -> Result<(Clustering, Scanned)> {
    let k = k.clamp(1, pool.x.n.max(1));
    let t = crate::Instant::now();
    let (centers, seed_pairs, seed_pairs_plain) = super::scan_kmeans::seed(pool, k, seed, true).await?;
    let seconds_seed = t.elapsed().as_secs_f64();
    let t = crate::Instant::now();
    let (c, st) = super::scan_kmeans::lloyd(pool, k, centers, max_iter, tol).await?;
    let seconds_lloyd = t.elapsed().as_secs_f64();
    Ok((c, Scanned { seed_pairs, seed_pairs_plain, seconds_seed, seconds_lloyd, ..st }))
}

/// [`kmeans`] without pruning: every row read at every seeding step and against every centre at every iteration.
pub async fn kmeans_plain(pool: &Pool<'_>, k: usize, seed: u64, max_iter: usize, tol: f64) -> Result<Clustering> {
    let k = k.clamp(1, pool.x.n.max(1));
    let centers = super::scan_kmeans::seed(pool, k, seed, false).await?.0;
    super::scan_kmeans::lloyd_plain(pool, k, centers, max_iter, tol).await
}

/// ProbCover's purity scan: per row the squared distance to the nearest row of another label, and the largest
/// squared distance in the pool.
pub async fn other_label_scan(pool: &Pool<'_>, labels: &[usize]) -> Result<(Vec<f32>, f32)> {
    let (n, be) = (pool.x.n, pool.be);
    let lab: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    let bl = be.upload("probcover", &lab)?;
    let (mn, mx) = (be.storage("probcover", n)?, be.storage("probcover", n)?);
    let scan = pool.self_scan()?;
    let mut ex = be.exec();
    let tiles = scan.tiles();
    for (i, &t) in tiles.iter().enumerate() {
        scan.compute(&mut ex, t).await?;
        ex.other_label_min(&scan.dist, &bl, &mn, &mx, n, t, t.col_offset > 0).await?;
        if tiles.get(i + 1).is_none_or(|nx| nx.row_offset != t.row_offset) {
            ex.flush();
        }
    }
    let other = ex.read_f32(&mn, n).await?;
    let maxd2 = ex.read_f32(&mx, n).await?.into_iter().fold(0f32, f32::max);
    Ok((other, maxd2))
}

/// MedCAL's δ scan ([`super::probcover::probcover_delta`]) from the scans' purity pass.
pub async fn probcover_delta(pool: &Pool<'_>, labels: &[usize]) -> Result<f64> {
    let (other, maxd2) = other_label_scan(pool, labels).await?;
    Ok(super::medcal_delta((maxd2 as f64).sqrt(), pool.x.n, |delta| {
        other.iter().filter(|&&o| delta * delta < o as f64).count()
    }))
}

/// The δ-graph N(i) = {j : D_ij ≤ δ} in CSR form (offsets [n+1], sorted neighbour lists), built by the scans in
/// two passes (count, then write at the prefix sums); an edge list larger than one storage binding is written
/// in chunks ([`delta_graph_chunked`]).
pub async fn delta_graph(pool: &Pool<'_>, delta: f64) -> Result<(Vec<usize>, Vec<u32>)> {
    delta_graph_chunked(pool, delta, binding_floats(&pool.be)).await
}

/// [`delta_graph`] with at most `max_edges` edges per device buffer: the write pass runs once per group of
/// consecutive rows whose edges fit (the tiles of those rows only, keeping the positions of that group), and the
/// host concatenates the groups. The graph does not depend on `max_edges`.
pub async fn delta_graph_chunked(pool: &Pool<'_>, delta: f64, max_edges: usize) -> Result<(Vec<usize>, Vec<u32>)> {
    let (n, be) = (pool.x.n, pool.be);
    let r2 = (delta * delta) as f32;
    let scan = pool.self_scan()?;
    let tiles = scan.tiles();
    let cursor = be.storage("probcover", n)?;
    let none = be.storage("probcover", 1)?;
    let mut ex = be.exec();
    for &t in &tiles {
        scan.compute(&mut ex, t).await?;
        ex.radius_edges(&scan.dist, &cursor, &none, n, t, false, r2, 1, 0).await?;
        ex.flush();
    }
    let (starts, acc) = exclusive_prefix(&ex.read_u32(&cursor, n).await?);
    let offsets: Vec<usize> = starts.iter().map(|&o| o as usize).chain([acc]).collect();
    let too_large = |edges: usize, what: String| Error::TooLarge {
        op: "probcover",
        what,
        bytes: edges as u64 * 4,
        limit: max_edges.min(u32::MAX as usize) as u64 * 4,
    };
    if acc > u32::MAX as usize {
        return Err(too_large(acc, format!("the δ-graph at δ = {delta:.6} ({acc} edges; positions are u32)")));
    }
    let mut edges = Vec::with_capacity(acc);
    for (r0, r1) in row_groups(&offsets, max_edges.max(1)) {
        let (e0, e1) = (offsets[r0], offsets[r1]);
        if e1 == e0 {
            continue;
        }
        if e1 - e0 > max_edges {
            return Err(too_large(e1 - e0, format!("row {r0} of the δ-graph at δ = {delta:.6} ({} edges)", e1 - e0)));
        }
        let cap = (e1 - e0).max(1);
        let cursor = be.upload("probcover", &starts)?;
        let chunk = be.storage("probcover", cap)?;
        for &t in tiles.iter().filter(|t| t.row_offset < r1 && t.row_offset + t.rows > r0) {
            scan.compute(&mut ex, t).await?;
            ex.radius_edges(&scan.dist, &cursor, &chunk, n, t, true, r2, cap, e0).await?;
            ex.flush();
        }
        edges.extend(ex.read_u32(&chunk, e1 - e0).await?);
    }
    Ok((offsets, edges))
}

/// Consecutive row ranges [r0, r1) covering every row, each with at most `max_edges` edges (by the CSR
/// `offsets`) unless a single row has more; empty when there are no rows.
pub fn row_groups(offsets: &[usize], max_edges: usize) -> Vec<(usize, usize)> {
    let n = offsets.len().saturating_sub(1);
    let mut out = Vec::new();
    let mut r0 = 0;
    while r0 < n {
        let mut r1 = r0 + 1;
        while r1 < n && offsets[r1 + 1] - offsets[r0] <= max_edges {
            r1 += 1;
        }
        out.push((r0, r1));
        r0 = r1;
    }
    out
}

/// A candidate in the lazy greedy heap: ordered by upper bound, then the lower index first.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bound {
    pub(super) ub: f64,
    pub(super) idx: usize,
    /// The pick number at which `ub` was computed exactly.
    pub(super) stamp: usize,
}

impl PartialEq for Bound {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Bound {
    fn cmp(&self, o: &Self) -> Ordering {
        self.ub.total_cmp(&o.ub).then(o.idx.cmp(&self.idx))
    }
}

/// Pop up to `max` stale bounds (computed before pick `step`) from the top of a lazy-greedy heap, with the fresh
/// ones met on the way (to push back as they are).
pub(super) fn pop_stale(heap: &mut BinaryHeap<Bound>, step: usize, max: usize) -> (Vec<Bound>, Vec<Bound>) {
    let (mut stale, mut fresh) = (Vec::with_capacity(max), Vec::new());
    while stale.len() < max {
        let Some(b) = heap.pop() else { break };
        if b.stamp == step {
            fresh.push(b);
        } else {
            stale.push(b);
        }
    }
    (stale, fresh)
}

/// Facility location on L2-normalised rows (`xn`), `picks` greedy steps from the rows in `labeled`, by lazy
/// greedy: gains only shrink as rows are chosen (submodularity), so a candidate whose freshly computed gain tops
/// every other's last known gain is the greedy pick (ties to the lower index), and only the top of the heap is
/// re-evaluated, in batches of 64. Returns picks with their gains and the `mind` buffer.
pub async fn facility_location<'p>(pool: &Pool<'p>, labeled: &[usize], picks: usize) -> Result<(Selection, Buf<'p>)> {
    const BATCH: usize = 64;
    let (xn, be) = (pool.x, pool.be);
    let (n, d) = (xn.n, xn.d);
    let mind = be.upload("repdiv", &vec![f32::MAX; n])?;
    let mut ex = be.exec();
    for &l in labeled {
        pool.min_dist_update(&mut ex, &mind, l, false).await?;
    }
    ex.flush();
    let mut chosen = vec![false; n];
    for &l in labeled {
        chosen[l] = true;
    }
    let g0 = Gains::new(pool.self_scan()?)?.run(&mind, false).await?;
    let mut heap: BinaryHeap<Bound> =
        (0..n).filter(|&i| !chosen[i]).map(|i| Bound { ub: g0[i] as f64, idx: i, stamp: 0 }).collect();
    let cand = be.storage("repdiv", BATCH * d)?;
    let gains = Gains::new(TileScan::new(be, Rows::Buf(&cand), BATCH, Rows::Pool(pool), n, d)?)?;
    let mut sel = Selection { strategy: String::new(), seed: 0, picks: vec![], scores: vec![], notes: vec![] };
    let mut evaluations = 0usize;
    while sel.picks.len() < picks {
        let step = sel.picks.len();
        let Some(top) = heap.peek().copied() else { break };
        if top.stamp == step {
            heap.pop();
            chosen[top.idx] = true;
            sel.picks.push(top.idx);
            sel.scores.push(top.ub);
            pool.min_dist_update(&mut ex, &mind, top.idx, false).await?;
            ex.flush();
            continue;
        }
        // Re-evaluate the stale candidates at the top of the heap.
        let (batch, fresh) = pop_stale(&mut heap, step, BATCH);
        let mut rows: Vec<f32> = batch.iter().flat_map(|b| xn.row(b.idx).iter().copied()).collect();
        rows.resize(BATCH * d, 0.0);
        be.write(&cand, 0, &rows)?;
        let g = gains.run(&mind, false).await?;
        evaluations += batch.len();
        for (t, b) in batch.iter().enumerate() {
            heap.push(Bound { ub: g[t] as f64, idx: b.idx, stamp: step });
        }
        heap.extend(fresh);
    }
    sel.notes.push(format!(
        "lazy greedy: {evaluations} gain evaluations for {} picks (plain greedy: {})",
        sel.picks.len(),
        sel.picks.len() * n
    ));
    Ok((sel, mind))
}

/// Greedy maximum coverage on a graph in CSR form (ProbCover): each step picks the row covering the most
/// uncovered rows (lowest index on ties), with gains kept up to date incrementally through the reverse graph;
/// stops when nothing new can be covered. Rows in `labeled` cover their neighbourhoods from the start.
pub fn max_cover(offsets: &[usize], edges: &[u32], budget: usize, labeled: &[usize], delta: f64) -> Selection {
    let n = offsets.len() - 1;
    // Reverse graph rev(j) = {i : j ∈ N(i)}: the edges grouped by target (the counting sort k-means uses), each
    // mapped back to its source.
    let source: Vec<u32> = (0..n).flat_map(|i| std::iter::repeat_n(i as u32, offsets[i + 1] - offsets[i])).collect();
    let (by_target, roff) = segments(edges, n);
    let rev: Vec<u32> = by_target.iter().map(|&e| source[e as usize]).collect();
    let roff: Vec<usize> = roff.iter().map(|&o| o as usize).collect();
    let mut gain: Vec<i64> = (0..n).map(|i| (offsets[i + 1] - offsets[i]) as i64).collect();
    let mut covered = vec![false; n];
    let cover = |j: usize, covered: &mut Vec<bool>, gain: &mut Vec<i64>| {
        if !covered[j] {
            covered[j] = true;
            for &i in &rev[roff[j]..roff[j + 1]] {
                gain[i as usize] -= 1;
            }
        }
    };
    for &l in labeled {
        for &j in &edges[offsets[l]..offsets[l + 1]] {
            cover(j as usize, &mut covered, &mut gain);
        }
    }
    let mut sel = Selection { strategy: String::new(), seed: 0, picks: vec![], scores: vec![], notes: vec![] };
    while sel.picks.len() < budget {
        let mut best = 0;
        for i in 1..n {
            if gain[i] > gain[best] {
                best = i;
            }
        }
        if n == 0 || gain[best] <= 0 {
            sel.notes.push(format!("every point is covered after {} picks at δ = {delta:.6}", sel.picks.len()));
            break;
        }
        sel.picks.push(best);
        sel.scores.push(gain[best] as f64);
        for &j in &edges[offsets[best]..offsets[best + 1]] {
            cover(j as usize, &mut covered, &mut gain);
        }
    }
    sel
}

/// RepDiv ([`super::repdiv::repdiv`]) in the scans: lazy-greedy facility location for ⌊0.7·B⌋ picks, then
/// the diversity picks (1 − cos = D/2 on unit vectors) from distance columns computed by the scans.
pub async fn repdiv(
    be: Backend<'_>,
    xn: Matrix<'_>,
    labeled: &[usize],
    budget: usize,
    maxmin: bool,
) -> Result<Selection> {
    let n = xn.n;
    let r = (0.7 * budget as f64).floor() as usize;
    let pool = Pool::upload(be, xn)?;
    let (mut sel, mind) = facility_location(&pool, labeled, r).await?;
    let mut ex = be.exec();
    // Already chosen rows never win (NaN never wins in `argmax`).
    let open = |chosen: &[bool], c: usize, v: f64| if chosen[c] { f64::NAN } else { v };
    let mut chosen = vec![false; n];
    for &a in labeled.iter().chain(&sel.picks) {
        chosen[a] = true;
    }
    if maxmin {
        // The smallest distance to any anchor is exactly the facility-location `mind`.
        while sel.picks.len() < budget {
            let m = ex.read_f32(&mind, n).await?;
            let Some((c, v)) = argmax((0..n).map(|c| open(&chosen, c, m[c] as f64 / 2.0))) else { break };
            chosen[c] = true;
            sel.picks.push(c);
            sel.scores.push(v);
            pool.min_dist_update(&mut ex, &mind, c, false).await?;
        }
        return Ok(sel);
    }
    let col = be.storage("repdiv", n)?;
    let mut div = vec![f64::NEG_INFINITY; n];
    let anchors: Vec<usize> = labeled.iter().chain(&sel.picks).copied().collect();
    for &a in &anchors {
        for (v, &c) in div.iter_mut().zip(&distance_column(&pool, &col, a).await?) {
            *v = v.max(c as f64 / 2.0);
        }
    }
    while sel.picks.len() < budget {
        let Some((c, v)) = argmax((0..n).map(|c| open(&chosen, c, div[c]))) else { break };
        chosen[c] = true;
        sel.picks.push(c);
        sel.scores.push(v);
        for (v, &cc) in div.iter_mut().zip(&distance_column(&pool, &col, c).await?) {
            *v = v.max(cc as f64 / 2.0);
        }
    }
    Ok(sel)
}
