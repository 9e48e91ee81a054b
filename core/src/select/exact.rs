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
//!   then Lloyd with Yinyang's group bounds (per row an upper bound on the distance to its centre and, per group
//!   of about ten centres, a lower bound on the distance to the group's other centres, each moved by the
//!   centres' shifts): a row is re-measured only against the groups its bounds leave open, and a row with many
//!   open groups goes to an f32 GEMM against all centres whose rigorous error bound keeps every centre that
//!   could be nearest, those candidates measured exactly. Labels, centres and inertia equal the plain
//!   algorithm's bit for bit.
//!
//! Every skip needs a relative margin of 1e-7 beyond the bound (the f64 sums' rounding is below 1e-11 even at
//! D = 10⁵), so a skipped row's plain value could not have changed the result: exact, not approximately so.

pub use super::kcenter::{kcenter, kcenter_cover, kcenter_f16, Cover, KCenterRun};
use super::kmeans::{mean_variance_w, CentreSums, Clustering, Weights};
pub use super::pairs::{delta_graph, delta_graph_clustered, other_label_scan, probcover_delta};
use super::Matrix;
use crate::cpu::min_dist_update::{f32_sum_error, sqdist_f32est, sqdist_f64, sqdist_f64c, F32_SUM_ABS};
use crate::cpu::par;
use crate::rng::Rng;

/// Relative margin every pruning test keeps beyond its bound.
pub(super) const MARGIN: f64 = 1e-7;

/// True when a centre at squared distance `dc2` from the row's own centre cannot lower the row's squared
/// distance `m` to that centre: ‖x − c‖ ≥ ‖c − cⱼ‖ − ‖x − cⱼ‖ ≥ ‖x − cⱼ‖ once ‖c − cⱼ‖ ≥ 2‖x − cⱼ‖.
#[inline]
pub(super) fn cannot_improve(dc2: f64, m: f64) -> bool {
    dc2 > 4.0 * m * (1.0 + MARGIN)
}

/// Counters of the accelerated k-means, against what the plain algorithm evaluates.
#[derive(Clone, Copy, Debug, Default)]
pub struct KmeansStats {
    /// Row-to-centre distances measured exactly (f64).
    pub exact: u64,
    /// Row-to-centre distances estimated in f32 (k-means++'s pass, Lloyd's GEMM filter).
    pub filtered: u64,
    /// What the plain algorithm measures: n per k-means++ trial, n·k per Lloyd assignment.
    pub plain: u64,
    pub iterations: usize,
    /// Seconds in k-means++ and in Lloyd.
    pub seconds_init: f64,
    pub seconds_lloyd: f64,
    /// Of `seconds_lloyd`: the GEMM assignments, the centre updates and the bounds' moves.
    pub seconds_full: f64,
    pub seconds_update: f64,
    pub seconds_bounds: f64,
    /// Rows summed by the centre updates, and by the plain update.
    pub rows_summed: u64,
    pub rows_summed_plain: u64,
}

/// Greedy k-means++ as the plain algorithm does it (same draws, gains and ties), each candidate compared only
/// with the rows it can improve: rows are grouped by their nearest chosen centre, a group is skipped when the
/// candidate is at least twice its farthest row's distance from its centre, a row by the same test. The gain is
/// summed over the improved rows in row order, which is the plain sum bit for bit (the other terms are +0).
/// The draws use prefix sums of the potential (the plain running sum) and a binary search. The candidates of
/// one step are evaluated in parallel.
struct KmeansPP;

