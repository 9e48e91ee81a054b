//! The results table: each strategy's mean ± sd over its seeds per budget and metric, as Markdown (the paired
//! comparison with Random is in [`super::paired`]).

use serde::Serialize;

use super::*;

/// Mean and sample standard deviation of a metric over the runs of one (strategy, budget).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Cell {
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
}

pub fn cell(runs: &[RunResult], strategy: &str, budget: usize, metric: &str) -> Option<Cell> {
    let v: Vec<f64> =
        runs.iter().filter(|r| r.strategy == strategy && r.budget == budget).filter_map(|r| r.metric(metric)).collect();
    if v.is_empty() {
        return None;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some(Cell { mean, sd, n: v.len() })
}

/// A Markdown table: one row per strategy, one column per budget, `metric` as mean ± sd (n seeds); means above
/// Random's are bold. Then the strategies whose mean beats Random's at every budget.
pub fn markdown(runs: &[RunResult], strategies: &[String], budgets: &[usize], metric: &str) -> String {
    let mut s = format!(
        "| strategy | {} |\n|---|{}\n",
        budgets.iter().map(|b| format!("budget {b}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(budgets.len())
    );
    let mut beats_all = Vec::new();
    for st in strategies {
        let mut row = format!("| {st} |");
        let mut all = true;
        for &b in budgets {
            let rnd = cell(runs, "random", b, metric);
            match cell(runs, st, b, metric) {
                Some(c) if st == "random" => row.push_str(&format!(" {:.3} ± {:.3} (n={}) |", c.mean, c.sd, c.n)),
                Some(c) => {
                    let better =
                        rnd.is_some_and(|r| if lower_is_better(metric) { c.mean < r.mean } else { c.mean > r.mean });
                    all &= better;
                    let v = if c.n > 1 {
                        format!("{:.3} ± {:.3} (n={})", c.mean, c.sd, c.n)
                    } else {
                        format!("{:.3}", c.mean)
                    };
                    if better {
                        row.push_str(&format!(" **{v}** |"));
                    } else {
                        row.push_str(&format!(" {v} |"));
                    }
                }
                None => {
                    all = false;
                    row.push_str(" – |");
                }
            }
        }
        if st != "random" && all {
            beats_all.push(st.clone());
        }
        s.push_str(&row);
        s.push('\n');
    }
    s.push_str(&format!(
        "\n{} Random's mean at every budget ({metric}): {}.\n",
        if lower_is_better(metric) { "Below" } else { "Above" },
        if beats_all.is_empty() { "none".to_string() } else { beats_all.join(", ") }
    ));
    s
}

/// How the picks spread over the classes: per strategy and budget, the mean count of picks per class over the
/// seeds, and the smallest class's share of the picks against its share of the training pool (`pool_counts`).
/// A strategy that starves a class loses balanced accuracy whatever its objective says.
pub fn class_balance_markdown(
    runs: &[RunResult],
    strategies: &[String],
    budgets: &[usize],
    classes: &[String],
    pool_counts: &[usize],
) -> String {
    let head = "## Picks per class\n\nMean picks per class over the seeds";
    balance_markdown(head, "class", runs, strategies, budgets, classes, pool_counts)
}

/// Segmentation's counterpart of [`class_balance_markdown`]: how the picks spread over foreground size, in three
/// bins cut at the training pool's tertiles of the foreground fraction (`fg`: each pool image's id → fraction of
/// its mask that is foreground). A strategy that picks only large, easy polyps may lose Dice on small ones.
pub fn foreground_balance_markdown(
    runs: &[RunResult],
    strategies: &[String],
    budgets: &[usize],
    fg: &std::collections::HashMap<String, f64>,
) -> String {
    let mut sorted: Vec<f64> = fg.values().copied().collect();
    if sorted.is_empty() {
        return String::new();
    }
    sorted.sort_by(f64::total_cmp);
    let cut = |q: usize| sorted[(sorted.len() * q / 3).min(sorted.len() - 1)];
    let (t1, t2) = (cut(1), cut(2));
    let bin = |f: f64| {
        if f <= t1 {
            0
        } else if f <= t2 {
            1
        } else {
            2
        }
    };
    let mut pool_counts = vec![0usize; 3];
    for &f in fg.values() {
        pool_counts[bin(f)] += 1;
    }
    let binned: Vec<RunResult> = runs
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.picked_per_class = vec![0; 3];
            for id in &r.picks {
                if let Some(&f) = fg.get(id) {
                    r.picked_per_class[bin(f)] += 1;
                }
            }
            r
        })
        .collect();
    let names = [
        format!("small (≤ {:.1} %)", 100.0 * t1),
        format!("medium (≤ {:.1} %)", 100.0 * t2),
        format!("large (> {:.1} %)", 100.0 * t2),
    ];
    let head = "## Picks by foreground size\n\nThe share of each image's mask that is foreground, in three bins at \
                the training pool's tertiles. Mean picks per bin over the seeds";
    balance_markdown(head, "bin", &binned, strategies, budgets, &names, &pool_counts)
}

fn balance_markdown(
    head: &str,
    noun: &str,
    runs: &[RunResult],
    strategies: &[String],
    budgets: &[usize],
    classes: &[String],
    pool_counts: &[usize],
) -> String {
    let pool: usize = pool_counts.iter().sum::<usize>().max(1);
    let shares: Vec<String> = classes
        .iter()
        .zip(pool_counts)
        .map(|(c, &k)| format!("{c}: {:.0} %", 100.0 * k as f64 / pool as f64))
        .collect();
    let mut s = format!(
        "\n{head} ({}), then the least-picked {noun}'s share of the picks. The training pool: {}.\n\n\
         | strategy | {} |\n|---|{}\n",
        classes.join(" / "),
        shares.join(", "),
        budgets.iter().map(|b| format!("budget {b}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(budgets.len())
    );
    for st in strategies {
        s.push_str(&format!("| {st} |"));
        for &b in budgets {
            let mine: Vec<&RunResult> = runs
                .iter()
                .filter(|r| &r.strategy == st && r.budget == b && r.picked_per_class.len() == classes.len())
                .collect();
            if mine.is_empty() {
                s.push_str(" – |");
                continue;
            }
            let mean: Vec<f64> = (0..classes.len())
                .map(|c| mine.iter().map(|r| r.picked_per_class[c] as f64).sum::<f64>() / mine.len() as f64)
                .collect();
            let total: f64 = mean.iter().sum::<f64>().max(1.0);
            let least = mean.iter().copied().fold(f64::INFINITY, f64::min);
            let counts: Vec<String> = mean.iter().map(|m| format!("{m:.1}")).collect();
            s.push_str(&format!(" {} (min {:.0} %) |", counts.join(" / "), 100.0 * least / total));
        }
        s.push('\n');
    }
    s
}
