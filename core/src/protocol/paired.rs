//! Each strategy against Random, seed by seed: with every strategy run over the same seeds as Random (the seed
//! drives the strategy's own randomness and the head's initialisation), the runs pair up by seed, and the
//! difference strategy − Random per seed is what the evidence rests on:
//! - its mean, with a percentile-bootstrap 95 % interval over the seeds (10 000 resamples, seeded);
//! - the Wilcoxon signed-rank test's two-sided p-value (exact over the 2ⁿ sign patterns up to 20 pairs, the
//!   normal approximation with tie correction beyond; zero (and non-finite) differences dropped, as Wilcoxon
//!   dropped zeros);
//! - "labels saved": the budget Random needs, on its curve of means interpolated linearly between budgets, to
//!   reach the strategy's mean at this budget, minus this budget (negative: labels lost).
//!
//! Differences are signed so that positive is better (for distances, Random − strategy). A strategy is "above" or
//! "below" Random at a budget when the bootstrap interval excludes 0; the p-value is reported beside it.

use serde::Serialize;

use super::{lower_is_better, report::cell, RunResult};
use crate::rng::Rng;

/// One strategy against Random at one budget, on one metric.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Paired {
    pub strategy: String,
    pub budget: usize,
    pub metric: String,
    /// Seeds both ran with.
    pub n: usize,
    /// Mean of (strategy − Random) per seed, positive = better.
    pub mean_diff: f64,
    /// Percentile-bootstrap 95 % interval of the mean difference.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Wilcoxon signed-rank two-sided p-value (1 when every difference is 0).
    pub p_value: f64,
    /// Budget Random needs for the strategy's mean, minus `budget`; `None` outside Random's measured range.
    pub labels_saved: Option<f64>,
    /// "above", "below" or "indistinguishable" from Random: whether the bootstrap interval excludes 0. (The
    /// Wilcoxon p is reported beside it; with 5 seeds its smallest two-sided value is 1/16, so it cannot reach
    /// 0.05 below 6 seeds.)
    pub verdict: String,
}

/// Per-seed differences (strategy − Random, positive = better) at one budget, over the seeds both have.
pub fn differences(runs: &[RunResult], strategy: &str, budget: usize, metric: &str) -> Vec<f64> {
    let value = |s: &str, seed: u64| {
        runs.iter().find(|r| r.strategy == s && r.budget == budget && r.seed == seed).and_then(|r| r.metric(metric))
    };
    let mut seeds: Vec<u64> =
        runs.iter().filter(|r| r.strategy == strategy && r.budget == budget).map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let sign = if lower_is_better(metric) { -1.0 } else { 1.0 };
    seeds.into_iter().filter_map(|sd| Some(sign * (value(strategy, sd)? - value("random", sd)?))).collect()
}

