//! `results.json`: the settings a run was started with (a resume must match them) and every run so far, written
//! atomically after each run; which runs are still to do; the strategy list; the seeded subsets of a split.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::RunResult;
use crate::{Context, Error, Result};

/// The strategy whose picks the PCA map shows (TypiClust if it ran, else the first non-random one) and its
/// picks at `budget`.
pub fn shown_picks<'s>(strategies: &'s [String], runs: &[RunResult], budget: usize) -> (&'s str, Vec<String>) {
    let shown = strategies
        .iter()
        .find(|s| *s == "typiclust")
        .or_else(|| strategies.iter().find(|s| *s != "random"))
        .unwrap_or(&strategies[0]);
    let picks =
        runs.iter().find(|r| &r.strategy == shown && r.budget == budget).map(|r| r.picks.clone()).unwrap_or_default();
    (shown, picks)
}

/// What results.json holds: the settings (a resume must match them) and the runs so far.
#[derive(Serialize, Deserialize)]
pub struct ResultsFile {
    pub settings: serde_json::Value,
    pub classes: Vec<String>,
    pub runs: Vec<RunResult>,
    /// seg: the test metrics of an untrained head (seed 0), the floor every run should clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrained: Option<serde_json::Value>,
}

pub fn subset(idx: Vec<usize>, max: usize, seed: u64) -> Vec<usize> {
    if max == 0 || idx.len() <= max {
        return idx;
    }
    let mut v = idx;
    crate::rng::Rng::new(seed).shuffle(&mut v);
    let mut keep = v[..max].to_vec();
    keep.sort_unstable();
    keep
}

/// `--strategies` (all, or a comma list; random always included) and a check of `--budgets`.
pub fn parse_strategies(list: &str, budgets: &[usize]) -> Result<Vec<String>> {
    if budgets.is_empty() || budgets.contains(&0) {
        let given: Vec<String> = budgets.iter().map(|b| b.to_string()).collect();
        return Err(Error::setting("budgets", given.join(","), "give positive budgets, e.g. 27,54,81"));
    }
    let mut strategies: Vec<String> = if list == "all" {
        crate::select::COLD_START.iter().map(|s| s.to_string()).collect()
    } else {
        list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    for s in &strategies {
        if !crate::select::COLD_START.contains(&s.as_str()) {
            let known = crate::select::COLD_START.join(", ");
            return Err(Error::setting("strategies", list, format!("unknown strategy {s} (known: {known})")));
        }
    }
    if !strategies.iter().any(|s| s == "random") {
        strategies.insert(0, "random".into());
    }
    Ok(strategies)
}

/// Whether two runs' settings are the same, the dataset compared as the folder or file it names (a relative and
/// an absolute spelling of one path resume each other).
fn same_settings(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let canon = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(d) = v.get("dataset").and_then(|d| d.as_str()).and_then(|d| std::fs::canonicalize(d).ok()) {
            v["dataset"] = d.display().to_string().into();
        }
        v
    };
    a == b || canon(a) == canon(b)
}

/// Read results.json from `out` when its settings match, or start a new one.
pub fn open_results(out: &Path, settings: &serde_json::Value, classes: &[String]) -> Result<ResultsFile> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let results_path = out.join("results.json");
    if results_path.exists() {
        let text = std::fs::read_to_string(&results_path)?;
        let f: ResultsFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a medpick results file", results_path.display()))?;
        if !same_settings(&f.settings, settings) {
            let why = format!("{} holds runs with other settings ({})", results_path.display(), f.settings);
            return Err(Error::setting("out", out.display(), format!("{why}; choose another output folder")));
        }
        note!("resuming: {} runs already in {}", f.runs.len(), results_path.display());
        Ok(f)
    } else {
        Ok(ResultsFile { settings: settings.clone(), classes: classes.to_vec(), runs: Vec::new(), untrained: None })
    }
}

/// Write results.json atomically (a temporary file, then a rename).
pub fn save_results(out: &Path, file: &ResultsFile) -> Result<()> {
    let path = out.join("results.json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(file)?)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// The (strategy, budget, seed) runs not yet in `done`.
pub fn todo_runs(
    strategies: &[String],
    budgets: &[usize],
    seeds: usize,
    done: &[RunResult],
) -> Vec<(String, usize, u64)> {
    strategies
        .iter()
        .flat_map(|s| {
            budgets.iter().flat_map(move |&b| super::seeds_for(s, seeds).into_iter().map(move |sd| (s.clone(), b, sd)))
        })
        .filter(|(s, b, sd)| !done.iter().any(|r| &r.strategy == s && r.budget == *b && r.seed == *sd))
        .collect()
}