impl KmeansPP {
    #[allow(clippy::new_ret_no_self)] // returns the chosen rows
    fn new(x: Matrix, ws: Weights, first: usize, k: usize, rng: &mut Rng, st: &mut KmeansStats) -> Vec<usize> {
        let n = x.n;
        let mut closest: Vec<f64> = par::map(n, |i| sqdist_f64(x.row(i), x.row(first)));
        st.exact += n as u64;
        st.plain += n as u64;
        let mut chosen = vec![first];
        let mut members: Vec<Vec<u32>> = vec![(0..n as u32).collect()];
        let radius = |rows: &[u32], closest: &[f64]| rows.iter().map(|&i| closest[i as usize]).fold(0f64, f64::max);
        let mut far = vec![radius(&members[0], &closest)];
        let mut owner = vec![0u32; n];
        let trials = 2 + (k as f64).ln().floor() as usize;
        // The bracket of an f32 estimate around the plain f64 value (its own rounding is below 1e-12).
        let e = 2.0 * f32_sum_error(x.d) + 1e-12;
        let low = |v: f32| if v.is_finite() { (v as f64 * (1.0 - e) - F32_SUM_ABS).max(0.0) } else { 0.0 };
        let high = |v: f32| v as f64 * (1.0 + e) + F32_SUM_ABS;
        // The margin between two candidates' gains: above the rounding of a sum of up to n positive f64 terms.
        let rel = 1e-8f64.max(4.0 * n as f64 * f64::EPSILON);
        let mut prefix = vec![0f64; n];
        for _ in 1..k {
            let mut acc = 0.0;
            for (i, (p, &c)) in prefix.iter_mut().zip(&closest).enumerate() {
                acc += ws.of(i) * c;
                *p = acc;
            }
            let pot = acc;
            let cands: Vec<usize> = (0..trials)
                .map(|_| {
                    let target = rng.next_f64() * pot;
                    prefix.partition_point(|&p| p <= target).min(n - 1)
                })
                .collect();
            // All candidates in one pass over each open centre's rows (a row is read once for every candidate
            // that can improve it), the centres in parallel. A row is measured first in f32 (`sqdist_f32est`,
            // bracketed); only rows the bracket does not rule out ("maybe improved") are kept.
            let (cl, mem, fr, ch) = (&closest, &members, &far, &chosen);
            let t_n = cands.len();
            let per_centre = par::map(ch.len(), |j| {
                let cj = x.row(ch[j]);
                // A lower end of each candidate's distance to the centre is enough for the skip tests.
                let dc2: Vec<f64> = cands.iter().map(|&c| low(sqdist_f32est(x.row(c), cj))).collect();
                let open: Vec<usize> = (0..t_n).filter(|&t| !cannot_improve(dc2[t], fr[j])).collect();
                let mut maybe: Vec<Vec<(u32, f32)>> = vec![Vec::new(); open.len()];
                let mut ev = 0u64;
                if !open.is_empty() {
                    // The rows some open candidate may improve (the test on their own distance alone), read a few
                    // ahead of use: a centre's rows are scattered over the pool.
                    let least = open.iter().map(|&t| dc2[t]).fold(f64::INFINITY, f64::min);
                    let need: Vec<u32> =
                        mem[j].iter().copied().filter(|&i| !cannot_improve(least, cl[i as usize])).collect();
                    const AHEAD: usize = 8;
                    for (r, &i) in need.iter().enumerate() {
                        if let Some(&a) = need.get(r + AHEAD) {
                            crate::cpu::math::prefetch(x.row(a as usize));
                        }
                        let (m, row) = (cl[i as usize], x.row(i as usize));
                        for (s, &t) in open.iter().enumerate() {
                            if cannot_improve(dc2[t], m) {
                                continue;
                            }
                            ev += 1;
                            let v = sqdist_f32est(row, x.row(cands[t]));
                            if !v.is_finite() || low(v) < m {
                                maybe[s].push((i, v));
                            }
                        }
                    }
                }
                (open, maybe, ev)
            });
            let mut maybe: Vec<Vec<(u32, f32)>> = vec![Vec::new(); t_n];
            st.filtered += (ch.len() * t_n) as u64;
            for (open, mb, ev) in per_centre {
                st.filtered += ev;
                for (t, m) in open.into_iter().zip(mb) {
                    maybe[t].extend(m);
                }
            }
            // Each candidate's gain bracketed from the estimates; the exact gain (the plain sum in row order of
            // the exact improvements) only for the candidates that can still be the first maximum.
            let bracket: Vec<(f64, f64)> = maybe
                .iter()
                .map(|mb| {
                    mb.iter().fold((0.0, 0.0), |(lo, hi), &(i, v)| {
                        let (m, wi) = (cl[i as usize], ws.of(i as usize));
                        let hi_term = (m - if v.is_finite() { low(v) } else { 0.0 }).max(0.0);
                        (lo + wi * (m - high(v)).max(0.0), hi + wi * hi_term)
                    })
                })
                .collect();
            let best_lo = bracket.iter().map(|b| b.0).fold(0.0, f64::max);
            let exact_of = |t: usize| {
                let mut imp: Vec<(u32, f64)> = par::map(maybe[t].len(), |r| {
                    let i = maybe[t][r].0;
                    (i, sqdist_f64(x.row(i as usize), x.row(cands[t])))
                });
                let ev = imp.len() as u64;
                imp.retain(|&(i, v)| v < cl[i as usize]);
                imp.sort_unstable_by_key(|p| p.0);
                let gain = imp.iter().fold(0.0, |g, &(i, v)| g + ws.of(i as usize) * (cl[i as usize] - v));
                (gain, imp, ev)
            };
            let mut best: Option<(usize, f64, Vec<(u32, f64)>)> = None;
            for t in 0..t_n {
                if bracket[t].1 * (1.0 + rel) < best_lo * (1.0 - rel) {
                    continue; // below another candidate's certain gain: not the maximum
                }
                let (gain, imp, ev) = exact_of(t);
                st.exact += ev;
                if best.as_ref().is_none_or(|b| gain > b.1) {
                    best = Some((t, gain, imp));
                }
            }
            st.plain += (n * trials) as u64;
            let Some((t, _, improved)) = best else { break };
            let slot = chosen.len() as u32;
            let mut touched: Vec<u32> = improved.iter().map(|&(i, _)| owner[i as usize]).collect();
            touched.sort_unstable();
            touched.dedup();
            for &(i, v) in &improved {
                closest[i as usize] = v;
                owner[i as usize] = slot;
            }
            for &j in &touched {
                let j = j as usize;
                members[j].retain(|&i| owner[i as usize] as usize == j);
                far[j] = radius(&members[j], &closest);
            }
            let mine: Vec<u32> = improved.iter().map(|&(i, _)| i).collect();
            far.push(radius(&mine, &closest));
            members.push(mine);
            chosen.push(cands[t]);
        }
        chosen
    }
}

