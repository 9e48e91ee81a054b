//! Generalist pseudo-labels for the segmentation head (FM-ABS/GM-ABS, METHODS §6.3) with an ASSFT-like selective
//! filter (METHODS §7), on cached feature grids.
//!
//! At a few points of a training run (`refresh_steps`) the current model — the EMA teacher when the mean teacher
//! is on, else the student — predicts every unlabelled grid. An image is **kept** when
//!   (a) its confidence, the mean max-probability over the output pixels, is at least the
//!       `confidence_quantile` (0.5) quantile of the unlabelled images' confidences, and
//!   (b) the cosine distance of its spatial-mean feature to the nearest labelled image's is at most the
//!       `distance_quantile` (0.5) quantile of those distances over the unlabelled images,
//! i.e. among the more confident and the semantically closer to what was annotated: ASSFT's "reliable according
//! to predictive confidence and semantic distance to the labelled samples". ASSFT publishes no formula or
//! thresholds (METHODS §7); this rule and its two defaults are ours, "ASSFT-like". Both thresholds are
//! quantiles of the pool rather than absolute values because a head's calibration changes with its training:
//! an absolute 0.9 kept no image in 30 steps on Kvasir-SEG (mean max-probabilities stayed below it).
//!
//! For a kept image, the box of the largest connected component of its predicted foreground (argmax; one object
//! per image, as the box prompt assumes — stray specks would otherwise stretch the box over the whole image), each
//! side moved outward by 0..=`jitter`
//! pixels (4, FM-ABS's `randint(0, 5)`) in LiteMedSAM's 256×256 frame, prompts LiteMedSAM's mask decoder on the
//! image's LiteMedSAM embedding; its mask (logit > 0, at the head's output size) is the pseudo-label. A kept
//! image with no predicted foreground gets an all-background pseudo-label (FM-ABS: "slices without foreground
//! → 0"). Each step then adds, on a batch of kept images, CE against the pseudo-labels weighted
//! 0.5·w_sam(t), w_sam(t) = 1 − 0.9·exp(−5(1 − t/T)²) = GM-ABS's 1 − 0.9·sigmoid_rampup(t, T) (`w_sam`), from
//! about 1 down to 0.1.
//!
//! Deviations from GM-ABS, all named: 2-D images instead of three orthogonal views of a volume (no view fusion);
//! the box comes from the head's prediction, not from feature prototypes (the head already is a light decoder on
//! the features); box prompt only (LiteMedSAM takes no points), one mask (`multimask_output=False`, as
//! LiteMedSAM); no cleanlab denoising or logit clipping — the selective filter stands in for them, at image level;
//! refreshes at 20 %, 40 % and 60 % of the run (`refresh_steps`: GM-ABS's "every 600 iterations after a 600
//! warm-up while t < 0.8·T", with the period scaled from 6 % to 20 % of the run so a short run calls the decoder
//! a few times, not a dozen).

use super::grid::GridShape;
use super::seg_head::SegHead;
pub use super::PseudoRound;
use crate::gpu::GpuContext;
use crate::model::sam_decoder::LoadedSamDecoder;
use crate::rng::Rng;
use crate::{Error, Result};

/// The switches and thresholds (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PseudoLabels {
    /// How many times pseudo-labels are (re)made during the run.
    pub refreshes: usize,
    /// Outward box jitter, pixels of the 256×256 frame (0..=jitter per side).
    pub jitter: u32,
    /// τ_conf as a quantile of the unlabelled images' confidences (mean max-probability); kept: ≥ τ_conf.
    pub confidence_quantile: f32,
    /// τ_dist as a quantile of the unlabelled images' distances to their nearest labelled image.
    pub distance_quantile: f32,
    /// Weight of the pseudo-label CE at t = 0 (GM-ABS: 0.5), times w_sam(t).
    pub weight: f32,
}

impl Default for PseudoLabels {
    fn default() -> Self {
        PseudoLabels { refreshes: 3, jitter: 4, confidence_quantile: 0.5, distance_quantile: 0.5, weight: 0.5 }
    }
}

