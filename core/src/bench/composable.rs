//! `medpick bench composable`: selection from local coresets against one machine's (issue 26), on synthetic
//! clustered features: the covering radius of both pick lists over the whole pool, their mean typicality, and the
//! wall time of each phase.

use serde::Serialize;

use crate::exec::Backend;
use crate::select::composable::{covering_radius, part_rows};
use crate::select::{Matrix, SelectInput};
use crate::Result;

#[derive(Clone, Debug, Serialize)]
pub struct ComposableReport {
    /// The strategy run on the whole pool and on the union (coreset unless asked otherwise).
    pub strategy: String,
    pub n: usize,
    pub d: usize,
    pub parts: usize,
    pub budget: usize,
    pub factor: usize,
    pub threads: usize,
    /// One machine: coreset on the whole pool.
    pub single_seconds: f64,
    pub single_radius: f64,
    pub single_typicality: f64,
    /// Local coresets: every part's time (they would run side by side), and the union's size.
    pub part_seconds: Vec<f64>,
    pub union_rows: usize,
    pub largest_local_radius: f64,
    /// The final select on the union.
    pub union_seconds: f64,
    pub union_radius: f64,
    /// The distributed picks over the whole pool, and the guarantee (union radius + largest local radius).
    pub radius: f64,
    pub bound: f64,
    pub typicality: f64,
    /// ProbCover: δ of the one-machine run and of the union's run, and the share of the pool within the one-machine
    /// δ of a pick (its objective) for both pick lists.
    pub single_delta: Option<f64>,
    pub union_delta: Option<f64>,
    pub single_coverage: Option<f64>,
    pub coverage: Option<f64>,
    /// How the local coresets were made: "k-center" or "k-means".
    #[serde(default)]
    pub coreset: String,
    /// The features: 64 equal clusters, or (`skewed`) cluster c drawn with probability ∝ 1/(c + 1).
    #[serde(default)]
    pub skewed: bool,
    /// The mean squared distance of the pool's rows to their nearest pick (the k-means objective of the picks):
    /// one machine's, and the union's picks'.
    #[serde(default)]
    pub single_mean_sq: f64,
    #[serde(default)]
    pub mean_sq: f64,
    /// Whether the union's run used the coresets' weights ([`crate::select::WEIGHTED`] strategies), and then the
    /// same strategy on the union without them: radius, mean typicality and mean squared distance over the pool.
    #[serde(default)]
    pub weighted: bool,
    #[serde(default)]
    pub unweighted_radius: Option<f64>,
    #[serde(default)]
    pub unweighted_typicality: Option<f64>,
    #[serde(default)]
    pub unweighted_mean_sq: Option<f64>,
    /// How the picks spread over the 64 generating clusters against one machine's picks: the total variation
    /// distance ½ Σ_c |share_c − share_c(one machine)| of the union's picks, and of the unweighted union's.
    #[serde(default)]
    pub cluster_tv: f64,
    #[serde(default)]
    pub unweighted_cluster_tv: Option<f64>,
}

/// Mean typicality of `picks` over the whole pool: 1 / (mean squared distance to the k = 20 nearest other rows +
/// 1e-5), TypiClust's score, from f32 products (a measurement, not a selection).
fn mean_typicality(x: Matrix, picks: &[usize]) -> f64 {
    const K: usize = 20;
    let d = x.d;
    let q: Vec<f32> = picks.iter().flat_map(|&p| x.row(p).iter().copied()).collect();
    let qn: Vec<f64> = picks.iter().map(|&p| x.row(p).iter().map(|&v| v as f64 * v as f64).sum()).collect();
    let mut best: Vec<Vec<f64>> = vec![Vec::new(); picks.len()];
    for c0 in (0..x.n).step_by(16384) {
        let c1 = (c0 + 16384).min(x.n);
        let cols = &x.data[c0 * d..c1 * d];
        let cn: Vec<f64> = (c0..c1).map(|j| x.row(j).iter().map(|&v| v as f64 * v as f64).sum()).collect();
        let dots = crate::cpu::matmul::matmul(&q, cols, None, picks.len(), c1 - c0, d, true);
        let w = c1 - c0;
        let merged = crate::cpu::par::map(picks.len(), |r| {
            let mut v: Vec<f64> = best[r].clone();
            v.extend(
                (0..w).filter(|&t| c0 + t != picks[r]).map(|t| (qn[r] + cn[t] - 2.0 * dots[r * w + t] as f64).max(0.0)),
            );
            let k = K.min(v.len());
            if k > 0 {
                v.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
            }
            v.truncate(k);
            v
        });
        best = merged;
    }
    let typ: f64 = best.iter().map(|v| 1.0 / (v.iter().sum::<f64>() / v.len().max(1) as f64 + 1e-5)).sum::<f64>();
    typ / picks.len().max(1) as f64
}

