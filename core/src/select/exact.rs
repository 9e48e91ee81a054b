//! Exact accelerated selection on the CPU backend: the same picks as the plain algorithms, with far fewer
//! distance evaluations.
//!
//! - [`kcenter`] (coreset): k-center greedy with triangle-inequality pruning. Every row keeps the centre that
//!   gave its current minimum; a new centre c can only lower a row x of centre j if ‖c − cⱼ‖ < 2‖x − cⱼ‖, so a
//!   whole centre's rows are skipped when ‖c − cⱼ‖ ≥ 2·rⱼ (rⱼ its farthest row), and single rows by the same
//!   test. The rows that are evaluated get exactly the plain scan's value (`min_dist_update`: f64 sums over eight
//!   lanes, stored as f32), so the min-distances and the picks are the plain ones bit for bit.
//! - [`kmeans`]: greedy k-means++ (the plain rule and RNG stream of [`super::kmeans::kmeans`]) where a candidate
//!   is compared only with the rows it can improve (the same triangle test against each row's current centre),
//!   then Lloyd with Hamerly's bounds (an upper bound on the distance to the own centre, a lower bound on the
//!   distance to any other, half the distance to the nearest other centre); a row whose bounds do not settle
//!   its centre is reassigned with an f32 GEMM against all centres whose rigorous error bound keeps every centre
//!   that could be nearest, and those candidates are measured exactly. Labels, centres and inertia equal the
//!   plain algorithm's bit for bit.
//!
//! Every skip needs a relative margin of 1e-7 beyond the bound (the f64 sums' rounding is below 1e-11 even at
//! D = 10⁵), so a skipped row's plain value could not have changed the result: exact, not approximately so.

use super::kmeans::{mean_variance, Clustering};
use super::Matrix;
use crate::cpu::min_dist_update::{sqdist_f64, sqdist_f64c};
use crate::cpu::par;
use crate::rng::Rng;

/// Relative margin every pruning test keeps beyond its bound.
const MARGIN: f64 = 1e-7;

/// True when a centre at squared distance `dc2` from the row's own centre cannot lower the row's squared
/// distance `m` to that centre: ‖x − c‖ ≥ ‖c − cⱼ‖ − ‖x − cⱼ‖ ≥ ‖x − cⱼ‖ once ‖c − cⱼ‖ ≥ 2‖x − cⱼ‖.
#[inline]
fn cannot_improve(dc2: f64, m: f64) -> bool {
    dc2 > 4.0 * m * (1.0 + MARGIN)
}

/// The farthest row of a centre: (squared distance, lowest row index among the farthest).
fn farthest(rows: &[u32], mind: &[f32]) -> Option<(f32, u32)> {
    let mut best: Option<(f32, u32)> = None;
    for &i in rows {
        let v = mind[i as usize];
        if best.is_none_or(|(bv, bi)| v > bv || (v == bv && i < bi)) {
            best = Some((v, i));
        }
    }
    best
}

/// k-center greedy picks, the result of the plain scan (`min_dist_update` from each centre, the first from
/// `seeds[0]` initialising, then `argmax` of the min-distances with the lowest index on ties), with
/// triangle-inequality pruning. Returns `picks` greedy picks after the seeds, their scores (the distance to the
/// nearest centre when picked) and the number of row-to-centre distances evaluated.
pub fn kcenter(x: Matrix, seeds: &[usize], picks: usize) -> (Vec<usize>, Vec<f64>, u64) {
    let n = x.n;
    let (mut out, mut scores) = (Vec::with_capacity(picks), Vec::with_capacity(picks));
    let Some(&s0) = seeds.first() else { return (out, scores, 0) };
    let mind: Vec<f32> = par::map(n, |i| sqdist_f64(x.row(i), x.row(s0)) as f32);
    let members: Vec<Vec<u32>> = vec![(0..n as u32).collect()];
    let far = vec![farthest(&members[0], &mind)];
    let mut st = KCenter { x, mind, centres: vec![s0], members, far, evals: n as u64 };
    for &c in &seeds[1..] {
        st.add(c);
    }
    while out.len() < picks {
        // The farthest row overall: the largest of the centres' farthest, the lowest index on ties.
        let best =
            st.far.iter().flatten().copied().reduce(|a, b| if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) { b } else { a });
        let Some((v, i)) = best else { break };
        out.push(i as usize);
        scores.push((v.max(0.0) as f64).sqrt());
        st.add(i as usize);
    }
    (out, scores, st.evals)
}

/// The state of [`kcenter`]: per centre (in the order added) its row, its rows and its farthest row.
struct KCenter<'a> {
    x: Matrix<'a>,
    mind: Vec<f32>,
    centres: Vec<usize>,
    members: Vec<Vec<u32>>,
    far: Vec<Option<(f32, u32)>>,
    evals: u64,
}