/// The error factor of the f32 GEMM filter: fl(x·c̃) (c̃ the centre rounded to f32) is within γ_d·‖x‖‖c̃‖ of x·c̃
/// for any summation order, and rounding the centre moves a distance by at most 2⁻²⁴‖c‖.
struct GemmBounds {
    gamma: f64,
}

impl GemmBounds {
    fn new(d: usize) -> Self {
        let u = f32::EPSILON as f64 / 2.0;
        let du = (d + 2) as f64 * u;
        GemmBounds { gamma: 1.01 * du / (1.0 - du) }
    }
}

/// Centres as the GEMM sees them: rounded to f32, with the f64 norms the bounds need.
struct Centres {
    c32: Vec<f32>,
    /// ‖c̃‖² and ‖c̃‖ of the f32-rounded centres.
    n2_32: Vec<f64>,
    n32: Vec<f64>,
    /// The most rounding can move a distance (2⁻²³‖c‖) per centre and at most.
    shift: Vec<f64>,
    max_shift: f64,
}

impl Centres {
    fn new(c: &[f64], k: usize, d: usize) -> Self {
        let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        let n2_32: Vec<f64> =
            (0..k).map(|j| c32[j * d..(j + 1) * d].iter().map(|&v| v as f64 * v as f64).sum()).collect();
        let norm: Vec<f64> = (0..k).map(|j| c[j * d..(j + 1) * d].iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
        let n32 = n2_32.iter().map(|v: &f64| v.sqrt()).collect();
        let shift: Vec<f64> = norm.iter().map(|v| f32::EPSILON as f64 * v).collect();
        let max_shift = shift.iter().copied().fold(0.0, f64::max);
        Centres { c32, n2_32, n32, shift, max_shift }
    }
}

/// For the rows `rows`: the plain nearest centre (lowest index on ties) with its exact squared distance, and per
/// group of centres a lower bound on the distance to its centres but the nearest, by the GEMM filter and exact
/// refinement.
#[allow(clippy::too_many_arguments)] // the Lloyd state it reads
fn full_assign(
    x: Matrix,
    xn2: &[f64],
    c: &[f64],
    cs: &Centres,
    groups: &Groups,
    rows: &[usize],
    gb: &GemmBounds,
    stats: &mut KmeansStats,
) -> Vec<(usize, f64, Vec<f64>)> {
    let (d, k, ng) = (x.d, groups.of.len(), groups.count);
    const CHUNK: usize = 1024;
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let a: Vec<f32> = chunk.iter().flat_map(|&i| x.row(i).iter().copied()).collect();
        let dots = crate::cpu::matmul::matmul(&a, &cs.c32, None, chunk.len(), k, d, true);
        stats.filtered += (chunk.len() * k) as u64;
        let res = par::map(chunk.len(), |r| {
            let i = chunk[r];
            let row = &dots[r * k..(r + 1) * k];
            let (xn2, xn) = (xn2[i], xn2[i].sqrt());
            // est ± e brackets the squared distance to the f32-rounded centre (see `GemmBounds`).
            let est = |j: usize| xn2 + cs.n2_32[j] - 2.0 * row[j] as f64;
            let err = |j: usize| 2.0 * gb.gamma * xn * cs.n32[j] + 1e-12 * (xn2 + cs.n2_32[j]);
            let j0 = (0..k).fold(0, |b, j| if est(j) < est(b) { j } else { b });
            // An upper bound on the nearest centre's distance: that of the centre nearest by the estimate.
            let hi = ((est(j0) + err(j0)).max(0.0).sqrt() + cs.shift[j0]) * (1.0 + 1e-12);
            // A centre is a candidate unless its lower bound exceeds `hi` by the margin; in squares, with the
            // largest rounding shift of any centre.
            let reach = hi * (1.0 + MARGIN) + cs.max_shift;
            let reach2 = reach * reach * (1.0 + 1e-12);
            let (mut best, mut bd, mut ev) = (usize::MAX, f64::INFINITY, 0u64);
            let mut low2 = vec![f64::INFINITY; ng];
            let mut exact = Vec::new();
            for j in 0..k {
                let l2 = est(j) - err(j);
                if l2 <= reach2 {
                    let v = sqdist_f64c(x.row(i), &c[j * d..(j + 1) * d]);
                    ev += 1;
                    exact.push((j, v));
                    if v < bd {
                        bd = v;
                        best = j;
                    }
                } else {
                    let g = groups.of[j];
                    low2[g] = low2[g].min(l2);
                }
            }
            let mut lbs: Vec<f64> =
                low2.iter().map(|&l2| ((l2.max(0.0).sqrt() - cs.max_shift) * (1.0 - 1e-12)).max(0.0)).collect();
            for &(j, v) in &exact {
                if j != best {
                    let g = groups.of[j];
                    lbs[g] = lbs[g].min(v.sqrt() * (1.0 - 1e-12));
                }
            }
            (best, bd, lbs, ev)
        });
        for (best, bd, lbs, ev) in res {
            stats.exact += ev;
            out.push((best, bd, lbs));
        }
    }
    out
}

