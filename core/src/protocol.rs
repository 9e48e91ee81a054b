//! MedCAL-Bench's evaluation protocol for cold-start selection (classification): for each strategy and budget,
//! select on the training pool, train a head on exactly the picked samples (the dataset's labels stand in for
//! the annotator), evaluate on the held-out test split. Random runs over several seeds (mean ± sd); the other
//! strategies run once (seed 0), as they are deterministic given their seed.
//!
//! The runner is resumable: results are keyed by (strategy, budget, seed), and `medpick bench protocol`
//! writes them after every run.

use serde::{Deserialize, Serialize};

use crate::gpu::GpuContext;
use crate::select::{self, Matrix, SelectInput};
use crate::train::cls::{self, ClsConfig, ClsHead};
use crate::train::seg::{self, GridShape, SegConfig, SegHead};
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

/// The seeds a strategy runs with: every seed for `random`, seed 0 for the others.
pub fn seeds_for(strategy: &str, seeds: usize) -> Vec<u64> {
    if strategy == "random" {
        (0..seeds.max(1) as u64).collect()
    } else {
        vec![0]
    }
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
    let n = if dim == 0 { 0 } else { x.len() / dim };
    if budget > n {
        return Err(Error::Invalid(format!("budget {budget} exceeds the training pool of {n}")));
    }
    let t0 = crate::Instant::now();
    let m = Matrix::new(x, n, dim)?;
    let sel = select::select(strategy, &SelectInput { x: m, budget, seed, labeled: &[], gpu: ctx }).await?;
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

/// The training pool of a segmentation benchmark: selection features, grids and masks at the head's output size.
pub struct SegPool<'a> {
    pub ids: &'a [String],
    /// Pooled features for selection [n, dim].
    pub x: &'a [f32],
    pub dim: usize,
    /// Feature grids, channels-last.
    pub grids: &'a [Vec<f32>],
    /// Masks resized (nearest) to the head's output (h·r)×(w·r).
    pub masks: &'a [Vec<u8>],
    /// The generalist for pseudo-labels, its embeddings indexed like the pool (needed when `cfg.pseudo` is on).
    pub sam: Option<&'a crate::train::pseudo::SamPseudo<'a>>,
    /// HERD's 20-bin intensity histogram of every pool image ([`crate::uncertainty::intensity_histogram`];
    /// needed by the warm loop's `herd` score).
    pub hist: Option<&'a [[f32; 20]]>,
    /// A validation split: heads trained on the pool keep their checkpoint of best validation Dice.
    pub val: Option<seg::SegValidation<'a>>,
    /// Intensity variants of every pool image's grid (empty: none; see [`SegConfig::intensity_variants`]).
    pub variants: &'a [Vec<Vec<f32>>],
}

/// The test split of a segmentation benchmark: grids and the masks at their original size (height, width, mask).
pub struct SegTest<'a> {
    pub grids: &'a [Vec<f32>],
    pub masks: &'a [(usize, usize, Vec<u8>)],
    /// Where each test image sits in its volume, for images that are slices (empty, or `None` entries, for 2-D
    /// images). When any volume is complete enough to score, `eval_seg` reports 3-D per-volume means.
    pub places: &'a [Option<SlicePlace>],
}

/// Where a 2-D sample sits in a volume: the volume (its file and view, e.g. `ct/a.nii.gz#axial`), the slice
/// index, and the voxel spacing of the stacked volume [slice, row, column] in mm (1 where unknown).
#[derive(Clone, Debug, PartialEq)]
pub struct SlicePlace {
    pub volume: String,
    pub index: usize,
    pub spacing: [f64; 3],
}