impl KCenter<'_> {
    /// Add row `p` as a centre: the rows it is nearer to than their own centre move to it.
    fn add(&mut self, p: usize) {
        let x = self.x;
        let cp = x.row(p);
        let centres = &self.centres;
        let dc2: Vec<f64> = par::map(centres.len(), |j| sqdist_f64(cp, x.row(centres[j])));
        self.evals += centres.len() as u64;
        let open: Vec<usize> = (0..centres.len())
            .filter(|&j| self.far[j].is_some_and(|(r, _)| !cannot_improve(dc2[j], r as f64)))
            .collect();
        let (m, members) = (&self.mind, &self.members);
        let parts = par::map(open.len(), |t| {
            let j = open[t];
            let (mut keep, mut moved, mut ev) = (Vec::with_capacity(members[j].len()), Vec::new(), 0u64);
            for &i in &members[j] {
                let old = m[i as usize];
                if cannot_improve(dc2[j], old as f64) {
                    keep.push(i);
                    continue;
                }
                ev += 1;
                let v = sqdist_f64(x.row(i as usize), cp) as f32;
                if v < old {
                    moved.push((i, v));
                } else {
                    keep.push(i);
                }
            }
            (keep, moved, ev)
        });
        let mut mine = Vec::new();
        for (&j, (keep, moved, ev)) in open.iter().zip(parts) {
            self.evals += ev;
            for (i, v) in moved {
                self.mind[i as usize] = v;
                mine.push(i);
            }
            self.members[j] = keep;
            self.far[j] = farthest(&self.members[j], &self.mind);
        }
        self.far.push(farthest(&mine, &self.mind));
        self.members.push(mine);
        self.centres.push(p);
    }
}

/// Counters of the accelerated k-means, against what the plain algorithm evaluates.
#[derive(Clone, Copy, Debug, Default)]
pub struct KmeansStats {
    /// Row-to-centre distances measured exactly (f64).
    pub exact: u64,
    /// Row-to-centre products done in the f32 GEMM filter.
    pub filtered: u64,
    /// What the plain algorithm measures: n per k-means++ trial, n·k per Lloyd assignment.
    pub plain: u64,
    pub iterations: usize,
}

/// Rigorous bounds on ‖x − c‖ from the f32 GEMM product `dot` = fl(x·c̃) (c̃ the centre rounded to f32, ‖x‖² and
/// ‖c̃‖² exact in f64, `cn` = ‖c‖): the dot product's error is at most γ_d·‖x‖‖c̃‖ for any summation order, and
/// rounding the centre moves the distance by at most 2⁻²⁴‖c‖.
struct GemmBounds {
    gamma: f64,
}

impl GemmBounds {
    fn new(d: usize) -> Self {
        let u = f32::EPSILON as f64 / 2.0;
        let du = (d + 2) as f64 * u;
        GemmBounds { gamma: 1.01 * du / (1.0 - du) }
    }

    /// (lower, upper) bounds on the true distance.
    #[inline]
    fn bounds(&self, xn2: f64, cn2: f64, cn: f64, dot: f32) -> (f64, f64) {
        let xn = xn2.sqrt();
        let e = 2.0 * self.gamma * xn * cn2.sqrt() + 1e-12 * (xn2 + cn2);
        let est = xn2 + cn2 - 2.0 * dot as f64;
        let shift = (f32::EPSILON as f64) * cn;
        let lo = ((est - e).max(0.0).sqrt() - shift).max(0.0);
        let hi = (est + e).max(0.0).sqrt() + shift;
        (lo * (1.0 - 1e-12), hi * (1.0 + 1e-12))
    }
}

/// Centres as the GEMM sees them: rounded to f32, with the f64 norms the bounds need.
struct Centres {
    c32: Vec<f32>,
    n2_32: Vec<f64>,
    norm: Vec<f64>,
}