/// `f(row, m, ‖x‖²)` for every row, where m is the row's smallest squared distance to a pick estimated from f32
/// products (GEMMs of 16,384 rows against the picks), rows on the CPU backend's threads.
fn per_row_nearest<R: Send>(x: Matrix, picks: &[usize], f: impl Fn(usize, f64, f64) -> R + Sync) -> Vec<R> {
    let d = x.d;
    let q: Vec<f32> = picks.iter().flat_map(|&p| x.row(p).iter().copied()).collect();
    let qn: Vec<f64> = picks.iter().map(|&p| x.row(p).iter().map(|&v| v as f64 * v as f64).sum()).collect();
    let mut out = Vec::with_capacity(x.n);
    for r0 in (0..x.n).step_by(16384) {
        let r1 = (r0 + 16384).min(x.n);
        let dots = crate::cpu::matmul::matmul(&x.data[r0 * d..r1 * d], &q, None, r1 - r0, picks.len(), d, true);
        out.extend(crate::cpu::par::map(r1 - r0, |r| {
            let xn: f64 = x.row(r0 + r).iter().map(|&v| v as f64 * v as f64).sum();
            let row = &dots[r * picks.len()..(r + 1) * picks.len()];
            let m = row.iter().zip(&qn).map(|(&p, &c)| xn + c - 2.0 * p as f64).fold(f64::INFINITY, f64::min);
            f(r0 + r, m, xn)
        }));
    }
    out
}

/// The mean over the rows of the squared distance to the nearest pick, from f32 products (a measurement).
fn mean_sq_distance(x: Matrix, picks: &[usize]) -> f64 {
    per_row_nearest(x, picks, |_, m, _| m.max(0.0)).iter().sum::<f64>() / x.n.max(1) as f64
}

/// `strategy`'s picks on the CPU backend (rows weighted by `weights` when given), and the δ its notes give
/// (ProbCover).
async fn pick(
    x: Matrix<'_>,
    strategy: &str,
    budget: usize,
    seed: u64,
    weights: Option<&[f64]>,
) -> Result<(Vec<usize>, Option<f64>)> {
    let input = SelectInput { x, budget, seed, labeled: &[], scans: Some(Backend::Cpu), weights };
    let sel = crate::select::select(strategy, &input).await?;
    // "δ = 0.123456; …" (probcover) or "δ = 0.123456 (binary search); …" (probcover-delta).
    let delta =
        sel.notes.iter().find_map(|n| n.strip_prefix("δ = ")?.split([';', ' ']).next()?.trim().parse::<f64>().ok());
    Ok((sel.picks, delta))
}

/// The share of the rows within `delta` (Euclidean, ≤ as ProbCover's δ-graph) of some pick: f32 products, and f64
/// sums for the rows they cannot decide.
fn coverage(x: Matrix, picks: &[usize], delta: f64) -> f64 {
    let qmax = picks.iter().map(|&p| x.row(p).iter().map(|&v| v as f64 * v as f64).sum()).fold(0.0, f64::max);
    let err = 4.0 * (x.d + 2) as f64 * f32::EPSILON as f64 + 1e-12;
    let hit = per_row_nearest(x, picks, |i, m, xn| {
        // Rows the f32 products leave undecided (within their error of δ²) are measured in f64.
        if (m - delta * delta).abs() > err * (xn + qmax) {
            return m <= delta * delta;
        }
        picks.iter().any(|&p| {
            let s: f64 = x.row(i).iter().zip(x.row(p)).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
            s.sqrt() <= delta
        })
    });
    hit.into_iter().filter(|&h| h).count() as f64 / x.n.max(1) as f64
}

