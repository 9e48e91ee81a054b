//! What the measured evidence says about a strategy: `medpick select` prints one line per strategy, taken from
//! `docs/results/evidence/summary.json` (compiled in; written by `scripts/evidence_summary.py` from the
//! benchmark runs' `paired.json`), so the binary never claims more than docs/results/evidence.md.

use serde::Deserialize;

const SUMMARY: &str = include_str!("../../../docs/results/evidence/summary.json");

/// The task a pool is for, as far as the samples tell (labels: classification; masks: segmentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Classification,
    Segmentation,
}

impl TaskKind {
    fn key(self) -> &'static str {
        match self {
            TaskKind::Classification => "classification",
            TaskKind::Segmentation => "segmentation",
        }
    }
}

#[derive(Deserialize)]
struct Summary {
    kinds: std::collections::BTreeMap<String, Kind>,
    /// The default when the pool's kind is unknown: never below Random in any measured kind.
    default: String,
}

#[derive(Deserialize)]
struct Kind {
    /// The benchmarks behind the counts, e.g. "BreastMNIST and AdrenalMNIST3D (LiteMedSAM features)".
    datasets: String,
    strategies: std::collections::BTreeMap<String, Counts>,
    /// The strategy `--strategy auto` runs for this kind (most budgets above Random, none below).
    default: String,
    /// The label-free check's strategy × budget cells by verdict, [above, level, below] Random: those whose
    /// picks it called skewed, and the others.
    #[serde(default)]
    labelfree: Option<LabelFree>,
}

#[derive(Deserialize)]
struct LabelFree {
    skewed: [u32; 3],
    unskewed: [u32; 3],
}

/// Budgets (dataset × budget cells) where the strategy's paired difference with Random had its 95 % bootstrap
/// interval above zero, around it, or below it.
#[derive(Deserialize)]
struct Counts {
    above: u32,
    indistinguishable: u32,
    below: u32,
}

/// Segmentation when any sample has a mask, classification when any has a label, else unknown.
pub fn task_kind(samples: &[crate::data::manifest::Sample]) -> Option<TaskKind> {
    if samples.iter().any(|s| !s.masks.is_empty()) {
        Some(TaskKind::Segmentation)
    } else if samples.iter().any(|s| s.label.is_some()) {
        Some(TaskKind::Classification)
    } else {
        None
    }
}

/// `--strategy auto` → the evidence's default for the pool's kind (`typiclust` if the summary cannot be read);
/// any other name is returned as given. `medpick select` prints the choice and its reason on stderr.
pub fn resolve(strategy: &str, kind: Option<TaskKind>) -> String {
    if strategy != "auto" {
        return strategy.to_string();
    }
    let (name, why) = auto(kind);
    eprintln!("strategy auto: {name} ({why}; docs/results/evidence.md)");
    name
}

/// What `--strategy auto` runs on a pool of `kind` (None: unknown, as for a folder of images without labels or
/// masks — the browser's case), and why, in words.
pub fn auto(kind: Option<TaskKind>) -> (String, String) {
    let Ok(summary) = serde_json::from_str::<Summary>(SUMMARY) else {
        return ("typiclust".into(), "the evidence summary could not be read".into());
    };
    match kind.and_then(|k| summary.kinds.get(k.key()).map(|kd| (k, kd))) {
        Some((k, kd)) => (kd.default.clone(), format!("the evidence's default for {} pools", k.key())),
        None => (summary.default.clone(), "never below Random in any measured benchmark".to_string()),
    }
}

/// The one-line pointer for `strategy` on a pool of `kind` (None: unknown, every measured kind is given).
pub fn pointer(strategy: &str, kind: Option<TaskKind>) -> Vec<String> {
    let Ok(summary) = serde_json::from_str::<Summary>(SUMMARY) else {
        return vec!["evidence: see docs/results/evidence.md".into()];
    };
    let kinds: Vec<&str> = match kind {
        Some(k) => vec![k.key()],
        None => summary.kinds.keys().map(String::as_str).collect(),
    };
    kinds
        .into_iter()
        .map(|k| match summary.kinds.get(k).and_then(|kd| kd.strategies.get(strategy).map(|c| (kd, c))) {
            Some((kd, c)) => {
                let n = c.above + c.indistinguishable + c.below;
                format!(
                    "evidence ({k}, {}): {strategy} beat Random in {} of {n} budgets, was level in {}, below in {} \
                     (95 % interval over seeds); see docs/results/evidence.md",
                    kd.datasets, c.above, c.indistinguishable, c.below
                )
            }
            None => format!("evidence ({k}): {strategy} not measured against Random yet; see docs/results/evidence.md"),
        })
        .collect()
}

/// What the measured benchmarks of `kind` say about picks the label-free check calls `skewed` (or not): how
/// many such strategy × budget cells were above, level with and below Random. None where nothing was measured.
pub fn check_pointer(kind: Option<TaskKind>, skewed: bool) -> Option<String> {
    let summary = serde_json::from_str::<Summary>(SUMMARY).ok()?;
    let kinds: Vec<&str> = match kind {
        Some(k) => vec![k.key()],
        None => summary.kinds.keys().map(String::as_str).collect(),
    };
    let parts: Vec<String> = kinds
        .into_iter()
        .filter_map(|k| {
            let kd = summary.kinds.get(k)?;
            let lf = kd.labelfree.as_ref()?;
            let c = if skewed { lf.skewed } else { lf.unskewed };
            Some(format!(
                "on {k} benchmarks ({}) picks the check called {} were above Random in {} of {} strategy × budget \
                 cells, level in {}, below in {}",
                kd.datasets.split(", LiteMedSAM").next().unwrap_or(&kd.datasets),
                if skewed { "skewed" } else { "not skewed" },
                c[0],
                c.iter().sum::<u32>(),
                c[1],
                c[2]
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| format!("{}; see docs/results/evidence.md", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_summary_parses_and_names_its_counts() {
        let s: super::Summary = serde_json::from_str(super::SUMMARY).expect("summary.json parses");
        assert!(!s.kinds.is_empty());
        assert!(s.kinds.values().all(|k| k.strategies.contains_key(&s.default)), "{}", s.default);
        for (k, kind) in &s.kinds {
            assert!(!kind.strategies.is_empty() && kind.strategies.contains_key(&kind.default), "{k}");
            assert_eq!(super::resolve("auto", None), s.default);
            assert_eq!(super::resolve("fps", None), "fps");
            let line = &super::pointer(kind.strategies.keys().next().unwrap(), None)[0];
            assert!(line.contains("docs/results/evidence.md"), "{line}");
        }
        // Every kind measured with the label-free check names its counts, for skewed picks and for the others.
        for skewed in [true, false] {
            let line = super::check_pointer(None, skewed).expect("label-free counts in summary.json");
            assert!(line.contains("strategy × budget cells") && line.contains("evidence.md"), "{line}");
        }
    }
}