impl SlicePlace {
    /// The place of a NIfTI slice, or of a slice of an `.npz` volume (unit spacing); `None` for 2-D images,
    /// DICOM files and multi-frame DICOM (frames are not evaluated as volumes).
    pub fn of(s: &crate::manifest::Sample) -> Option<SlicePlace> {
        use crate::manifest::SampleKind;
        let (view, index) = (s.view?, s.slice?);
        let volume = match s.kind {
            SampleKind::Nifti => format!("{}#{}", s.source, view.name()),
            SampleKind::Npz => {
                format!("{}#{}:{}#{}", s.source, s.npz_split.as_deref()?, s.npz_index?, view.name())
            }
            _ => return None,
        };
        // Sample spacing is [column, row, slice] (the view's in-plane spacing, then its slice thickness).
        let sp = |k: usize| s.spacing.as_ref().and_then(|v| v.get(k)).map(|&v| v as f64).filter(|v| *v > 0.0);
        let spacing = [sp(2).unwrap_or(1.0), sp(1).unwrap_or(1.0), sp(0).unwrap_or(1.0)];
        Some(SlicePlace { volume, index, spacing })
    }
}

/// The 3-D scores of one volume, from its predicted slices stacked in slice order.
#[derive(Clone, Debug, Serialize)]
pub struct VolumeScores {
    pub volume: String,
    /// First slice index and number of slices scored.
    pub first: usize,
    pub slices: usize,
    pub scores: metrics::SegScores,
}

/// Per-image and per-volume scores of a segmentation head on a test set.
#[derive(Clone, Debug, Default)]
pub struct SegScoresEach {
    /// 2-D scores, one per test image (MedCAL's 2-D protocol).
    pub images: Vec<metrics::SegScores>,
    /// 3-D scores, one per volume whose slices among the test images form one run of consecutive slices.
    pub volumes: Vec<VolumeScores>,
    /// (volume, reason) for volumes that could not be scored in 3-D.
    pub volumes_skipped: Vec<(String, String)>,
}

/// Mean test metrics of a segmentation head.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SegEval {
    pub dice: f64,
    pub iou: f64,
    pub hd95: Option<f64>,
    pub asd: Option<f64>,
}

/// Evaluate as MedCAL does: predict at the head's resolution, argmax, resize back to the mask's size (nearest).
/// 2-D datasets: per-image Dice / IoU / HD95 / ASD (pixels), mean over images (distances over the images where
/// defined). Volumes (test images that are slices, see [`SegTest::places`]), when every one of them can be scored
/// in 3-D: the predicted slices of each volume stacked, MedCAL's component filter (6-connected components of at least a third of the largest kept), 3-D Dice / IoU /
/// HD95 / ASD (mm), mean over volumes; otherwise the 2-D means.
pub async fn eval_seg(ctx: Option<&GpuContext>, head: &SegHead, test: &SegTest<'_>) -> Result<SegEval> {
    let each = seg_scores_each(ctx, head, test).await?;
    Ok(match each.volumes.is_empty() || !each.volumes_skipped.is_empty() {
        true => SegEval::mean(&each.images),
        false => SegEval::mean(&each.volumes.iter().map(|v| v.scores).collect::<Vec<_>>()),
    })
}

/// The per-image (and per-volume) scores behind `eval_seg`.
pub async fn seg_scores_each(ctx: Option<&GpuContext>, head: &SegHead, test: &SegTest<'_>) -> Result<SegScoresEach> {
    let (oh, ow) = head.out_hw();
    let mut out = SegScoresEach { images: Vec::with_capacity(test.grids.len()), ..Default::default() };
    let mut by_volume: std::collections::BTreeMap<&str, Vec<PredictedSlice>> = Default::default();
    head.predict_each(ctx, test.grids, &mut |i, p| {
        let (h, w, m) = &test.masks[i];
        let pred: Vec<u8> = p.iter().map(|&v| (v > 0.5) as u8).collect();
        let pred = seg::resize_nearest_u8(&pred, oh, ow, *h, *w);
        out.images.push(metrics::seg_scores(&pred, m, [1, *h, *w], [1.0, 1.0, 1.0]));
        if let Some(Some(place)) = test.places.get(i) {
            by_volume.entry(place.volume.as_str()).or_default().push((place.index, i, pred));
        }
        Ok(())
    })
    .await?;
    for (volume, mut slices) in by_volume {
        slices.sort_by_key(|s| s.0);
        match stack_volume(test, &slices) {
            Err(why) => out.volumes_skipped.push((volume.to_string(), why)),
            Ok((dims, pred, gt)) => {
                let spacing = test.places[slices[0].1].as_ref().map(|p| p.spacing).unwrap_or([1.0; 3]);
                let pred = metrics::large_components(&pred, dims);
                out.volumes.push(VolumeScores {
                    volume: volume.to_string(),
                    first: slices[0].0,
                    slices: slices.len(),
                    scores: metrics::seg_scores(&pred, &gt, dims, spacing),
                });
            }
        }
    }
    Ok(out)
}