/// Centres grouped for the lower bounds (Yinyang k-means): `of[j]` is centre j's group, `members` each group's
/// centres in index order. Groups only change how much is skipped, never the result.
struct Groups {
    of: Vec<usize>,
    members: Vec<Vec<usize>>,
    count: usize,
}

impl Groups {
    /// About k/10 groups (at most what keeps n × groups bounds under 64M values, 512 MB) by a short k-means of the
    /// initial centres.
    fn new(centers: &[f64], k: usize, d: usize, n: usize) -> Self {
        let count = (k / 10).clamp(1, (64_000_000 / n.max(1)).max(1)).min(k);
        let c32: Vec<f32> = centers.iter().map(|&v| v as f32).collect();
        let of = if count == 1 {
            vec![0; k]
        } else {
            super::kmeans::kmeans(Matrix { data: &c32, n: k, d }, count, 0x9e0, 10, 1e-4).labels
        };
        let mut members = vec![Vec::new(); count];
        for (j, &g) in of.iter().enumerate() {
            members[g].push(j);
        }
        Groups { of, members, count }
    }
}

/// How one row's centre is settled in a Lloyd step: kept by its bounds, found among the groups its bounds leave
/// open, or (too many open) left to the GEMM.
enum Step {
    Keep(Option<f64>),
    Moved(usize, f64, Vec<(usize, f64)>, u64, u64),
    Full,
}

/// Greedy k-means++ then Lloyd, exactly as [`super::kmeans::kmeans`] (same RNG stream, rules and arithmetic),
/// accelerated as the module says.
pub fn kmeans(x: Matrix, k: usize, seed: u64, max_iter: usize, tol: f64) -> (Clustering, KmeansStats) {
    kmeans_weighted(x, None, k, seed, max_iter, tol)
}

