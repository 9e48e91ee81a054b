//! k-means in the scans ([`super::scan::kmeans`]): k-means++ seeding, then Lloyd's iterations pruned by
//! distance bounds, so an iteration measures only the rows whose nearest centre may have changed.
//!
//! The plain scans ([`lloyd_plain`]) measure every row against every centre each iteration, in f32, and take
//! the nearest (ties to the lower index). The pruned iterations ([`lloyd`]) keep, per row, an upper bound `u` on
//! its distance to its own centre and lower bounds on its distances to the others: one for each of the next
//! `NEAREST − 1` centres of the row's last measurement and one shared by every centre beyond them. When the
//! centres move, `u` grows by its centre's shift, a listed centre's bound shrinks by that centre's shift and the
//! shared bound by the largest shift of any centre but the row's own (the triangle inequality; Hamerly's
//! algorithm when the list is empty, Elkan's when it holds every centre). The scans' f32 squared distance is within
//! e = γ_{D+3}·(‖x‖ + ‖c‖)² of the true one (the norm expansion's rounding, whatever the summation order), so a
//! row with u² + e < l² − e (l: the least of its lower bounds) has, in the scans' own f32 values, its own centre
//! strictly nearest: it keeps its label without being read. The others are packed (`gather_rows`) and measured
//! against every centre, as the plain iteration measures them. The labels, hence the centres, the stopping point
//! and the final inertia (one plain pass at the end, as the plain algorithm ends) are the plain scans', on either
//! backend.

use super::kmeans::{mean_variance, Clustering};
use super::pool::binding_floats;
use super::pool::{topk, Pool, Rows, TileScan, TILE_ROWS};
use crate::rng::Rng;
use crate::Result;

/// The work of the pruned iterations: rows measured against every centre, and what the plain scans measure.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scanned {
    pub iterations: usize,
    pub rows_measured: u64,
    pub rows_plain: u64,
    /// (row, centre) pairs the seeding read, and what the plain seeding reads.
    pub seed_pairs: u64,
    pub seed_pairs_plain: u64,
    /// Seconds of the seeding and of Lloyd's iterations (with the final pass).
    pub seconds_seed: f64,
    pub seconds_lloyd: f64,
}

/// The host's share of a pruned seeding step at most: the trials' distances to the centres so far, in f64
/// multiply-adds (a few milliseconds on two cores). Past it the remaining steps read every row.
const SEED_HOST_WORK: usize = 8 << 20;