/// Why sorted slice indices are not one run of consecutive slices (a gap or a repeat), if they are not.
fn slice_run_gap(sorted: &[usize]) -> Option<String> {
    let (first, last) = (*sorted.first()?, *sorted.last()?);
    for (k, &index) in sorted.iter().enumerate() {
        if index < first + k {
            return Some(format!("slice {index} appears twice among the test images"));
        }
        if index != first + k {
            return Some(format!(
                "slices {first}..{} are not all among the test images (slice {} is missing), so it is not scored in \
                 3-D",
                last + 1,
                first + k
            ));
        }
    }
    None
}

/// The number of volumes the slices in `places` belong to, and (volume, reason) for those whose slices are not
/// one run of consecutive slices (such volumes are not scored in 3-D).
pub fn incomplete_volumes(places: &[Option<SlicePlace>]) -> (usize, Vec<(String, String)>) {
    let mut by_volume: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for p in places.iter().flatten() {
        by_volume.entry(p.volume.as_str()).or_default().push(p.index);
    }
    let n = by_volume.len();
    let bad = by_volume
        .into_iter()
        .filter_map(|(v, mut idx)| {
            idx.sort_unstable();
            slice_run_gap(&idx).map(|why| (v.to_string(), why))
        })
        .collect();
    (n, bad)
}

/// A slice's index in its volume, its test image, and the prediction at the mask's size.
type PredictedSlice = (usize, usize, Vec<u8>);

/// Stack a volume's predicted slices (sorted by index) and their masks into [slices, h, w] volumes; refuses gaps,
/// repeated slices and slices of different sizes (the reason is returned).
#[allow(clippy::type_complexity)] // (dims, prediction, ground truth)
fn stack_volume(
    test: &SegTest<'_>,
    slices: &[PredictedSlice],
) -> std::result::Result<([usize; 3], Vec<u8>, Vec<u8>), String> {
    let (h, w, _) = &test.masks[slices[0].1];
    let (mut pred, mut gt) = (Vec::new(), Vec::new());
    let indices: Vec<usize> = slices.iter().map(|s| s.0).collect();
    if let Some(why) = slice_run_gap(&indices) {
        return Err(why);
    }
    for (index, i, p) in slices {
        let (mh, mw, m) = &test.masks[*i];
        if (mh, mw) != (h, w) {
            return Err(format!("slice {index} is {mw}x{mh}, slice {} is {w}x{h}", slices[0].0));
        }
        pred.extend_from_slice(p);
        gt.extend_from_slice(m);
    }
    Ok(([slices.len(), *h, *w], pred, gt))
}

impl SegEval {
    /// Means over images (HD95 / ASD over the images where they are defined).
    pub fn mean(scores: &[metrics::SegScores]) -> SegEval {
        let n = scores.len().max(1) as f64;
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        SegEval {
            dice: scores.iter().map(|s| s.dice).sum::<f64>() / n,
            iou: scores.iter().map(|s| s.iou).sum::<f64>() / n,
            hd95: mean(scores.iter().filter_map(|s| s.hd95).collect()),
            asd: mean(scores.iter().filter_map(|s| s.asd).collect()),
        }
    }
}