impl Centres {
    fn new(c: &[f64], k: usize, d: usize) -> Self {
        let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        let n2_32 = (0..k).map(|j| c32[j * d..(j + 1) * d].iter().map(|&v| v as f64 * v as f64).sum()).collect();
        let norm = (0..k).map(|j| c[j * d..(j + 1) * d].iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
        Centres { c32, n2_32, norm }
    }
}

/// For the rows `rows`: the plain nearest centre (lowest index on ties) with its exact squared distance, and a
/// lower bound on the distance to every other centre, by the GEMM filter and exact refinement.
fn full_assign(
    x: Matrix,
    xn2: &[f64],
    c: &[f64],
    cs: &Centres,
    k: usize,
    rows: &[usize],
    gb: &GemmBounds,
    stats: &mut KmeansStats,
) -> Vec<(usize, f64, f64)> {
    let d = x.d;
    const CHUNK: usize = 1024;
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let a: Vec<f32> = chunk.iter().flat_map(|&i| x.row(i).iter().copied()).collect();
        let dots = crate::cpu::matmul::matmul(&a, &cs.c32, None, chunk.len(), k, d, true);
        stats.filtered += (chunk.len() * k) as u64;
        let res = par::map(chunk.len(), |r| {
            let i = chunk[r];
            let row = &dots[r * k..(r + 1) * k];
            let b: Vec<(f64, f64)> = (0..k).map(|j| gb.bounds(xn2[i], cs.n2_32[j], cs.norm[j], row[j])).collect();
            let min_hi = b.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let (mut best, mut bd, mut ev) = (usize::MAX, f64::INFINITY, 0u64);
            let mut second = f64::INFINITY;
            let mut exact = Vec::new();
            for (j, &(lo, _)) in b.iter().enumerate() {
                if lo <= min_hi * (1.0 + MARGIN) {
                    let v = sqdist_f64c(x.row(i), &c[j * d..(j + 1) * d]);
                    ev += 1;
                    exact.push((j, v));
                    if v < bd {
                        bd = v;
                        best = j;
                    }
                } else {
                    second = second.min(lo);
                }
            }
            for &(j, v) in &exact {
                if j != best {
                    second = second.min(v.sqrt() * (1.0 - 1e-12));
                }
            }
            (best, bd, second, ev)
        });
        for (best, bd, second, ev) in res {
            stats.exact += ev;
            out.push((best, bd, second));
        }
    }
    out
}

