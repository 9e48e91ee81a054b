//! ProbCover, MedCAL's variant (δ by its purity scan, greedy max-cover on the δ-graph) and the official one
//! (`probcover-delta[:δ]`: δ given, or by binary search on the purity of k-means labels).

use super::strategies::*;
use super::{medcal_delta, scan, Matrix, SelectInput, Selection};
use crate::Result;

/// MedCAL's δ: the largest δ on `linspace(0, max D, 100)` (scanned upwards, stopping at the first failure) for
/// which ≥ 95 % of the balls {j : D_ij ≤ δ} hold a single pseudo-label. Ball i is pure iff δ is below the
/// distance from i to its nearest point of another label, so the scan needs no n×n pass per δ.
pub fn probcover_delta(x: Matrix, labels: &[usize]) -> f64 {
    let n2 = norms2(x);
    // Row by row on the CPU backend's threads (each row's values are computed as alone; max and min are exact).
    let rows = crate::cpu::par::map(x.n, |i| {
        let (mut maxd, mut other) = (0f64, f64::INFINITY);
        for j in 0..x.n {
            let dd = dist(x, &n2, i, j);
            maxd = maxd.max(dd);
            if labels[i] != labels[j] {
                other = other.min(dd);
            }
        }
        (maxd, other)
    });
    let maxd = rows.iter().map(|r| r.0).fold(0f64, f64::max);
    let other: Vec<f64> = rows.into_iter().map(|r| r.1).collect();
    medcal_delta(maxd, x.n, |delta| other.iter().filter(|&&o| delta < o).count())
}

/// The graph {(i, j) : inside(i, j)} over the rows, in CSR form (offsets [n+1], sorted neighbour lists).
fn csr_graph(n: usize, inside: impl Fn(usize, usize) -> bool + Sync + Send) -> (Vec<usize>, Vec<u32>) {
    // Each row's neighbour list on the CPU backend's threads, concatenated in row order.
    super::pairs::csr(crate::cpu::par::map(n, |i| (0..n).filter(|&j| inside(i, j)).map(|j| j as u32).collect()))
}

/// ProbCover greedy max-coverage on the δ-graph N(i) = {j : D_ij ≤ δ} (stored sparse). Picks the point covering
/// most uncovered points (lowest index on ties); stops when nothing new can be covered (the fill of [`finish`]
/// completes the budget instead of MedCAL's repeated index 0).
pub fn probcover_from(x: Matrix, delta: f64, budget: usize, labeled: &[usize]) -> Selection {
    let (offsets, edges) = delta_graph_plain(x, delta);
    scan::max_cover(&offsets, &edges, budget, labeled, delta)
}

/// The plain δ-graph {(i, j) : dist(i, j) ≤ δ} (CSR, sorted neighbour lists).
pub fn delta_graph_plain(x: Matrix, delta: f64) -> (Vec<usize>, Vec<u32>) {
    let n2 = norms2(x);
    csr_graph(x.n, |i, j| dist(x, &n2, i, j) <= delta)
}