impl PseudoLabels {
    pub fn check(&self) -> Result<()> {
        let ok = self.refreshes > 0
            && (0.0..=1.0).contains(&self.confidence_quantile)
            && (0.0..=1.0).contains(&self.distance_quantile)
            && self.weight.is_finite()
            && self.weight >= 0.0;
        if !ok {
            return Err(Error::Invalid(format!(
                "pseudo-labels: refreshes {} (≥ 1), confidence quantile {} and distance quantile {} (in [0, 1]), \
                 weight {} (≥ 0)",
                self.refreshes, self.confidence_quantile, self.distance_quantile, self.weight
            )));
        }
        Ok(())
    }
}

/// The generalist: LiteMedSAM's mask decoder and, per unlabelled image (the order of `train`'s `unlabeled`),
/// its LiteMedSAM image embedding [256, 64, 64] (channels first, as the encoder returns it). A function rather
/// than a list so a pool whose head features already are LiteMedSAM grids need not hold a second copy.
pub struct SamPseudo<'a> {
    pub decoder: &'a LoadedSamDecoder,
    pub embedding: &'a dyn Fn(usize) -> Result<Vec<f32>>,
}

/// One unlabelled image at one refresh.
#[derive(Clone, Debug)]
pub struct PseudoLabel {
    /// Index into the unlabelled images.
    pub index: usize,
    /// Mean max-probability of the model's prediction.
    pub confidence: f32,
    /// Cosine distance of its spatial-mean feature to the nearest labelled image's.
    pub distance: f32,
    pub kept: bool,
    /// The decoder's prompt (256×256 frame), when kept with predicted foreground.
    pub box_256: Option<[f32; 4]>,
    /// The decoder's predicted IoU for the mask.
    pub iou_pred: Option<f32>,
    /// The pseudo-label at the head's output size (empty when not kept).
    pub mask: Vec<u8>,
}

/// The steps at which pseudo-labels are made: ⌊(k + 1)·0.8·T / (R + 1)⌋ for k < R (20 %, 40 %, 60 % for R = 3).
pub fn refresh_steps(total: usize, refreshes: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..refreshes).map(|k| (k + 1) * 4 * total / (5 * (refreshes + 1))).collect();
    v.dedup();
    v
}

/// GM-ABS's pseudo-label weight w_sam(t) = 1 − 0.9·exp(−5(1 − t/T)²) (t clipped to T): 1 → 0.1.
pub fn w_sam(t: usize, total: usize) -> f32 {
    let x = 1.0 - (t.min(total) as f32 / total.max(1) as f32);
    1.0 - 0.9 * (-5.0 * x * x).exp()
}

/// Cosine distance of each unlabelled grid's spatial mean to the nearest labelled grid's (1 − max cosine).
pub fn labeled_distance(grid: GridShape, labeled: &[&[f32]], unlabeled: &[&[f32]]) -> Vec<f32> {
    let unit = |g: &[f32]| {
        let m = grid.spatial_mean(g);
        let n = m.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        m.into_iter().map(|v| v / n).collect::<Vec<f32>>()
    };
    let lab: Vec<Vec<f32>> = labeled.iter().map(|g| unit(g)).collect();
    unlabeled
        .iter()
        .map(|g| {
            let u = unit(g);
            let best = lab.iter().map(|l| l.iter().zip(&u).map(|(a, b)| a * b).sum::<f32>()).fold(-1f32, f32::max);
            1.0 - best
        })
        .collect()
}

/// The box (x0, y0, x1, y1; pixel edges) of the foreground of a mask h × w, or `None` when it is empty.
pub fn foreground_box(fg: &[bool], h: usize, w: usize) -> Option<[usize; 4]> {
    let mut b: Option<[usize; 4]> = None;
    for y in 0..h {
        for x in 0..w {
            if fg[y * w + x] {
                let e = b.get_or_insert([x, y, x + 1, y + 1]);
                e[0] = e[0].min(x);
                e[1] = e[1].min(y);
                e[2] = e[2].max(x + 1);
                e[3] = e[3].max(y + 1);
            }
        }
    }
    b
}