/// [`super::kmeans::kmeans_weighted`] (each row counted `w[i]` times; one positive finite weight per row) bit for
/// bit, accelerated the same way: the weights change the draws, the gains, the centres and the inertia, never
/// which centre is nearest.
pub fn kmeans_weighted(
    x: Matrix,
    w: Option<&[f64]>,
    k: usize,
    seed: u64,
    max_iter: usize,
    tol: f64,
) -> (Clustering, KmeansStats) {
    let (n, d) = (x.n, x.d);
    if n == 0 || d == 0 {
        return (super::kmeans::kmeans_weighted(x, w, k, seed, max_iter, tol), KmeansStats::default());
    }
    let ws = Weights(w);
    let k = k.clamp(1, n);
    let mut st = KmeansStats::default();
    let mut rng = Rng::new(seed ^ 0x6b6d_6561_6e73);
    let first = rng.below(n as u32) as usize;
    let t0 = crate::Instant::now();
    let pp = KmeansPP::new(x, ws, first, k, &mut rng, &mut st);
    st.seconds_init = t0.elapsed().as_secs_f64();
    let t0 = crate::Instant::now();
    let mut centers: Vec<f64> = pp.iter().flat_map(|&c| x.row(c).iter().map(|&v| v as f64)).collect();
    // Lloyd with group bounds (Yinyang): per row an upper bound on the distance to its centre and, per group of
    // centres, a lower bound on the distance to that group's centres but its own.
    let total_var = mean_variance_w(x, w);
    let xn2: Vec<f64> = par::map(n, |i| x.row(i).iter().map(|&v| v as f64 * v as f64).sum());
    let gb = GemmBounds::new(d);
    // The relative bracket of an f32 distance estimate around the exact value.
    let fe = 2.0 * f32_sum_error(d) + 1e-12;
    let groups = Groups::new(&centers, k, d, n);
    let ng = groups.count;
    let mut labels = vec![0usize; n];
    let (mut upper, mut lower) = (vec![f64::INFINITY; n], vec![0f64; n * ng]);
    let mut fresh = true;
    let mut assign =
        |centers: &[f64], labels: &mut [usize], upper: &mut [f64], lower: &mut [f64], st: &mut KmeansStats| {
            st.plain += (n * k) as u64;
            let cs = Centres::new(centers, k, d);
            let todo: Vec<usize> = if fresh {
                fresh = false;
                (0..n).collect()
            } else {
                let (lab, up, low): (&[usize], &[f64], &[f64]) = (labels, upper, lower);
                let steps = par::map(n, |i| {
                    let a = lab[i];
                    let lb = &low[i * ng..(i + 1) * ng];
                    let bound = lb.iter().copied().fold(f64::INFINITY, f64::min);
                    if up[i] * (1.0 + MARGIN) < bound {
                        return Step::Keep(None);
                    }
                    // Distances to centres bracketed from an f32 estimate against the centre rounded to f32 (and
                    // the rounding's shift); measured exactly only where the bracket cannot decide.
                    let xi = x.row(i);
                    let bracket = |j: usize| {
                        let v = sqdist_f32est(xi, &cs.c32[j * d..(j + 1) * d]);
                        if !v.is_finite() {
                            return (0.0, f64::INFINITY);
                        }
                        let lo = ((v as f64 * (1.0 - fe) - F32_SUM_ABS).max(0.0).sqrt() - cs.shift[j]).max(0.0);
                        let hi = (v as f64 * (1.0 + fe) + F32_SUM_ABS).sqrt() + cs.shift[j];
                        (lo * (1.0 - 1e-9), hi * (1.0 + 1e-9))
                    };
                    let (lo_a, u) = bracket(a);
                    if u * (1.0 + MARGIN) < bound {
                        return Step::Keep(Some(u));
                    }
                    // The groups whose bound does not clear the own centre's distance: their centres compete.
                    let open: Vec<usize> = (0..ng).filter(|&g| lb[g] <= u * (1.0 + MARGIN)).collect();
                    if open.len() * 4 > ng.max(4) {
                        return Step::Full;
                    }
                    let mut seen: Vec<(usize, f64, f64)> = vec![(a, lo_a, u)];
                    for &g in &open {
                        for &j in &groups.members[g] {
                            if j != a {
                                let (lo, hi) = bracket(j);
                                seen.push((j, lo, hi));
                            }
                        }
                    }
                    let filt = seen.len() as u64;
                    // The plain first minimum among the centres whose bracket reaches the smallest upper end;
                    // every other centre is farther (its lower end is above a measured distance).
                    let top = seen.iter().map(|e| e.2).fold(f64::INFINITY, f64::min) * (1.0 + 1e-9);
                    let mut ev = 0u64;
                    let mut exact: Vec<(usize, f64)> = Vec::new();
                    for e in seen.iter_mut() {
                        if e.1 <= top {
                            let v = sqdist_f64c(xi, &centers[e.0 * d..(e.0 + 1) * d]);
                            ev += 1;
                            exact.push((e.0, v));
                            e.1 = v.sqrt() * (1.0 - 1e-12);
                        }
                    }
                    let (b, bd) = exact.iter().copied().fold((usize::MAX, f64::INFINITY), |(bj, bv), (j, v)| {
                        if v < bv || (v == bv && j < bj) {
                            (j, v)
                        } else {
                            (bj, bv)
                        }
                    });
                    // New bounds of the open groups (and of the old centre's group when it changed).
                    let mut lbs: Vec<(usize, f64)> = open.iter().map(|&g| (g, f64::INFINITY)).collect();
                    let ga = groups.of[a];
                    if b != a && !open.contains(&ga) {
                        lbs.push((ga, lb[ga]));
                    }
                    for &(j, lo, _) in &seen {
                        if j != b {
                            if let Some(e) = lbs.iter_mut().find(|e| e.0 == groups.of[j]) {
                                e.1 = e.1.min(lo);
                            }
                        }
                    }
                    Step::Moved(b, bd, lbs, ev, filt)
                });
                let mut full = Vec::new();
                for (i, stp) in steps.into_iter().enumerate() {
                    match stp {
                        Step::Keep(u) => {
                            st.filtered += u.is_some() as u64;
                            if let Some(u) = u {
                                upper[i] = u;
                            }
                        }
                        Step::Moved(b, bd, lbs, ev, filt) => {
                            st.exact += ev;
                            st.filtered += filt;
                            labels[i] = if b == usize::MAX { 0 } else { b };
                            upper[i] = bd.sqrt() * (1.0 + 1e-12);
                            for (g, v) in lbs {
                                lower[i * ng + g] = v;
                            }
                        }
                        Step::Full => full.push(i),
                    }
                }
                full
            };
            let tf = crate::Instant::now();
            let res = full_assign(x, &xn2, centers, &cs, &groups, &todo, &gb, st);
            st.seconds_full += tf.elapsed().as_secs_f64();
            for (&i, (best, bd, lbs)) in todo.iter().zip(res) {
                // No finite distance (overflowing features): centre 0, as the plain loop leaves it.
                labels[i] = if best == usize::MAX { 0 } else { best };
                upper[i] = bd.sqrt() * (1.0 + 1e-12);
                lower[i * ng..(i + 1) * ng].copy_from_slice(&lbs);
            }
        };
    let mut sums = CentreSums::new(k, ws);
    for it in 0..max_iter.max(1) {
        st.iterations = it + 1;
        assign(&centers, &mut labels, &mut upper, &mut lower, &mut st);
        let tu = crate::Instant::now();
        let old = centers.clone();
        let shift = sums.update(x, &labels, &mut centers);
        st.seconds_update += tu.elapsed().as_secs_f64();
        let tb = crate::Instant::now();
        // Move the bounds with the centres: the own centre moved by at most `mv[a]`, a group's centres by at most
        // the group's largest move.
        let mv: Vec<f64> = (0..k)
            .map(|j| {
                let s: f64 = (0..d).map(|t| (old[j * d + t] - centers[j * d + t]).powi(2)).sum();
                s.sqrt() * (1.0 + 1e-12)
            })
            .collect();
        let mut gmove = vec![0f64; ng];
        for (j, &v) in mv.iter().enumerate() {
            gmove[groups.of[j]] = gmove[groups.of[j]].max(v);
        }
        for (u, &a) in upper.iter_mut().zip(&labels) {
            *u = (*u + mv[a]) * (1.0 + 1e-15);
        }
        par::for_chunks(&mut lower, 4096 * ng, |_, rows| {
            for row in rows.chunks_mut(ng) {
                for (l, &m) in row.iter_mut().zip(&gmove) {
                    *l = ((*l - m) * (1.0 - 1e-15)).max(0.0);
                }
            }
        });
        st.seconds_bounds += tb.elapsed().as_secs_f64();
        (st.rows_summed, st.rows_summed_plain) = (sums.summed, sums.plain);
        if shift <= tol * total_var {
            break;
        }
    }
    // The final assignment to the final centres (the bounds moved with them), then the inertia in row order as
    // the plain algorithm sums it.
    assign(&centers, &mut labels, &mut upper, &mut lower, &mut st);
    let bd: Vec<f64> = par::map(n, |i| sqdist_f64c(x.row(i), &centers[labels[i] * d..(labels[i] + 1) * d]));
    st.exact += n as u64;
    let inertia = bd.iter().enumerate().map(|(i, &v)| ws.of(i) * v).sum();
    st.seconds_lloyd = t0.elapsed().as_secs_f64();
    (Clustering { labels, centers, k, inertia }, st)
}