/// Percentile-bootstrap interval (`level`, e.g. 0.95) of the mean of `d`, from `resamples` seeded resamples.
pub fn bootstrap_mean_ci(d: &[f64], level: f64, resamples: usize, seed: u64) -> (f64, f64) {
    if d.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = Rng::new(seed ^ 0xb007_57a9);
    let n = d.len();
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| d[rng.below(n as u32) as usize]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| means[((p * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    let a = (1.0 - level) / 2.0;
    (q(a), q(1.0 - a))
}

/// Wilcoxon signed-rank test, two-sided p-value. Zeros are dropped; tied magnitudes get their average rank.
pub fn wilcoxon_signed_rank(d: &[f64]) -> f64 {
    let mut v: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0 && x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return 1.0;
    }
    v.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let ranks = average_ranks(&v.iter().map(|x| x.abs()).collect::<Vec<_>>());
    // Ties of |d| are runs of equal ranks (v is sorted by |d|).
    let tie_term: f64 = ranks
        .chunk_by(|a, b| a == b)
        .map(|t| {
            let t = t.len() as f64;
            t * t * t - t
        })
        .sum();
    let w_plus: f64 = v.iter().zip(&ranks).filter(|(x, _)| **x > 0.0).map(|(_, r)| r).sum();
    let total = n as f64 * (n as f64 + 1.0) / 2.0;
    if n <= 20 {
        // Exact: the share of the 2ⁿ sign patterns whose W+ is at least as far from its mean as the observed one.
        // Ranks are doubled so average ranks of ties stay integers: counts[s] = patterns with 2·W+ = s, whose
        // mean is `total`.
        let r2: Vec<usize> = ranks.iter().map(|r| (2.0 * r).round() as usize).collect();
        let max: usize = r2.iter().sum();
        let mut counts = vec![0f64; max + 1];
        counts[0] = 1.0;
        for &r in &r2 {
            for s in (r..=max).rev() {
                counts[s] += counts[s - r];
            }
        }
        let dev = (2.0 * w_plus - total).abs();
        let extreme: f64 =
            counts.iter().enumerate().filter(|(s, _)| (*s as f64 - total).abs() >= dev - 1e-9).map(|(_, c)| c).sum();
        return (extreme / 2f64.powi(n as i32)).min(1.0);
    }
    let mean = total / 2.0;
    let var = n as f64 * (n as f64 + 1.0) * (2.0 * n as f64 + 1.0) / 24.0 - tie_term / 48.0;
    if var <= 0.0 {
        return 1.0;
    }
    let z = (w_plus - mean).abs() / var.sqrt();
    (2.0 * normal_sf(z)).min(1.0)
}

/// The rank of each value (1 = smallest), tied values sharing their average rank.
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

/// P(Z > z) for a standard normal Z.
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The budget at which Random's mean curve reaches `value`, interpolated linearly between measured budgets
/// (the first crossing); `None` when `value` lies outside the curve's range.
pub fn random_budget_for(runs: &[RunResult], budgets: &[usize], metric: &str, value: f64) -> Option<f64> {
    let lower = lower_is_better(metric);
    let mut pts: Vec<(f64, f64)> = budgets
        .iter()
        .filter_map(|&b| cell(runs, "random", b, metric).map(|c| (b as f64, if lower { -c.mean } else { c.mean })))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let v = if lower { -value } else { value };
    for w in pts.windows(2) {
        let ((b0, m0), (b1, m1)) = (w[0], w[1]);
        if (m0 <= v && v <= m1) || (m1 <= v && v <= m0) {
            if m1 == m0 {
                return Some(b0);
            }
            return Some(b0 + (v - m0) / (m1 - m0) * (b1 - b0));
        }
    }
    match pts.as_slice() {
        [(b, m)] if *m == v => Some(*b),
        _ => None,
    }
}

/// Every non-Random strategy against Random at every budget, on `metric`.
pub fn compare(runs: &[RunResult], strategies: &[String], budgets: &[usize], metric: &str) -> Vec<Paired> {
    let mut out = Vec::new();
    for s in strategies.iter().filter(|s| s.as_str() != "random") {
        for &b in budgets {
            let d = differences(runs, s, b, metric);
            if d.is_empty() {
                continue;
            }
            let mean_diff = d.iter().sum::<f64>() / d.len() as f64;
            let (ci_low, ci_high) = bootstrap_mean_ci(&d, 0.95, 10_000, b as u64);
            let p_value = wilcoxon_signed_rank(&d);
            let labels_saved = cell(runs, s, b, metric)
                .and_then(|c| random_budget_for(runs, budgets, metric, c.mean))
                .map(|rb| rb - b as f64);
            let verdict = if ci_low > 0.0 {
                "above"
            } else if ci_high < 0.0 {
                "below"
            } else {
                "indistinguishable"
            };
            out.push(Paired {
                strategy: s.clone(),
                budget: b,
                metric: metric.to_string(),
                n: d.len(),
                mean_diff,
                ci_low,
                ci_high,
                p_value,
                labels_saved,
                verdict: verdict.to_string(),
            });
        }
    }
    out
}

/// The paired table in Markdown: per strategy and budget, the mean difference with its interval, the p-value
/// and the labels saved; then which strategies are above / indistinguishable from / below Random.
pub fn markdown(rows: &[Paired], budgets: &[usize]) -> String {
    // The bounds of "labels saved" outside Random's curve: the budgets it was measured at (those with a row).
    let measured: Vec<usize> = budgets.iter().copied().filter(|b| rows.iter().any(|r| r.budget == *b)).collect();
    let (bmin, bmax) = (measured.iter().min().copied().unwrap_or(0), measured.iter().max().copied().unwrap_or(0));
    let mut s = format!(
        "| vs Random (paired by seed) | {} |\n|---|{}\n",
        budgets.iter().map(|b| format!("budget {b}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(budgets.len())
    );
    let mut names: Vec<&str> = rows.iter().map(|r| r.strategy.as_str()).collect();
    names.dedup();
    for name in &names {
        s.push_str(&format!("| {name} |"));
        for &b in budgets {
            match rows.iter().find(|r| r.strategy == *name && r.budget == b) {
                Some(r) => {
                    // Outside Random's curve: a bound from its smallest or largest budget.
                    let saved = match r.labels_saved {
                        Some(l) => format!(", saves {l:+.0}"),
                        None if r.mean_diff > 0.0 => format!(", saves > {:+}", bmax as i64 - b as i64),
                        None => format!(", saves < {:+}", bmin as i64 - b as i64),
                    };
                    let cellv = format!(
                        "{:+.3} [{:+.3}, {:+.3}] p={:.2} n={}{saved}",
                        r.mean_diff, r.ci_low, r.ci_high, r.p_value, r.n
                    );
                    match r.verdict.as_str() {
                        "above" => s.push_str(&format!(" **{cellv}** |")),
                        "below" => s.push_str(&format!(" _{cellv}_ |")),
                        _ => s.push_str(&format!(" {cellv} |")),
                    }
                }
                None => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    let list = |v: &str| {
        let l: Vec<String> =
            rows.iter().filter(|r| r.verdict == v).map(|r| format!("{} at {}", r.strategy, r.budget)).collect();
        if l.is_empty() {
            "none".to_string()
        } else {
            l.join(", ")
        }
    };
    s.push_str(&format!(
        "\nDifference strategy − Random per seed (positive = better), mean [bootstrap 95 % interval], Wilcoxon \
         signed-rank p, seeds; \"saves\" = the budget Random needs for the strategy's mean minus this budget. \
         Above Random (interval > 0; bold): {}. Below (interval < 0; italic): {}.\n",
        list("above"),
        list("below")
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilcoxon_matches_the_exact_distribution() {
        // Five positive differences: only 1 of 32 sign patterns is as extreme each way → p = 2/32.
        assert!((wilcoxon_signed_rank(&[0.1, 0.2, 0.3, 0.4, 0.5]) - 0.0625).abs() < 1e-12);
        // W+ = 9 of 15: 26 of 32 patterns at least as far from 7.5 → 0.8125.
        assert!((wilcoxon_signed_rank(&[1.0, -2.0, 3.0, -4.0, 5.0]) - 0.8125).abs() < 1e-12);
        // [1, 2, 3, −4, 5, 6]: W− = 4, 7 of 64 subsets sum to ≤ 4 → 2·7/64 (scipy.stats.wilcoxon, exact).
        assert!((wilcoxon_signed_rank(&[1.0, 2.0, 3.0, -4.0, 5.0, 6.0]) - 0.21875).abs() < 1e-12);
        // Tied magnitudes take average ranks: [1, 1, −1] → ranks 2, 2, 2, W+ = 4; over the 8 patterns W+ is 0, 2,
        // 4 or 6, always at least 1 from its mean 3 → p = 1.
        assert!((wilcoxon_signed_rank(&[1.0, 1.0, -1.0]) - 1.0).abs() < 1e-12);
        assert_eq!(wilcoxon_signed_rank(&[0.0, 0.0]), 1.0);
        // Large n: the normal approximation, all positive → tiny p.
        let d: Vec<f64> = (1..=30).map(|i| i as f64).collect();
        assert!(wilcoxon_signed_rank(&d) < 1e-5);
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_is_seeded() {
        let d = [0.02, 0.05, -0.01, 0.04, 0.03];
        let (lo, hi) = bootstrap_mean_ci(&d, 0.95, 10_000, 7);
        let mean = d.iter().sum::<f64>() / 5.0;
        assert!(lo < mean && mean < hi && lo >= -0.01 && hi <= 0.05, "{lo} {hi}");
        assert_eq!((lo, hi), bootstrap_mean_ci(&d, 0.95, 10_000, 7));
    }

    fn run(strategy: &str, budget: usize, seed: u64, bacc: f64) -> RunResult {
        serde_json::from_value(serde_json::json!({
            "strategy": strategy, "budget": budget, "seed": seed, "picks": [], "picked_per_class": [],
            "accuracy": bacc, "balanced_accuracy": bacc, "auc": null, "select_seconds": 0.0, "train_seconds": 0.0,
            "train_steps": 0, "dice": null, "iou": null, "hd95": null, "asd": null, "pseudo": [],
            "best_epoch": null, "val_accuracy": null, "val_dice": null
        }))
        .unwrap()
    }

    #[test]
    fn pairs_by_seed_and_reads_labels_saved_off_randoms_curve() {
        // Random: 0.60 at 20, 0.70 at 40 (two seeds each); the strategy 0.65 at 20 → Random needs 30: saves 10.
        let runs = vec![
            run("random", 20, 0, 0.58),
            run("random", 20, 1, 0.62),
            run("random", 40, 0, 0.69),
            run("random", 40, 1, 0.71),
            run("s", 20, 0, 0.64),
            run("s", 20, 1, 0.66),
            run("s", 40, 0, 0.60),
            run("s", 40, 1, 0.61),
        ];
        let d = differences(&runs, "s", 20, "balanced_accuracy");
        assert!((d[0] - 0.06).abs() < 1e-12 && (d[1] - 0.04).abs() < 1e-12, "{d:?}");
        assert!((random_budget_for(&runs, &[20, 40], "balanced_accuracy", 0.65).unwrap() - 30.0).abs() < 1e-9);
        assert_eq!(random_budget_for(&runs, &[20, 40], "balanced_accuracy", 0.75), None);
        let rows = compare(&runs, &["random".into(), "s".into()], &[20, 40], "balanced_accuracy");
        assert_eq!(rows.len(), 2);
        assert!((rows[0].labels_saved.unwrap() - 10.0).abs() < 1e-9 && rows[0].verdict == "above", "{rows:?}");
        // At 40 the strategy's 0.605 is what Random reaches at 21: 19 labels lost, a verdict below.
        assert!((rows[1].labels_saved.unwrap() + 19.0).abs() < 1e-9, "{rows:?}");
        assert_eq!(rows[1].verdict, "below");
        let md = markdown(&rows, &[20, 40]);
        assert!(md.contains("saves +10") && md.contains("saves -19"), "{md}");
        // Below Random's whole curve (0.55 at 20): no interpolated figure, a bound in the table.
        let low: Vec<RunResult> =
            runs.iter().map(|r| if r.strategy == "s" { run("s", r.budget, r.seed, 0.55) } else { r.clone() }).collect();
        let rows = compare(&low, &["s".into()], &[20, 40], "balanced_accuracy");
        assert_eq!(rows[0].labels_saved, None);
        assert!(markdown(&rows, &[20, 40]).contains("saves < +0"), "{}", markdown(&rows, &[20, 40]));
        // For distances smaller is better: the sign flips.
        let mut h = runs.clone();
        for r in &mut h {
            r.hd95 = Some(r.balanced_accuracy);
        }
        assert!((differences(&h, "s", 20, "hd95")[0] + 0.06).abs() < 1e-12);
    }
}