/// `probcover` (MedCAL): pseudo-labels from k-means with k = budget, δ by [`probcover_delta`]. On a GPU the
/// k-means, the purity scan and the sparse δ-graph are built in the scans; the CPU backend gets the plain
/// reference's values through an f32 GEMM filter ([`super::exact`]); the greedy cover is the same.
pub async fn probcover(input: &SelectInput<'_>) -> Result<Selection> {
    let dev = device(input, input.x)?;
    let (c, note) = kmeans_noted(dev.as_ref(), input.x, None, input.budget, input.seed ^ 0x9c0, 300).await?;
    let mut s = match &dev {
        Some(pool) if !pool.be.is_gpu() => {
            // The CPU backend: the plain reference's δ and graph, pairs filtered by an f32 GEMM (exact), the
            // graph's rows measured only against the k-means clusters that can reach within δ.
            let (delta, e1) = super::exact::probcover_delta(input.x, &c.labels);
            let (offsets, edges, e2, covered) = super::exact::delta_graph_clustered(input.x, delta, &c);
            let mut s = scan::max_cover(&offsets, &edges, input.budget, input.labeled, delta);
            let plain = 2 * (input.x.n as u64).pow(2);
            s.notes.insert(
                0,
                format!(
                    "δ = {delta:.6}; δ-graph of {} edges ({covered} of {} pairs in its GEMMs); {} exact pair \
                     distances (plain: {plain})",
                    edges.len(),
                    plain / 2,
                    e1 + e2
                ),
            );
            s
        }
        Some(pool) => {
            let delta = scan::probcover_delta(pool, &c.labels).await?;
            let (offsets, edges) = scan::delta_graph(pool, delta).await?;
            let mut s = scan::max_cover(&offsets, &edges, input.budget, input.labeled, delta);
            s.notes.insert(0, format!("δ = {delta:.6}; δ-graph of {} edges", edges.len()));
            s
        }
        None => {
            let delta = probcover_delta(input.x, &c.labels);
            let mut s = probcover_from(input.x, delta, input.budget, input.labeled);
            s.notes.insert(0, format!("δ = {delta:.6}"));
            s
        }
    };
    s.notes.extend(note);
    s.notes.dedup();
    Ok(s)
}

/// `probcover-delta[:δ]` (the official ProbCover): L2-normalised features, edges ‖x − y‖ < δ (strict), greedy
/// max coverage from the labelled rows. δ is given after the colon, or found by DropQuery's 6-step binary search on
/// [0, 1] from 0.5 (purity < 0.95 → smaller, else larger) against k-means pseudo-labels with k = B (a cold start
/// has no class count; MedCAL also uses B).
pub async fn probcover_official(input: &SelectInput<'_>, delta: Option<f64>) -> Result<Selection> {
    let xn = l2_normalize(input.x);
    let x = Matrix { data: &xn, n: input.x.n, d: input.x.d };
    let dev = device(input, x)?;
    let (delta, how) = match delta {
        Some(d) => (d, "given"),
        None => {
            let c = kmeans_on(dev.as_ref(), x, input.budget.min(x.n), input.seed ^ 0x9c1, 300).await?;
            let other: Vec<f64> = match &dev {
                Some(pool) => {
                    let (o, _) = scan::other_label_scan(pool, &c.labels).await?;
                    o.into_iter().map(|v| (v.max(0.0) as f64).sqrt()).collect()
                }
                None => crate::cpu::par::map(x.n, |i| {
                    sqdists_from(x, i)
                        .into_iter()
                        .enumerate()
                        .filter(|&(j, _)| c.labels[j] != c.labels[i])
                        .map(|(_, d)| d.sqrt())
                        .fold(f64::INFINITY, f64::min)
                }),
            };
            // Ball {j : D_ij < δ} is pure iff δ ≤ the distance to the nearest other label.
            let purity = |d: f64| other.iter().filter(|&&o| d <= o).count() as f64 / x.n as f64;
            let (mut lo, mut hi, mut d) = (0.0, 1.0, 0.5);
            for _ in 0..6 {
                if purity(d) < 0.95 {
                    hi = d;
                } else {
                    lo = d;
                }
                d = (lo + hi) / 2.0;
            }
            (lo, "binary search")
        }
    };
    let (offsets, edges) = match &dev {
        Some(pool) => scan::delta_graph(pool, prev_f32_radius(delta)).await?,
        None => csr_graph(x.n, |i, j| {
            x.row(i).iter().zip(x.row(j)).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>().sqrt() < delta
        }),
    };
    let mut s = scan::max_cover(&offsets, &edges, input.budget, input.labeled, delta);
    s.notes.insert(0, format!("δ = {delta:.6} ({how}); δ-graph of {} edges", edges.len()));
    Ok(s)
}

/// The radius whose f32 square is the largest value below δ² (the device tests D² ≤ r², so this makes it strict).
fn prev_f32_radius(delta: f64) -> f64 {
    let r2 = (delta * delta) as f32;
    let below = f32::from_bits(r2.to_bits().saturating_sub(1)).max(0.0);
    (below as f64).sqrt()
}
