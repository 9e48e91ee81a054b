//! The protocol for 2-D binary segmentation: the training pool of feature grids and masks, a head trained on the
//! picks, per-image scores on the test split at the masks' own size and, for slices of complete volumes, per
//! volume in 3-D.

use serde::Serialize;

use super::*;
use crate::gpu::GpuContext;
use crate::train::cls::{self};
use crate::train::seg::{self, GridShape, SegConfig, SegHead};
use crate::{metrics, Result};

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
pub(crate) fn slice_run_gap(sorted: &[usize]) -> Option<String> {
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
pub(crate) fn stack_volume(
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
pub(crate) async fn train_on_pool(
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
    seg::train_with_val(ctx, grid, &grids, &variants, &masks, &unlabeled, sam.as_ref(), &cfg, pool.val, None, progress)
        .await
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