/// Train a segmentation head on the pool's `labeled` images; the mean teacher and the pseudo-labels (when on)
/// learn from the rest of the pool, unlabelled.
async fn train_on_pool(
    ctx: Option<&GpuContext>,
    pool: &SegPool<'_>,
    grid: GridShape,
    labeled: &[usize],
    seed: u64,
    cfg: &SegConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SegHead, cls::TrainLog)> {
    let grids: Vec<&[f32]> = labeled.iter().map(|&p| pool.grids[p].as_slice()).collect();
    let masks: Vec<&[u8]> = labeled.iter().map(|&p| pool.masks[p].as_slice()).collect();
    let cfg = SegConfig { seed, ..cfg.clone() };
    let rest: Vec<usize> = match cfg.mean_teacher.is_some() || cfg.pseudo.is_some() {
        true => (0..pool.ids.len()).filter(|i| !labeled.contains(i)).collect(),
        false => Vec::new(),
    };
    let unlabeled: Vec<&[f32]> = rest.iter().map(|&i| pool.grids[i].as_slice()).collect();
    let embedding = |k: usize| match (pool.sam, rest.get(k)) {
        (Some(s), Some(&i)) => (s.embedding)(i),
        _ => Err(crate::Error::Invalid(format!("pseudo-labels: no embedding for unlabelled image {k}"))),
    };
    let sam = pool.sam.map(|s| crate::train::pseudo::SamPseudo { decoder: s.decoder, embedding: &embedding });
    let variants: Vec<Vec<&[f32]>> = match pool.variants.is_empty() {
        true => Vec::new(),
        false => labeled.iter().map(|&p| pool.variants[p].iter().map(|g| g.as_slice()).collect()).collect(),
    };
    seg::train_with_val(ctx, grid, &grids, &variants, &masks, &unlabeled, sam.as_ref(), &cfg, pool.val, progress).await
}