/// Predict every unlabelled grid with `head`, filter (confidence, distance), and ask the decoder for a mask on
/// each kept image's box. `distance`: `labeled_distance` of the same unlabelled images.
pub async fn make(
    ctx: Option<&GpuContext>,
    head: &SegHead,
    unlabeled: &[&[f32]],
    distance: &[f32],
    sam: &SamPseudo<'_>,
    cfg: &PseudoLabels,
    rng: &mut Rng,
) -> Result<(Vec<PseudoLabel>, PseudoRound)> {
    cfg.check()?;
    if distance.len() != unlabeled.len() {
        return Err(Error::shape("pseudo-labels", format!("{} distances, {} images", distance.len(), unlabeled.len())));
    }
    if sam.decoder.on_gpu() != ctx.is_some() {
        return Err(Error::Invalid(
            "pseudo-labels: the decoder and the head must both run on the GPU or both on \
                                   the CPU twins"
                .into(),
        ));
    }
    let (oh, ow) = head.out_hw();
    let d64: Vec<f64> = distance.iter().map(|&d| d as f64).collect();
    let tau_d = crate::uncertainty::quantile(&d64, cfg.distance_quantile as f64) as f32;
    // Confidence and foreground box of each prediction (the probabilities are not kept).
    let mut pred: Vec<(f32, Option<[usize; 4]>)> = Vec::with_capacity(unlabeled.len());
    head.predict_each(ctx, unlabeled, &mut |_, p| {
        let conf = p.iter().map(|&q| q.max(1.0 - q) as f64).sum::<f64>() / p.len().max(1) as f64;
        let fg: Vec<u8> = p.iter().map(|&q| (q > 0.5) as u8).collect();
        let fg: Vec<bool> = crate::metrics::largest_component(&fg, [1, oh, ow]).into_iter().map(|v| v != 0).collect();
        pred.push((conf as f32, foreground_box(&fg, oh, ow)));
        Ok(())
    })
    .await?;
    let conf: Vec<f64> = pred.iter().map(|p| p.0 as f64).collect();
    let tau_c = crate::uncertainty::quantile(&conf, cfg.confidence_quantile as f64) as f32;
    let (sx, sy) = (256.0 / ow as f32, 256.0 / oh as f32);
    let mut out = Vec::with_capacity(unlabeled.len());
    let mut round = PseudoRound {
        unlabeled: unlabeled.len(),
        confidence_threshold: tau_c,
        distance_threshold: tau_d,
        ..Default::default()
    };
    for (i, (&(confidence, bx), &d)) in pred.iter().zip(distance).enumerate() {
        let kept = confidence >= tau_c && d <= tau_d;
        let mut p =
            PseudoLabel { index: i, confidence, distance: d, kept, box_256: None, iou_pred: None, mask: Vec::new() };
        if kept {
            round.kept += 1;
            match bx {
                None => p.mask = vec![0; oh * ow],
                Some([x0, y0, x1, y1]) => {
                    let mut j = || rng.below(cfg.jitter + 1) as f32;
                    let b = [
                        (x0 as f32 * sx - j()).max(0.0),
                        (y0 as f32 * sy - j()).max(0.0),
                        (x1 as f32 * sx + j()).min(256.0),
                        (y1 as f32 * sy + j()).min(256.0),
                    ];
                    let emb = (sam.embedding)(i)?;
                    let m = match ctx {
                        Some(ctx) => sam.decoder.forward(ctx, &emb, b).await?,
                        None => sam.decoder.forward_cpu(&emb, b).await?,
                    };
                    p.mask = m.mask_at(oh, ow);
                    p.box_256 = Some(b);
                    p.iou_pred = m.iou_pred.first().copied();
                    if p.mask.iter().any(|&v| v != 0) {
                        round.with_foreground += 1;
                    }
                }
            }
        }
        out.push(p);
    }
    Ok((out, round))
}