thread_local! {
    static SEED_WORK: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// On this thread, stop pruning the seeding once a step's host work passes `work` (`None`: `SEED_HOST_WORK`),
/// returning the previous setting. Results do not depend on it; tests use it to switch mid-seeding.
pub fn set_seed_host_work(work: Option<usize>) -> Option<usize> {
    SEED_WORK.with(|c| c.replace(work))
}

/// k-means++ seeding (greedy, 2 + ⌊ln k⌋ trials a step) as [`super::kmeans::kmeans`] seeds: the centres' rows,
/// and (pairs read, pairs the plain seeding reads). Each row keeps the centre nearest to it (`kcenter_update`);
/// with `prune`, the trials' gains (`kmeanspp_gain`) and the update skip the rows a trial or the new centre
/// cannot come nearer to than their own centre, whose terms are 0 in the plain sums. The host measures each
/// trial's distance to every centre so far (trials · centres · D a step), so pruning stops once that passes
/// `SEED_HOST_WORK` (at D = 768, after 1,000–1,400 centres). Unpruned steps read every row: the same values,
/// sums and centres either way.
pub(super) async fn seed(pool: &Pool<'_>, k: usize, seed: u64, mut prune: bool) -> Result<(Vec<f32>, u64, u64)> {
    let (x, be) = (pool.x, pool.be);
    let (n, d) = (x.n, x.d);
    let mut rng = Rng::new(seed ^ 0x6b6d_6561_6e73);
    let (closest, owner, count) = (be.storage("kmeans", n)?, be.storage("kmeans", n)?, be.storage("kmeans", 1)?);
    let dc2 = be.storage("kmeans", k)?;
    let first = rng.below(n as u32) as usize;
    let mut chosen = vec![first];
    let mut ex = be.exec();
    pool.kcenter_update(&mut ex, &dc2, &owner, &closest, &count, first, 0, true).await?;
    let trials = 2 + (k as f64).ln().floor() as usize;
    let (cand, dcand) = (be.storage("kmeans", trials * d)?, be.storage("kmeans", trials * k)?);
    let groups = pool.kmeanspp_groups();
    let partial = be.storage("kmeans", groups * trials)?;
    let (mut read, mut plain, mut last) = (0u64, n as u64, 0u32);
    for step in 1..k {
        let cl = ex.read_f32(&closest, n).await?;
        let pot: f64 = cl.iter().map(|&v| v as f64).sum();
        let mut picks = Vec::with_capacity(trials);
        for _ in 0..trials {
            let target = rng.next_f64() * pot;
            let mut acc = 0.0;
            let mut c = n - 1;
            for (i, &v) in cl.iter().enumerate() {
                acc += v as f64;
                if acc > target {
                    c = i;
                    break;
                }
            }
            picks.push(c);
        }
        let rows: Vec<f32> = picks.iter().flat_map(|&c| x.row(c).iter().copied()).collect();
        be.write(&cand, 0, &rows)?;
        // Each trial's squared distance to every centre so far (f64 sums, rounded), one row of `dcand` a trial;
        // when the host's share grows too large, zeros once (every row read from then on).
        if prune && trials * step * d > SEED_WORK.with(|c| c.get()).unwrap_or(SEED_HOST_WORK) {
            prune = false;
            be.write(&dcand, 0, &vec![0f32; trials * k])?;
            be.write(&dc2, 0, &vec![0f32; k])?;
        }
        let dc: Vec<f32> = if prune {
            crate::cpu::par::map(trials * step, |p| {
                crate::cpu::min_dist_update::sqdist_f64(x.row(picks[p / step]), x.row(chosen[p % step])) as f32
            })
        } else {
            Vec::new()
        };
        if prune {
            for t in 0..trials {
                be.write(&dcand, t * k, &dc[t * step..(t + 1) * step])?;
            }
        }
        pool.kmeanspp_gain(&mut ex, &cand, &dcand, &owner, &closest, &partial, &count, trials, k).await?;
        // The partial sums and the pairs read so far, in one readback.
        let mut got = ex.read_many_f32(&[(&partial, groups * trials), (&count, 1)]).await?.into_iter();
        let (part, now) = (got.next().unwrap_or_default(), got.next().unwrap_or_default());
        let now = now.first().map_or(last, |v| v.to_bits());
        read += now.wrapping_sub(last) as u64;
        last = now;
        let g: Vec<f64> = (0..trials).map(|t| (0..groups).map(|w| part[w * trials + t] as f64).sum()).collect();
        // The largest decrease is the lowest potential; the first trial wins ties, as on the CPU.
        let mut best = 0;
        for t in 1..trials {
            if g[t] > g[best] {
                best = t;
            }
        }
        chosen.push(picks[best]);
        if prune {
            be.write(&dc2, 0, &dc[best * step..(best + 1) * step])?;
        }
        pool.kcenter_update(&mut ex, &dc2, &owner, &closest, &count, picks[best], step as u32, false).await?;
        plain += (n * (trials + 1)) as u64;
    }
    read += ex.read_u32(&count, 1).await?[0].wrapping_sub(last) as u64;
    Ok((chosen.iter().flat_map(|&c| x.row(c).iter().copied()).collect(), read, plain))
}

/// Lloyd's iterations from `centers` [k·d], every row measured against every centre each time.
pub(super) async fn lloyd_plain(
    pool: &Pool<'_>,
    k: usize,
    mut centers: Vec<f32>,
    max_iter: usize,
    tol: f64,
) -> Result<Clustering> {
    let (x, be) = (pool.x, pool.be);
    let bc = be.upload("kmeans", &centers)?;
    let total_var = mean_variance(x);
    let assign = TileScan::new(be, Rows::Pool(pool), x.n, Rows::Buf(&bc), k, x.d)?;
    for _ in 0..max_iter.max(1) {
        let (_, labels) = topk(&assign, 1).await?;
        let new = pool.segment_mean(&labels, k, &centers, &bc).await?;
        let shift = shift(&new, &centers);
        centers = new;
        if shift <= tol * total_var {
            break;
        }
    }
    finish(&assign, k, centers).await
}

/// The plain algorithm's stopping measure: Σ (new − old)² over every coordinate.
fn shift(new: &[f32], old: &[f32]) -> f64 {
    new.iter().zip(old).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum()
}

/// The last plain pass: every row's nearest centre and the inertia (Σ of the f32 squared distances).
async fn finish(assign: &TileScan<'_>, k: usize, centers: Vec<f32>) -> Result<Clustering> {
    let (vals, labels) = topk(assign, 1).await?;
    Ok(Clustering {
        labels: labels.iter().map(|&l| l as usize).collect(),
        centers: centers.iter().map(|&v| v as f64).collect(),
        k,
        inertia: vals.iter().map(|&v| v as f64).sum(),
    })
}

/// Rows packed per pruned pass at most.
const PACKED_ROWS: usize = 4 * TILE_ROWS;

/// [`lloyd_plain`]'s result, measuring only the rows Hamerly's bounds cannot settle (see the module).
pub(super) async fn lloyd(
    pool: &Pool<'_>,
    k: usize,
    mut centers: Vec<f32>,
    max_iter: usize,
    tol: f64,
) -> Result<(Clustering, Scanned)> {
    let (x, be) = (pool.x, pool.be);
    let (n, d) = (x.n, x.d);
    let bc = be.upload("kmeans", &centers)?;
    let total_var = mean_variance(x);
    let assign = TileScan::new(be, Rows::Pool(pool), n, Rows::Buf(&bc), k, d)?;
    // The scans' f32 error on ‖x − c‖², per (‖x‖ + ‖c‖)²: γ_{D+3} with a 5 % margin.
    let u32_ = f32::EPSILON as f64 / 2.0;
    let m = (d + 3) as f64;
    let gamma = 1.05 * m * u32_ / (1.0 - m * u32_);
    let xnorm: Vec<f64> =
        crate::cpu::par::map(n, |i| x.row(i).iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt());
    let cnorm_max = |c: &[f32]| {
        c.chunks_exact(d.max(1)).map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt()).fold(0.0, f64::max)
    };
    let err = |i: usize, cmax: f64| gamma * (xnorm[i] + cmax).powi(2) + 1e-30;
    // Every row measured once: its label, and its bounds from the nearest two f32 values.
    let kk = k.min(NEAREST);
    let mut b = Bounds {
        labels: vec![0u32; n],
        upper: vec![0f64; n],
        near: vec![(0.0, 0); n * (kk - 1)],
        far: vec![f64::INFINITY; n],
        kk,
        all: kk == k,
    };
    let mut cmax = cnorm_max(&centers);
    let (vals, idx) = topk(&assign, kk).await?;
    b.set(0..n, &vals, &idx, |i| err(i, cmax));
    let mut st = Scanned { rows_measured: n as u64, ..Scanned::default() };
    // The packed rows and their scan, allocated once.
    let cap = n.clamp(1, PACKED_ROWS.min(binding_floats(&be) / d.max(1)).max(1));
    let packed = be.storage("kmeans", cap * d)?;
    // The open rows' numbers, rewritten each iteration (the encoder is flushed by then: the centre update read
    // its result).
    let bidx = be.storage("kmeans", n)?;
    let mut part = TileScan::new(be, Rows::Buf(&packed), cap, Rows::Buf(&bc), k, d)?;
    let mut drift = vec![0f64; k];
    for it in 0..max_iter.max(1) {
        st.iterations = it + 1;
        st.rows_plain += n as u64;
        if it > 0 {
            let (mut max1, mut arg1, mut max2) = (0f64, usize::MAX, 0f64);
            for (c, &v) in drift.iter().enumerate() {
                if v > max1 {
                    (max2, max1, arg1) = (max1, v, c);
                } else if v > max2 {
                    max2 = v;
                }
            }
            let mut open: Vec<u32> = Vec::new();
            for i in 0..n {
                let a = b.labels[i] as usize;
                let (u, l) = b.moved(i, &drift, if a == arg1 { max2 } else { max1 });
                let e = err(i, cmax);
                if !(l > 0.0 && u * u + e < l * l - e) {
                    open.push(i as u32);
                }
            }
            st.rows_measured += open.len() as u64;
            if !open.is_empty() {
                be.write(&bidx, 0, &open)?;
                for lo in (0..open.len()).step_by(cap) {
                    let hi = (lo + cap).min(open.len());
                    let mut ex = be.exec();
                    pool.gather(&mut ex, &bidx, &open, lo, hi, &packed).await?;
                    ex.flush();
                    part.na = hi - lo;
                    let (vals, idx) = topk(&part, kk).await?;
                    b.set(open[lo..hi].iter().map(|&i| i as usize), &vals, &idx, |i| err(i, cmax));
                }
            }
        }
        let new = pool.segment_mean(&b.labels, k, &centers, &bc).await?;
        let s = shift(&new, &centers);
        for (c, v) in drift.iter_mut().enumerate() {
            let (a, b) = (&new[c * d..(c + 1) * d], &centers[c * d..(c + 1) * d]);
            *v = a.iter().zip(b).map(|(&p, &q)| (p as f64 - q as f64).powi(2)).sum::<f64>().sqrt() * (1.0 + 1e-12);
        }
        centers = new;
        cmax = cmax.max(cnorm_max(&centers));
        if s <= tol * total_var {
            break;
        }
    }
    Ok((finish(&assign, k, centers).await?, st))
}