/// The comparison on `synthetic_features(n, d, 0)` (or its `skewed` twin) split into `parts` parts, local
/// coresets of factor × budget.
#[allow(clippy::too_many_arguments)] // the bench's options
pub async fn composable(
    n: usize,
    d: usize,
    parts: usize,
    budget: usize,
    factor: usize,
    strategy: &str,
    skewed: bool,
    kind: crate::select::composable::LocalKind,
) -> Result<ComposableReport> {
    let (data, truth) = super::synthetic_labelled(n, d, 0, skewed);
    // Total variation between two pick lists' shares of the generating clusters.
    let tv = |a: &[usize], b: &[usize]| {
        let share = |p: &[usize]| {
            let mut h = vec![0f64; 64];
            for &i in p {
                h[truth[i] as usize] += 1.0 / p.len().max(1) as f64;
            }
            h
        };
        share(a).iter().zip(share(b)).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0
    };
    let x = Matrix::new(&data, n, d)?;
    let t = crate::Instant::now();
    let (single, single_delta) = pick(x, strategy, budget, 0, None).await?;
    let single_seconds = t.elapsed().as_secs_f64();
    let (mut part_seconds, mut union_rows, mut largest) = (Vec::new(), Vec::new(), 0f64);
    let mut weights: Vec<f64> = Vec::new();
    for i in 0..parts {
        let r = part_rows(n, crate::embed::parts::Shard { index: i, count: parts });
        let t = crate::Instant::now();
        let part = Matrix::new(&data[r.start * d..r.end * d], r.len(), d)?;
        let c = crate::select::composable::local_coreset_of(part, factor * budget, i as u64, kind);
        part_seconds.push(t.elapsed().as_secs_f64());
        largest = largest.max(c.radius());
        union_rows.extend(c.rows.iter().map(|&j| r.start + j));
        weights.extend(c.weights.iter().map(|&w| w as f64));
    }
    let ux: Vec<f32> = union_rows.iter().flat_map(|&i| x.row(i).iter().copied()).collect();
    let union = Matrix::new(&ux, union_rows.len(), d)?;
    let t = crate::Instant::now();
    let weighted = crate::select::WEIGHTED.contains(&strategy);
    let (local_picks, union_delta) = pick(union, strategy, budget, 0, Some(&weights)).await?;
    let union_seconds = t.elapsed().as_secs_f64();
    let unweighted = if weighted {
        let (p, _) = pick(union, strategy, budget, 0, None).await?;
        Some(p.iter().map(|&j| union_rows[j]).collect::<Vec<usize>>())
    } else {
        None
    };
    let union_radius = covering_radius(union, &local_picks);
    let picks: Vec<usize> = local_picks.iter().map(|&j| union_rows[j]).collect();
    let single_coverage = single_delta.map(|dl| coverage(x, &single, dl));
    let cover = single_delta.map(|dl| coverage(x, &picks, dl));
    Ok(ComposableReport {
        strategy: strategy.to_string(),
        n,
        d,
        parts,
        budget,
        factor,
        threads: crate::cpu::par::threads(),
        single_seconds,
        single_radius: covering_radius(x, &single),
        single_typicality: mean_typicality(x, &single),
        part_seconds,
        union_rows: union_rows.len(),
        largest_local_radius: largest,
        union_seconds,
        union_radius,
        radius: covering_radius(x, &picks),
        bound: union_radius + largest,
        typicality: mean_typicality(x, &picks),
        single_delta,
        union_delta,
        single_coverage,
        coverage: cover,
        skewed,
        coreset: kind.name().to_string(),
        single_mean_sq: mean_sq_distance(x, &single),
        mean_sq: mean_sq_distance(x, &picks),
        weighted,
        unweighted_radius: unweighted.as_ref().map(|p| covering_radius(x, p)),
        unweighted_typicality: unweighted.as_ref().map(|p| mean_typicality(x, p)),
        unweighted_mean_sq: unweighted.as_ref().map(|p| mean_sq_distance(x, p)),
        cluster_tv: tv(&picks, &single),
        unweighted_cluster_tv: unweighted.as_ref().map(|p| tv(p, &single)),
    })
}