/// Greedy k-means++ then Lloyd, exactly as [`super::kmeans::kmeans`] (same RNG stream, rules and arithmetic),
/// accelerated as the module says.
pub fn kmeans(x: Matrix, k: usize, seed: u64, max_iter: usize, tol: f64) -> (Clustering, KmeansStats) {
    let (n, d) = (x.n, x.d);
    if n == 0 || d == 0 {
        return (super::kmeans::kmeans(x, k, seed, max_iter, tol), KmeansStats::default());
    }
    let k = k.clamp(1, n);
    let mut st = KmeansStats::default();
    let mut rng = Rng::new(seed ^ 0x6b6d_6561_6e73);
    let row64 = |i: usize| -> Vec<f64> { x.row(i).iter().map(|&v| v as f64).collect() };
    let first = rng.below(n as u32) as usize;
    let mut centers: Vec<f64> = Vec::with_capacity(k * d);
    centers.extend(row64(first));
    let mut closest: Vec<f64> = par::map(n, |i| sqdist_f64c(x.row(i), &centers[0..d]));
    let mut owner = vec![0u32; n];
    st.exact += n as u64;
    st.plain += n as u64;
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut newc = vec![0f64; n];
    let mut best_c = vec![0f64; n];
    for _ in 1..k {
        let pot: f64 = closest.iter().sum();
        let mut best: Option<(usize, f64)> = None;
        for _ in 0..trials {
            let target = rng.next_f64() * pot;
            let mut acc = 0.0;
            let mut cand = n - 1;
            for (i, &c) in closest.iter().enumerate() {
                acc += c;
                if acc > target {
                    cand = i;
                    break;
                }
            }
            let row = row64(cand);
            let chosen = centers.len() / d;
            let dc2: Vec<f64> = par::map(chosen, |j| sqdist_f64c(x.row(cand), &centers[j * d..(j + 1) * d]));
            let rows = par::rows_per_task(n, 64, 1 << 14);
            let (cl, ow) = (&closest, &owner);
            let evs = std::sync::atomic::AtomicU64::new(0);
            par::for_chunks(&mut newc, rows, |t, out| {
                let mut ev = 0;
                for (r, o) in out.iter_mut().enumerate() {
                    let i = t * rows + r;
                    let m = cl[i];
                    *o = if cannot_improve(dc2[ow[i] as usize], m) {
                        m
                    } else {
                        ev += 1;
                        m.min(sqdist_f64c(x.row(i), &row))
                    };
                }
                evs.fetch_add(ev, std::sync::atomic::Ordering::Relaxed);
            });
            st.exact += evs.into_inner() + chosen as u64;
            st.plain += n as u64;
            let p: f64 = newc.iter().sum();
            if best.is_none_or(|(_, bp)| p < bp) {
                best = Some((cand, p));
                std::mem::swap(&mut newc, &mut best_c);
            }
        }
        let Some((cand, _)) = best else { break };
        let slot = (centers.len() / d) as u32;
        for i in 0..n {
            if best_c[i] < closest[i] {
                owner[i] = slot;
            }
        }
        std::mem::swap(&mut closest, &mut best_c);
        centers.extend(row64(cand));
    }
    // Lloyd with Hamerly's bounds.
    let total_var = mean_variance(x);
    let xn2: Vec<f64> = par::map(n, |i| x.row(i).iter().map(|&v| v as f64 * v as f64).sum());
    let gb = GemmBounds::new(d);
    let mut labels = vec![0usize; n];
    // Upper bound on the distance to the own centre, lower bound on the distance to any other.
    let (mut upper, mut lower) = (vec![f64::INFINITY; n], vec![0f64; n]);
    let mut fresh = true;
    let mut assign =
        |centers: &[f64], labels: &mut [usize], upper: &mut [f64], lower: &mut [f64], st: &mut KmeansStats| {
            st.plain += (n * k) as u64;
            let cs = Centres::new(centers, k, d);
            let todo: Vec<usize> = if fresh {
                fresh = false;
                (0..n).collect()
            } else {
                // Half the distance from each centre to its nearest other centre (a lower bound).
                let cc = crate::cpu::matmul::matmul(&cs.c32, &cs.c32, None, k, k, d, true);
                let half: Vec<f64> = par::map(k, |j| {
                    (0..k)
                        .filter(|&o| o != j)
                        .map(|o| {
                            gb.bounds(cs.n2_32[j], cs.n2_32[o], cs.norm[o], cc[j * k + o]).0
                                - f32::EPSILON as f64 * cs.norm[j]
                        })
                        .fold(f64::INFINITY, f64::min)
                        .max(0.0)
                        / 2.0
                });
                let need: Vec<Option<usize>> = par::map(n, |i| {
                    let a = labels[i];
                    let bound = half[a].max(lower[i]);
                    if upper[i] * (1.0 + MARGIN) < bound {
                        return None;
                    }
                    let u = sqdist_f64c(x.row(i), &centers[a * d..(a + 1) * d]).sqrt() * (1.0 + 1e-12);
                    if u * (1.0 + MARGIN) < bound {
                        None
                    } else {
                        Some(i)
                    }
                });
                need.into_iter().flatten().collect()
            };
            for (&i, (best, bd, second)) in todo.iter().zip(full_assign(x, &xn2, centers, &cs, k, &todo, &gb, st)) {
                // No finite distance (overflowing features): centre 0, as the plain loop leaves it.
                labels[i] = if best == usize::MAX { 0 } else { best };
                upper[i] = bd.sqrt() * (1.0 + 1e-12);
                lower[i] = second;
            }
        };
    for it in 0..max_iter.max(1) {
        st.iterations = it + 1;
        assign(&centers, &mut labels, &mut upper, &mut lower, &mut st);
        let mut sums = vec![0f64; k * d];
        let mut counts = vec![0usize; k];
        for i in 0..n {
            counts[labels[i]] += 1;
            for (s, &v) in sums[labels[i] * d..(labels[i] + 1) * d].iter_mut().zip(x.row(i)) {
                *s += v as f64;
            }
        }
        let old = centers.clone();
        let mut shift = 0.0;
        for j in 0..k {
            if counts[j] == 0 {
                continue; // empty cluster keeps its centre
            }
            for t in 0..d {
                let c = sums[j * d + t] / counts[j] as f64;
                shift += (c - centers[j * d + t]).powi(2);
                centers[j * d + t] = c;
            }
        }
        // Move the bounds with the centres: the own centre moved by at most `mv[a]`, any other by at most the
        // largest move among the others.
        let mv: Vec<f64> = (0..k)
            .map(|j| {
                let s: f64 = (0..d).map(|t| (old[j * d + t] - centers[j * d + t]).powi(2)).sum();
                s.sqrt() * (1.0 + 1e-12)
            })
            .collect();
        let (mut m1, mut m2, mut a1) = (0f64, 0f64, usize::MAX);
        for (j, &v) in mv.iter().enumerate() {
            if v > m1 {
                (m2, m1, a1) = (m1, v, j);
            } else if v > m2 {
                m2 = v;
            }
        }
        for i in 0..n {
            upper[i] = (upper[i] + mv[labels[i]]) * (1.0 + 1e-15);
            let other = if labels[i] == a1 { m2 } else { m1 };
            lower[i] = ((lower[i] - other) * (1.0 - 1e-15)).max(0.0);
        }
        if shift <= tol * total_var {
            break;
        }
    }
    // The final assignment to the final centres (the bounds moved with them), then the inertia in row order as
    // the plain algorithm sums it.
    assign(&centers, &mut labels, &mut upper, &mut lower, &mut st);
    let bd: Vec<f64> = par::map(n, |i| sqdist_f64c(x.row(i), &centers[labels[i] * d..(labels[i] + 1) * d]));
    st.exact += n as u64;
    let inertia = bd.iter().sum();
    (Clustering { labels, centers, k, inertia }, st)
}