/// Centres measured per row when a row is measured: its own and the next `NEAREST − 1`, each of which keeps its own
/// lower bound (moved by its own shift); the centres beyond the list share the last one's (moved by the largest
/// shift).
const NEAREST: usize = 16;

/// Each row's label and bounds: `upper` ≥ its true distance to its own centre; `near` (kk − 1 a row: lower bound,
/// centre) and `far` ≤ its true distances to the other centres of its list and to every centre beyond it.
struct Bounds {
    labels: Vec<u32>,
    upper: Vec<f64>,
    near: Vec<(f64, u32)>,
    far: Vec<f64>,
    /// Nearest centres measured per row (`NEAREST`, or k when fewer), and whether that is every centre.
    kk: usize,
    all: bool,
}

impl Bounds {
    /// Rows `rows` measured: `vals`/`idx` hold their `kk` nearest centres (f32 squared distances, ascending),
    /// `err(i)` the f32 error of row i's values.
    fn set(&mut self, rows: impl Iterator<Item = usize>, vals: &[f32], idx: &[u32], err: impl Fn(usize) -> f64) {
        let kk = self.kk;
        let low = |v: f32, e: f64| (v as f64 - e).max(0.0).sqrt() * (1.0 - 1e-12);
        for (r, i) in rows.enumerate() {
            let e = err(i);
            let (v, ix) = (&vals[r * kk..(r + 1) * kk], &idx[r * kk..(r + 1) * kk]);
            self.labels[i] = ix[0];
            self.upper[i] = (v[0] as f64 + e).sqrt() * (1.0 + 1e-12);
            for j in 1..kk {
                self.near[i * (kk - 1) + j - 1] = (low(v[j], e), ix[j]);
            }
            if !self.all {
                self.far[i] = low(v[kk - 1], e);
            }
        }
    }

    /// Row i's bounds moved by the centres' shifts `drift` (`far_drift`: the largest shift of a centre not its
    /// own): (upper, lower over every other centre).
    fn moved(&mut self, i: usize, drift: &[f64], far_drift: f64) -> (f64, f64) {
        let kk = self.kk;
        let u = (self.upper[i] + drift[self.labels[i] as usize]) * (1.0 + 1e-12);
        self.upper[i] = u;
        let mut l = f64::INFINITY;
        for (v, c) in &mut self.near[i * (kk - 1)..(i + 1) * (kk - 1)] {
            *v = (*v - drift[*c as usize]) * (1.0 - 1e-12);
            l = l.min(*v);
        }
        if !self.all {
            let f = (self.far[i] - far_drift) * (1.0 - 1e-12);
            self.far[i] = f;
            l = l.min(f);
        }
        (u, l)
    }
}
