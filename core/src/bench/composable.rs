//! `medpick bench composable`: selection from local coresets against one machine's (issue 26), on synthetic
//! clustered features: the covering radius of both pick lists over the whole pool, their mean typicality, and the
//! wall time of each phase.

use serde::Serialize;

use crate::exec::Backend;
use crate::select::composable::{covering_radius, local_coreset, part_rows};
use crate::select::{Matrix, SelectInput};
use crate::Result;

#[derive(Clone, Debug, Serialize)]
pub struct ComposableReport {
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

async fn coreset(x: Matrix<'_>, budget: usize, seed: u64) -> Result<Vec<usize>> {
    let input = SelectInput { x, budget, seed, labeled: &[], scans: Some(Backend::Cpu) };
    Ok(crate::select::select("coreset", &input).await?.picks)
}

/// The comparison on `synthetic_features(n, d, 0)` split into `parts` parts, local coresets of factor × budget.
pub async fn composable(n: usize, d: usize, parts: usize, budget: usize, factor: usize) -> Result<ComposableReport> {
    let data = super::synthetic_features(n, d, 0);
    let x = Matrix::new(&data, n, d)?;
    let t = crate::Instant::now();
    let single = coreset(x, budget, 0).await?;
    let single_seconds = t.elapsed().as_secs_f64();
    let (mut part_seconds, mut union_rows, mut largest) = (Vec::new(), Vec::new(), 0f64);
    for i in 0..parts {
        let r = part_rows(n, crate::embed::parts::Shard { index: i, count: parts });
        let t = crate::Instant::now();
        let part = Matrix::new(&data[r.start * d..r.end * d], r.len(), d)?;
        let c = local_coreset(part, factor * budget, i as u64);
        part_seconds.push(t.elapsed().as_secs_f64());
        largest = largest.max(c.radius());
        union_rows.extend(c.rows.iter().map(|&j| r.start + j));
    }
    let ux: Vec<f32> = union_rows.iter().flat_map(|&i| x.row(i).iter().copied()).collect();
    let union = Matrix::new(&ux, union_rows.len(), d)?;
    let t = crate::Instant::now();
    let local_picks = coreset(union, budget, 0).await?;
    let union_seconds = t.elapsed().as_secs_f64();
    let union_radius = covering_radius(union, &local_picks);
    let picks: Vec<usize> = local_picks.iter().map(|&j| union_rows[j]).collect();
    Ok(ComposableReport {
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
    })
}

impl ComposableReport {
    /// The printed table.
    pub fn table(&self) -> String {
        let max_part = self.part_seconds.iter().copied().fold(0.0, f64::max);
        let sum_part: f64 = self.part_seconds.iter().sum();
        format!(
            "coreset, {} × {} synthetic features (64 clusters), B = {}, {} parts, local coresets of {} × B, {} threads\n\n\
             | run | wall time | covering radius over the pool | ratio to one machine | mean typicality of the picks |\n\
             |---|---|---|---|---|\n\
             | one machine | {:.2} s | {:.4} | 1.000 | {:.5} |\n\
             | {} parts + union of {} rows | {:.2} s per part at most ({:.2} s all parts) + {:.2} s on the union | {:.4} (guaranteed ≤ {:.4}) | {:.3} | {:.5} |\n",
            self.n,
            self.d,
            self.budget,
            self.parts,
            self.factor,
            self.threads,
            self.single_seconds,
            self.single_radius,
            self.single_typicality,
            self.parts,
            self.union_rows,
            max_part,
            sum_part,
            self.union_seconds,
            self.radius,
            self.bound,
            self.radius / self.single_radius,
            self.typicality
        )
    }
}