/// Select on the pool, train a segmentation head on exactly the picked samples, evaluate on the test split.
#[allow(clippy::too_many_arguments)] // the two splits, the grid, the run's key, the settings and progress
pub async fn run_one_seg(
    ctx: Option<&GpuContext>,
    pool: &SegPool<'_>,
    test: &SegTest<'_>,
    grid: GridShape,
    strategy: &str,
    budget: usize,
    seed: u64,
    cfg: &SegConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunResult> {
    let (sel, select_seconds) = cold_start(ctx, pool.x, pool.dim, strategy, budget, seed).await?;
    let (head, log) = train_on_pool(ctx, pool, grid, &sel.picks, seed, cfg, progress).await?;
    let e = eval_seg(ctx, &head, test).await?;
    Ok(RunResult {
        strategy: strategy.to_string(),
        budget,
        seed,
        picks: sel.picks.iter().map(|&p| pool.ids[p].clone()).collect(),
        picked_per_class: Vec::new(),
        accuracy: 0.0,
        balanced_accuracy: 0.0,
        auc: None,
        select_seconds,
        train_seconds: log.seconds,
        train_steps: log.steps,
        dice: Some(e.dice),
        iou: Some(e.iou),
        hd95: e.hd95,
        asd: e.asd,
        pseudo: log.pseudo,
        best_epoch: log.best_epoch,
        val_accuracy: None,
        val_dice: log.val_dice,
    })
}

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

/// A Markdown table: one row per strategy, one column per budget, `metric` as mean ± sd (Random) or the value;
/// values above Random's mean are bold. Then the strategies that beat Random at every budget.
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
                    if better {
                        row.push_str(&format!(" **{:.3}** |", c.mean));
                    } else {
                        row.push_str(&format!(" {:.3} |", c.mean));
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

/// Ways to score the unlabelled pool between rounds of the warm loop.
pub const LOOP_SCORES: &[&str] = &["random", "entropy", "lc", "margin", "bald", "dropquery", "coreset"];

/// One round of the warm loop: the head trained on `labeled` samples and its test metrics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoundResult {
    pub score: String,
    pub round: usize,
    pub labeled: usize,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub auc: Option<f64>,
    /// Segmentation: mean per-image Dice / IoU and mean HD95 / ASD (pixels) on the test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dice: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hd95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asd: Option<f64>,
    /// The samples added after this round (empty after the last).
    pub next: Vec<String>,
}

/// Dropout passes for `bald` / `dropquery`.
const MC_PASSES: usize = 10;

/// The warm loop: cold-start pick with `start`, then for each round train the head on all labelled samples,
/// evaluate, score the unlabelled pool with `score` and add the `batch` best. `bald` uses 10 MC-dropout passes
/// (input dropout 0.5); `dropquery` uses 10 passes at dropout 0.75 and DropQuery's clustering of the
/// disagreeing samples; `coreset` is k-center greedy from the labelled set; `lc`/`entropy`/`margin` score the
/// head's probabilities (pixels = 1).
#[allow(clippy::too_many_arguments)] // the two splits, the loop's settings and the head's
pub async fn warm_loop(
    ctx: Option<&GpuContext>,
    train: &Split<'_>,
    test: &Split<'_>,
    classes: usize,
    start: &str,
    score: &str,
    rounds: usize,
    batch: usize,
    seed: u64,
    head: &ClsConfig,
) -> Result<Vec<RoundResult>> {
    use crate::uncertainty as u;
    if !LOOP_SCORES.contains(&score) {
        return Err(Error::Unknown { kind: "score", name: score.to_string(), known: LOOP_SCORES.join(", ") });
    }
    let n = train.labels.len();
    if batch == 0 || rounds == 0 || batch * rounds > n {
        return Err(Error::Invalid(format!(
            "{rounds} rounds of {batch} need ≤ {n} samples in the pool (and ≥ 1 each)"
        )));
    }
    let d = train.dim;
    let x = Matrix::new(train.x, n, d)?;
    let first = select::select(start, &SelectInput { x, budget: batch, seed, labeled: &[], gpu: ctx }).await?;
    let mut labeled: Vec<usize> = first.picks;
    let mut rng = crate::rng::Rng::new(seed ^ 0x5eed);
    let mut out = Vec::new();
    for round in 0..rounds {
        let xs: Vec<f32> = labeled.iter().flat_map(|&p| train.x[p * d..(p + 1) * d].iter().copied()).collect();
        let ys: Vec<usize> = labeled.iter().map(|&p| train.labels[p]).collect();
        let (model, _) = cls::train(ctx, &xs, &ys, classes, &ClsConfig { seed, ..head.clone() }, None).await?;
        let probs = model.predict(ctx, test.x).await?;
        let pred = ClsHead::argmax(&probs, classes);
        let mut r = RoundResult {
            score: score.to_string(),
            round,
            labeled: labeled.len(),
            accuracy: metrics::accuracy(&pred, test.labels),
            balanced_accuracy: metrics::balanced_accuracy(&pred, test.labels, classes),
            auc: metrics::macro_auc(&probs, test.labels, classes),
            dice: None,
            iou: None,
            hd95: None,
            asd: None,
            next: Vec::new(),
        };
        if round + 1 < rounds {
            let is_labeled: std::collections::HashSet<usize> = labeled.iter().copied().collect();
            let pool: Vec<usize> = (0..n).filter(|i| !is_labeled.contains(i)).collect();
            let px: Vec<f32> = pool.iter().flat_map(|&p| train.x[p * d..(p + 1) * d].iter().copied()).collect();
            let k = classes;
            let picks_in_pool: Vec<usize> = match score {
                "random" => {
                    let mut v: Vec<usize> = (0..pool.len()).collect();
                    rng.shuffle(&mut v);
                    v.truncate(batch);
                    v
                }
                "coreset" => {
                    let sel =
                        select::select("coreset", &SelectInput { x, budget: batch, seed, labeled: &labeled, gpu: ctx })
                            .await?;
                    let index: std::collections::HashMap<usize, usize> =
                        pool.iter().enumerate().map(|(i, &p)| (p, i)).collect();
                    sel.picks.iter().map(|p| index[p]).collect()
                }
                "entropy" | "lc" | "margin" => {
                    let pp = model.predict(ctx, &px).await?;
                    let s: Vec<f64> = pp
                        .chunks(k)
                        .map(|q| match score {
                            "entropy" => u::he(q, k, 1),
                            "lc" => u::lc(q, k, 1),
                            _ => u::margin(q, k, 1),
                        })
                        .collect();
                    u::top_by(&s, batch, score != "entropy")
                }
                "bald" => {
                    let mut passes: Vec<Vec<f32>> = Vec::with_capacity(MC_PASSES);
                    for _ in 0..MC_PASSES {
                        passes.push(model.predict_dropout(ctx, &px, 0.5, &mut rng).await?);
                    }
                    let s: Vec<f64> = (0..pool.len())
                        .map(|i| {
                            let per: Vec<Vec<f32>> = passes.iter().map(|p| p[i * k..(i + 1) * k].to_vec()).collect();
                            u::bald(&per, k, 1)
                        })
                        .collect::<Result<_>>()?;
                    u::top_by(&s, batch, false)
                }
                _ => {
                    // dropquery
                    let clean = ClsHead::argmax(&model.predict(ctx, &px).await?, k);
                    let mut passes = Vec::with_capacity(MC_PASSES);
                    for _ in 0..MC_PASSES {
                        passes.push(ClsHead::argmax(&model.predict_dropout(ctx, &px, 0.75, &mut rng).await?, k));
                    }
                    u::dropquery(&clean, &passes, Matrix::new(&px, pool.len(), d)?, batch, seed + round as u64)?
                }
            };
            let added: Vec<usize> = picks_in_pool.iter().map(|&i| pool[i]).collect();
            r.next = added.iter().map(|&p| train.ids[p].clone()).collect();
            labeled.extend(added);
        }
        out.push(r);
    }
    Ok(out)
}

/// Scores of the segmentation warm loop.
pub const SEG_LOOP_SCORES: &[&str] = &["random", "lc", "entropy", "her", "herd", "margin", "asd", "coreset"];

/// The segmentation warm loop: cold-start pick of `batch` images with `start`, then for each round train the
/// head on every labelled image (with the mean teacher / pseudo-labels of `cfg` on the rest), evaluate on the
/// test split, score the unlabelled pool from the head's probability maps and add the `batch` best:
/// `lc` (GM-ABS bottom-quartile least confidence, lowest first), `entropy` (HE, mean normalised entropy),
/// `her` (high-entropy ratio, τ ramping 0.35 → 0.60 over the rounds as GM-ABS's over iterations), `margin`
/// (lowest first), `herd` (GM-ABS's default: the top 10 % by HER, clustered on the images' intensity
/// histograms, one per cluster of more than one member; [`crate::uncertainty::herd_from_histograms`]), `asd`
/// (ASSFT-like: entropy over the predicted foreground), `coreset` (k-center greedy on the pooled features from
/// the labelled set), `random`.
#[allow(clippy::too_many_arguments)] // the two splits, the loop's settings and the head's, progress
pub async fn warm_loop_seg(
    ctx: Option<&GpuContext>,
    pool: &SegPool<'_>,
    test: &SegTest<'_>,
    grid: GridShape,
    start: &str,
    score: &str,
    rounds: usize,
    batch: usize,
    seed: u64,
    cfg: &SegConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<RoundResult>> {
    use crate::uncertainty as u;
    if !SEG_LOOP_SCORES.contains(&score) {
        return Err(Error::Unknown { kind: "score", name: score.to_string(), known: SEG_LOOP_SCORES.join(", ") });
    }
    let n = pool.ids.len();
    if batch == 0 || rounds == 0 || batch * rounds > n {
        return Err(Error::Invalid(format!("{rounds} rounds of {batch} need ≤ {n} images in the pool (and ≥ 1 each)")));
    }
    let hist = match (score, pool.hist) {
        ("herd", None) => return Err(Error::Invalid("herd needs the pool images' intensity histograms".into())),
        ("herd", Some(h)) if h.len() != n => {
            return Err(Error::Invalid(format!("herd: {} histograms for {n} pool images", h.len())))
        }
        (_, h) => h,
    };
    let (first, _) = cold_start(ctx, pool.x, pool.dim, start, batch, seed).await?;
    let mut labeled = first.picks;
    let mut rng = crate::rng::Rng::new(seed ^ 0x5eed);
    let mut out = Vec::new();
    for round in 0..rounds {
        let (head, _) = train_on_pool(ctx, pool, grid, &labeled, seed, cfg, progress).await?;
        let e = eval_seg(ctx, &head, test).await?;
        let mut r = RoundResult {
            score: score.to_string(),
            round,
            labeled: labeled.len(),
            accuracy: 0.0,
            balanced_accuracy: 0.0,
            auc: None,
            dice: Some(e.dice),
            iou: Some(e.iou),
            hd95: e.hd95,
            asd: e.asd,
            next: Vec::new(),
        };
        if round + 1 < rounds {
            let rest: Vec<usize> = (0..n).filter(|i| !labeled.contains(i)).collect();
            let picks_in_rest: Vec<usize> = match score {
                "random" => {
                    let mut v: Vec<usize> = (0..rest.len()).collect();
                    rng.shuffle(&mut v);
                    v.truncate(batch);
                    v
                }
                "coreset" => {
                    let x = Matrix::new(pool.x, n, pool.dim)?;
                    let sel =
                        select::select("coreset", &SelectInput { x, budget: batch, seed, labeled: &labeled, gpu: ctx })
                            .await?;
                    sel.picks.iter().filter_map(|p| rest.iter().position(|q| q == p)).collect()
                }
                _ => {
                    let tau = u::her_threshold(round as f64, (rounds - 1) as f64, 0.35, 0.60);
                    let grids: Vec<&[f32]> = rest.iter().map(|&i| pool.grids[i].as_slice()).collect();
                    let mut s = Vec::with_capacity(rest.len());
                    head.predict_each(ctx, &grids, &mut |_, p| {
                        // Class-major [2, P] maps: background, foreground.
                        let px = p.len();
                        let probs: Vec<f32> = p.iter().map(|v| 1.0 - v).chain(p.iter().copied()).collect();
                        s.push(match score {
                            "lc" => u::lc(&probs, 2, px),
                            "entropy" => u::he(&probs, 2, px),
                            "her" | "herd" => u::her(&probs, 2, px, tau),
                            "margin" => u::margin(&probs, 2, px),
                            _ => u::asd(&probs, 2, px),
                        });
                        Ok(())
                    })
                    .await?;
                    match hist {
                        Some(h) if score == "herd" => {
                            let hs: Vec<[f32; 20]> = rest.iter().map(|&i| h[i]).collect();
                            u::herd_from_histograms(&s, &hs, batch, seed ^ round as u64)?
                        }
                        _ => u::top_by(&s, batch, matches!(score, "lc" | "margin")),
                    }
                }
            };
            let added: Vec<usize> = picks_in_rest.iter().map(|&i| rest[i]).collect();
            r.next = added.iter().map(|&p| pool.ids[p].clone()).collect();
            labeled.extend(added);
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Sample, SampleKind};

    #[test]
    fn slice_places_of_nifti_and_npz_slices() {
        let mut s = Sample {
            id: "v.nii.gz#coronal:4".into(),
            kind: SampleKind::Nifti,
            source: "v.nii.gz".into(),
            view: Some(crate::data::io::nifti::View::Coronal),
            slice: Some(4),
            frame: None,
            npz_split: None,
            npz_index: None,
            width: 10,
            height: 8,
            channels: 1,
            spacing: Some(vec![0.5, 0.75, 3.0]),
            group: "v.nii.gz".into(),
            masks: vec![],
            mask_kind: None,
            instances: None,
            label: None,
            given_split: None,
        };
        let p = SlicePlace::of(&s).unwrap();
        assert_eq!((p.volume.as_str(), p.index, p.spacing), ("v.nii.gz#coronal", 4, [3.0, 0.75, 0.5]));
        s.kind = SampleKind::Npz;
        s.npz_split = Some("test".into());
        s.npz_index = Some(12);
        s.spacing = None;
        let p = SlicePlace::of(&s).unwrap();
        assert_eq!((p.volume.as_str(), p.spacing), ("v.nii.gz#test:12#coronal", [1.0; 3]));
        s.kind = SampleKind::Image;
        assert_eq!(SlicePlace::of(&s), None);
    }
}
