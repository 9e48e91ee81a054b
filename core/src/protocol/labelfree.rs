//! The label-free check ([`crate::select::check`]) of every strategy's picks in a protocol run, beside the
//! paired comparison with Random: does a measure a user can compute without labels (coverage of the pool's
//! clusters, skew over its coarse modes, stability over seeds) tell which strategies beat Random on this data?
//! Writes `labelfree.json` and returns the Markdown section of results.md.

use serde::Serialize;

use super::{paired, RunResult};
use crate::select::check::{Check, Reference};
use crate::select::Matrix;
use crate::{Context, Result};

/// One strategy at one budget: its check and its paired difference with Random.
#[derive(Serialize)]
pub struct Row {
    pub strategy: String,
    #[serde(flatten)]
    pub check: Check,
    /// Mean paired difference with Random (None for Random itself) and the verdict.
    pub mean_diff: Option<f64>,
    pub verdict: Option<String>,
}

/// How well one label-free measure tracks the paired difference with Random over the strategy × budget cells.
#[derive(Serialize)]
pub struct Agreement {
    /// Spearman's ρ of (coverage, skew, stability) with the mean paired difference (None with < 3 cells).
    pub spearman_coverage: Option<f64>,
    pub spearman_skew: Option<f64>,
    pub spearman_stability: Option<f64>,
    /// Verdicts of the cells the check calls skewed, and of the others: [above, level, below].
    pub skewed_verdicts: [usize; 3],
    pub unskewed_verdicts: [usize; 3],
}

/// The check of every strategy at every budget on the pool `x` (rows named by `ids`), from the picks in `runs`.
/// `pairs` are the paired comparisons of the report (every metric's; `metric`'s are used).
#[allow(clippy::too_many_arguments)] // the pool, the runs and their comparisons, what to report on
pub async fn label_free(
    out: &std::path::Path,
    x: Matrix<'_>,
    ids: &[String],
    runs: &[RunResult],
    pairs: &[paired::Paired],
    strategies: &[String],
    budgets: &[usize],
    metric: &str,
) -> Result<String> {
    let row_of: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut rows = Vec::new();
    for &b in budgets.iter().filter(|&&b| b <= x.n) {
        let reference = Reference::new(x, b, None).await?;
        for s in strategies {
            let picks: Vec<Vec<usize>> = runs
                .iter()
                .filter(|r| &r.strategy == s && r.budget == b)
                .map(|r| r.picks.iter().filter_map(|id| row_of.get(id.as_str()).copied()).collect::<Vec<_>>())
                .filter(|p: &Vec<usize>| !p.is_empty())
                .collect();
            if picks.is_empty() {
                continue;
            }
            let p = pairs.iter().find(|p| &p.strategy == s && p.budget == b && p.metric == metric);
            rows.push(Row {
                strategy: s.clone(),
                check: reference.check(&picks)?,
                mean_diff: p.map(|p| p.mean_diff),
                verdict: p.map(|p| p.verdict.clone()),
            });
        }
    }
    let agreement = agreement(&rows);
    let path = out.join("labelfree.json");
    let doc = serde_json::json!({"metric": metric, "rows": rows, "agreement": agreement});
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(markdown(&rows, &agreement, metric))
}

fn agreement(rows: &[Row]) -> Agreement {
    let cells: Vec<&Row> = rows.iter().filter(|r| r.mean_diff.is_some()).collect();
    let diff: Vec<f64> = cells.iter().filter_map(|r| r.mean_diff).collect();
    let rho = |f: &dyn Fn(&Row) -> Option<f64>| -> Option<f64> {
        let v: Option<Vec<f64>> = cells.iter().map(|r| f(r)).collect();
        v.and_then(|v| spearman(&v, &diff))
    };
    let mut skewed_verdicts = [0usize; 3];
    let mut unskewed_verdicts = [0usize; 3];
    for r in &cells {
        let k = match r.verdict.as_deref() {
            Some("above") => 0,
            Some("below") => 2,
            _ => 1,
        };
        if r.check.skewed() {
            skewed_verdicts[k] += 1;
        } else {
            unskewed_verdicts[k] += 1;
        }
    }
    Agreement {
        spearman_coverage: rho(&|r| Some(r.check.coverage)),
        spearman_skew: rho(&|r| Some(r.check.skew)),
        spearman_stability: rho(&|r| r.check.stability),
        skewed_verdicts,
        unskewed_verdicts,
    }
}

fn markdown(rows: &[Row], a: &Agreement, metric: &str) -> String {
    let mut md = String::from(
        "\n## Label-free check\n\nWhat a user can measure on the pool without labels, per strategy and budget \
         (`medpick select --check`; src: core/src/select/check.rs): **coverage** — share of the pool's B k-means \
         clusters holding a pick (Random: its exact expectation); **skew** — total-variation distance between the \
         picks' and the pool's spread over ⌈√B⌉ coarse k-means modes (Random: mean and 95th percentile of 2,000 \
         draws; *skewed* above that); **overlap** — mean Jaccard of the pick sets over seeds. Beside them the \
         paired difference with Random from the table above.\n\n\
         | strategy | budget | coverage (Random) | skew (Random mean / p95) | overlap (Random) | Δ vs Random | verdict |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let c = &r.check;
        md.push_str(&format!(
            "| {} | {} | {:.2} ({:.2}) | {:.3}{} ({:.3} / {:.3}) | {} ({:.2}) | {} | {} |\n",
            r.strategy,
            c.budget,
            c.coverage,
            c.random_coverage,
            c.skew,
            if c.skewed() { " *skewed*" } else { "" },
            c.random_skew,
            c.random_skew_p95,
            c.stability.map_or("—".into(), |j| format!("{j:.2}")),
            c.random_stability,
            r.mean_diff.map_or("—".into(), |d| format!("{d:+.4}")),
            r.verdict.as_deref().unwrap_or("(reference)"),
        ));
    }
    let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:+.2}"));
    md.push_str(&format!(
        "\nAgreement with the paired {metric} difference over the strategy × budget cells: Spearman ρ of coverage \
         {}, of skew {}, of overlap {}. Cells called skewed: {} above / {} level / {} below Random; the others: \
         {} / {} / {}.\n",
        f(a.spearman_coverage),
        f(a.spearman_skew),
        f(a.spearman_stability),
        a.skewed_verdicts[0],
        a.skewed_verdicts[1],
        a.skewed_verdicts[2],
        a.unskewed_verdicts[0],
        a.unskewed_verdicts[1],
        a.unskewed_verdicts[2],
    ));
    md
}

/// Spearman's rank correlation (average ranks on ties); None with fewer than 3 points or a constant side.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 3 {
        return None;
    }
    let (ra, rb) = (paired::average_ranks(a), paired::average_ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

#[cfg(test)]
mod tests {
    #[test]
    fn spearman_ranks_with_ties() {
        assert_eq!(super::spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]), Some(1.0));
        assert_eq!(super::spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(super::paired::average_ranks(&[5.0, 1.0, 5.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(super::spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(super::spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
    }
}