impl ComposableReport {
    /// The printed table.
    pub fn table(&self) -> String {
        let max_part = self.part_seconds.iter().copied().fold(0.0, f64::max);
        let sum_part: f64 = self.part_seconds.iter().sum();
        format!(
            "{}, {} × {} synthetic features (64 clusters{}), B = {}, {} parts, local {} coresets of {} × B, {} threads\n\n\
             | run | wall time | covering radius over the pool | ratio to one machine | mean typicality of the picks | mean squared distance to the nearest pick | picks' cluster shares: distance to one machine's (TV) |\n\
             |---|---|---|---|---|---|---|\n\
             | one machine | {:.2} s | {:.4} | 1.000 | {:.5} | {:.4} | 0 |\n\
             | {} parts + union of {} rows{} | {:.2} s per part at most ({:.2} s all parts) + {:.2} s on the union | {:.4} (guaranteed ≤ {:.4}) | {:.3} | {:.5} | {:.4} | {:.3} |\n",
            self.strategy,
            self.n,
            self.d,
            if self.skewed { ", sizes ∝ 1/(c + 1)" } else { "" },
            self.budget,
            self.parts,
            self.coreset,
            self.factor,
            self.threads,
            self.single_seconds,
            self.single_radius,
            self.single_typicality,
            self.single_mean_sq,
            self.parts,
            self.union_rows,
            if self.weighted { ", weighted" } else { "" },
            max_part,
            sum_part,
            self.union_seconds,
            self.radius,
            self.bound,
            self.radius / self.single_radius,
            self.typicality,
            self.mean_sq,
            self.cluster_tv
        ) + &match (self.unweighted_radius, self.unweighted_typicality, self.unweighted_mean_sq) {
            (Some(r), Some(t), Some(m)) => format!(
                "| the same union, weights not used | — | {r:.4} | {:.3} | {t:.5} | {m:.4} | {:.3} |\n",
                r / self.single_radius,
                self.unweighted_cluster_tv.unwrap_or(f64::NAN)
            ),
            _ => String::new(),
        } + &match (self.single_delta, self.single_coverage, self.coverage) {
            (Some(dl), Some(a), Some(b)) => format!(
                "\nProbCover's objective, the share of the pool within the one-machine δ = {dl:.6} of a pick: one \
                 machine {:.2} %, from the parts {:.2} % (the union's own δ: {}; loss {:.2} points)\n",
                100.0 * a,
                100.0 * b,
                self.union_delta.map(|v| format!("{v:.6}")).unwrap_or_else(|| "—".into()),
                100.0 * (a - b)
            ),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_the_rows_within_delta_of_a_pick() {
        let (n, d) = (3000, 16);
        let data = crate::bench::synthetic_features(n, d, 3);
        let x = Matrix::new(&data, n, d).unwrap();
        let picks: Vec<usize> = (0..n).step_by(100).collect();
        // Every row is within the covering radius of a pick; at δ = 0 only the picks themselves (distinct rows).
        let r = covering_radius(x, &picks);
        assert_eq!(coverage(x, &picks, r * (1.0 + 1e-6)), 1.0);
        assert_eq!(coverage(x, &picks, 0.0), picks.len() as f64 / n as f64);
        // In between, the count by hand (f64 distances).
        let delta = r / 2.0;
        let by_hand = (0..n)
            .filter(|&i| {
                picks.iter().any(|&p| {
                    let s: f64 = x.row(i).iter().zip(x.row(p)).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
                    s.sqrt() <= delta
                })
            })
            .count();
        assert_eq!(coverage(x, &picks, delta), by_hand as f64 / n as f64);
    }
}
