//! MedCAL-Bench's evaluation protocol for cold-start selection (classification): for each strategy and budget,
//! select on the training pool, train a head on exactly the picked samples (the dataset's labels stand in for
//! the annotator), evaluate on the held-out test split. Random runs over several seeds (mean ± sd); the other
//! strategies run once (seed 0), as they are deterministic given their seed.
//!
//! The runner is resumable: results are keyed by (strategy, budget, seed) in `results.json` ([`results`]), written
//! after every run. [`prepare`] splits and embeds a dataset, [`run`] drives the runs and writes the report;
//! [`seg_eval`] is the segmentation protocol, [`warm`] the warm loop, [`report`] the Markdown table.

pub mod labelfree;
pub mod paired;
#[cfg(feature = "plots")]
pub mod plots;
pub mod prepare;
pub mod report;
pub mod results;
pub mod run;
pub mod seg_data;
pub mod seg_eval;
pub mod warm;

pub use report::*;
pub use seg_eval::*;
pub use warm::*;

use serde::{Deserialize, Serialize};

use crate::gpu::GpuContext;
use crate::select::{self, Matrix, SelectInput};
use crate::train::cls::{self, ClsConfig, ClsHead};
use crate::{metrics, Error, Result};

/// Features and labels of one split.
pub struct Split<'a> {
    pub ids: &'a [String],
    pub x: &'a [f32],
    pub dim: usize,
    pub labels: &'a [usize],
}

/// One (strategy, budget, seed) run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub strategy: String,
    pub budget: usize,
    pub seed: u64,
    pub picks: Vec<String>,
    /// Picked samples per class.
    pub picked_per_class: Vec<usize>,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub auc: Option<f64>,
    pub select_seconds: f64,
    pub train_seconds: f64,
    pub train_steps: usize,
    /// Segmentation runs: mean per-image Dice and IoU on the test split, and the mean HD95 / ASD (pixels) over
    /// the images where both masks are non-empty (MedCAL skips the others); per volume in 3-D (distances in mm)
    /// when the test images are slices of complete volumes ([`eval_seg`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dice: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hd95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asd: Option<f64>,
    /// Segmentation with pseudo-labels: what each refresh kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pseudo: Vec<crate::train::pseudo::PseudoRound>,
    /// Model selection on a validation split: the epoch kept and its validation accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Segmentation: the kept checkpoint's validation Dice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_dice: Option<f64>,
}

impl RunResult {
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "accuracy" => Some(self.accuracy),
            "balanced_accuracy" => Some(self.balanced_accuracy),
            "auc" => self.auc,
            "dice" => self.dice,
            "iou" => self.iou,
            "hd95" => self.hd95,
            "asd" => self.asd,
            _ => None,
        }
    }
}

/// Metric names a classification run reports.
pub const METRICS: &[&str] = &["accuracy", "balanced_accuracy", "auc"];

/// Metric names a segmentation run reports.
pub const SEG_METRICS: &[&str] = &["dice", "iou", "hd95", "asd"];

/// Distances: smaller is better.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "hd95" | "asd")
}

/// The seeds a strategy runs with: 0 .. seeds for every strategy, Random included, so each strategy's runs pair
/// with Random's seed by seed ([`paired`]); the seed drives the strategy's own randomness (k-means
/// initialisation, first centre) and the head's initialisation.
pub fn seeds_for(_strategy: &str, seeds: usize) -> Vec<u64> {
    (0..seeds.max(1) as u64).collect()
}

/// A cold-start selection of `budget` rows of the pool features `x` [n, dim], and its seconds.
async fn cold_start(
    ctx: Option<&GpuContext>,
    x: &[f32],
    dim: usize,
    strategy: &str,
    budget: usize,
    seed: u64,
) -> Result<(select::Selection, f64)> {
    let n = x.len().checked_div(dim).unwrap_or(0);
    if budget > n {
        return Err(Error::Invalid(format!("budget {budget} exceeds the training pool of {n}")));
    }
    let t0 = crate::Instant::now();
    let m = Matrix::new(x, n, dim)?;
    let sel = select::select(
        strategy,
        &SelectInput { x: m, budget, seed, labeled: &[], scans: Some(crate::exec::Backend::on(ctx)), weights: None },
    )
    .await?;
    Ok((sel, t0.elapsed().as_secs_f64()))
}

/// Select, train and evaluate once.
#[allow(clippy::too_many_arguments)] // the two splits, the run's key and the training settings
pub async fn run_one(
    ctx: Option<&GpuContext>,
    train: &Split<'_>,
    test: &Split<'_>,
    classes: usize,
    strategy: &str,
    budget: usize,
    seed: u64,
    head: &ClsConfig,
    val: Option<cls::Validation<'_>>,
) -> Result<RunResult> {
    let (sel, select_seconds) = cold_start(ctx, train.x, train.dim, strategy, budget, seed).await?;
    let mut xs = Vec::with_capacity(budget * train.dim);
    let mut ys = Vec::with_capacity(budget);
    let mut picked_per_class = vec![0usize; classes];
    for &p in &sel.picks {
        xs.extend_from_slice(&train.x[p * train.dim..(p + 1) * train.dim]);
        ys.push(train.labels[p]);
        picked_per_class[train.labels[p]] += 1;
    }
    let cfg = ClsConfig { seed, ..head.clone() };
    let (model, log) = cls::train(ctx, &xs, &ys, classes, &cfg, val).await?;
    let probs = model.predict(ctx, test.x).await?;
    let pred = ClsHead::argmax(&probs, classes);
    Ok(RunResult {
        strategy: strategy.to_string(),
        budget,
        seed,
        picks: sel.picks.iter().map(|&p| train.ids[p].clone()).collect(),
        picked_per_class,
        accuracy: metrics::accuracy(&pred, test.labels),
        balanced_accuracy: metrics::balanced_accuracy(&pred, test.labels, classes),
        auc: metrics::macro_auc(&probs, test.labels, classes),
        select_seconds,
        train_seconds: log.seconds,
        train_steps: log.steps,
        dice: None,
        iou: None,
        hd95: None,
        asd: None,
        pseudo: Vec::new(),
        best_epoch: log.best_epoch,
        val_accuracy: log.val_accuracy,
        val_dice: None,
    })
}
