//! Segmentation head on frozen encoder feature grids, trained in the WGSL kernels (or their CPU twins).
//!
//! Architecture (for a grid of C channels at h×w, e.g. LiteMedSAM's 256×64×64 or DINOv2's patch grid):
//!   3×3 conv C → `hidden` (im2col + matmul, PyTorch's weight layout [hidden, C, 3, 3])
//!   → LayerNorm over channels without affine (its scale folds into the next layer)
//!   → GELU
//!   → 1×1 conv hidden → 2·r² (`matmul`)
//!   → pixel shuffle by r (a learned ×r upsampling, as a transposed conv with stride = kernel = r)
//!   → 2-class logits at (h·r)×(w·r), r = ⌈256 / max(h, w)⌉ (256×256 for LiteMedSAM and DINOv2 /14 at 224).
//!
//! The pixel shuffle is never computed in training: the logits [h·w, 2·r²] are read as [h·w·r², 2] rows, and the
//! target mask is reordered once into the same row order (`targets_from_mask`), so the loss kernels see one row
//! per output pixel. Deviation from the "bilinear upsample" for DINOv2: the same learned pixel shuffle is
//! used for every encoder.
//!
//! Loss: 0.5·CE + 0.5·Dice (MedCAL, METHODS §4.1; Dice over the whole batch) or 0.5·CE + 0.5·noise-robust Dice
//! (FM-ABS, γ = 1.5). Optimiser: AdamW, or SGD with momentum 0.9 and MedCAL's poly schedule lr·(1 − t/T)^0.9.
//! Backward kernels: `softmax_xent` and `dice_loss` give dlogits; dW = dYᵀ·X (`transpose` + `matmul`); the
//! hidden layer through `gelu_backward` and `layernorm_backward`; the 3×3 conv's weight gradient from the
//! im2col columns, recomputed per image in the backward pass rather than kept (37.7 MB each for LiteMedSAM).
//! The encoder is frozen, so no gradient flows into the grid.
//!
//! Augmentation (`augment`, off by default): one of the 8 flips / 90° rotations per sample and epoch, applied to
//! the cached feature grid and to the mask together. Exact for the `pixels` encoder; for a learned encoder it is
//! an approximation (its features are not equivariant to flips), which is why it is off by default. Intensity
//! augmentation (brightness, contrast, gamma) happens before encoding: K cached variants per labelled image
//! ([`crate::augment`], [`SegConfig::intensity_variants`]), one drawn per sample and epoch.
//!
//! Deterministic for a seed: initialisation, batch order and augmentation come from one `Rng`, and every
//! kernel reduces in a fixed order.

use crate::cpu::{AdamwStep, DiceMode};
use crate::gpu::GpuContext;
use crate::model::exec::{Exec, Tensor};
use crate::rng::Rng;
use crate::train::pseudo::{self, PseudoLabels, SamPseudo};
use crate::train::TrainLog;
use crate::{Error, Result};

pub use super::grid::{
    chw_to_hwc, dihedral, hwc_to_chw, image_from_rows, resize_nearest_u8, targets_from_mask, GridShape,
};
use super::seg_head::{backward, forward, loss_and_grads, Grads, Params};
pub use super::seg_head::{head_loss_and_grads, SegHead};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    AdamW,
    Sgd,
}

/// Training settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SegConfig {
    pub hidden: usize,
    /// Output upsampling factor r (0: `GridShape::default_scale`).
    pub scale: usize,
    pub epochs: usize,
    pub batch: usize,
    pub optimizer: Optimizer,
    pub lr: f32,
    pub weight_decay: f32,
    pub dice: DiceMode,
    pub augment: bool,
    /// Intensity variants per labelled image ([`crate::augment`]): the grids come to [`train_with_val`] as
    /// `variants`, and every epoch each sample uses its original grid or one of them, drawn uniformly. 0 = off
    /// (recorded here so head files and results say how a head was trained).
    pub intensity_variants: usize,
    /// Semi-supervised training on unlabelled grids (off when `None`).
    pub mean_teacher: Option<MeanTeacher>,
    /// Generalist pseudo-labels with the selective filter (off when `None`; needs `train`'s `sam`).
    pub pseudo: Option<PseudoLabels>,
    pub seed: u64,
}

/// FM-ABS's mean teacher (METHODS §6.3), on cached feature grids:
/// - teacher = EMA of the student, α_t = min(1 − 1/(t + 1), `ema`) (0.99);
/// - consistency = mean over pixels and classes of (softmax(student(u)) − softmax(teacher(u + ε)))², on a batch
///   of unlabelled grids per step, weighted by λ_c(t) = `weight`·exp(−5(1 − t/T)²) for t < T (sigmoid ramp-up,
///   0.1 in FM-ABS);
/// - ε = clamp(N(0, (0.1·σ)²), ±0.2·σ), σ the grid's standard deviation: FM-ABS's image noise (0.1, ±0.2 on
///   normalised intensities) moved to the feature grid, since the encoder is frozen and its features cached.
///
/// Deviations: FM-ABS ramps over t//150 with length 40 in a 10,000-iteration run, i.e. over its first 60 %;
/// here T = 60 % of this run's steps, so short runs ramp up too. Its second perturbation (random gamma on the
/// image) needs a new encoder pass and is not applied.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MeanTeacher {
    pub ema: f32,
    pub weight: f32,
    pub noise: f32,
}

impl Default for MeanTeacher {
    fn default() -> Self {
        MeanTeacher { ema: 0.99, weight: 0.1, noise: 0.1 }
    }
}

impl Default for SegConfig {
    fn default() -> Self {
        SegConfig {
            hidden: 32,
            scale: 0,
            epochs: 50,
            batch: 8,
            optimizer: Optimizer::AdamW,
            lr: 1e-3,
            weight_decay: 1e-4,
            dice: DiceMode::Soft,
            augment: false,
            intensity_variants: 0,
            mean_teacher: None,
            pseudo: None,
            seed: 0,
        }
    }
}

/// FM-ABS's noise on a grid: clamp(N(0, (s·σ)²), ±2·s·σ), σ the grid's standard deviation.
fn noisy(g: &[f32], s: f32, rng: &mut Rng) -> Vec<f32> {
    let n = g.len().max(1) as f64;
    let mean = g.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (g.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt() as f32;
    let (sig, lim) = (s * sd, 2.0 * s * sd);
    g.iter().map(|&v| v + (rng.normal() * sig).clamp(-lim, lim)).collect()
}

/// The consistency weight λ_c(t) = w·exp(−5(1 − t/T)²) (t < T), w after.
fn rampup(weight: f32, t: usize, ramp: usize) -> f32 {
    if ramp == 0 || t >= ramp {
        return weight;
    }
    let x = 1.0 - t as f32 / ramp as f32;
    weight * (-5.0 * x * x).exp()
}

/// Upload a batch of (grid, mask) pairs, each turned by one random flip/rotation when `augment`: the grids,
/// their (h, w) and the targets in loss-row order.
#[allow(clippy::type_complexity)]
fn upload_batch<'m>(
    ex: &Exec<'_>,
    head: &SegHead,
    items: impl Iterator<Item = (&'m [f32], &'m [u8])>,
    augment: bool,
    rng: &mut Rng,
) -> Result<(Vec<Tensor>, Vec<(usize, usize)>, Vec<u32>)> {
    let (grid, r) = (head.grid, head.r);
    let (oh, ow) = head.out_hw();
    let (mut xs, mut geom, mut targets) = (Vec::new(), Vec::new(), Vec::new());
    for (g, m) in items {
        let t = if augment { rng.below(8) } else { 0 };
        let (g, gh, gw) = dihedral(g, grid.h, grid.w, grid.c, t);
        let (m, _, _) = dihedral(m, oh, ow, 1, t);
        xs.push(ex.upload("grid", &g)?);
        geom.push((gh, gw));
        targets.extend(targets_from_mask(&m, gh, gw, r));
    }
    Ok((xs, geom, targets))
}

/// `acc += g`, parameter by parameter.
async fn add_grads(ex: &mut Exec<'_>, g: &Grads, acc: &mut Grads, sizes: [usize; 4]) -> Result<()> {
    ex.add_into(&g.w1, &mut acc.w1, sizes[0]).await?;
    ex.add_into(&g.b1, &mut acc.b1, sizes[1]).await?;
    ex.add_into(&g.w2, &mut acc.w2, sizes[2]).await?;
    ex.add_into(&g.b2, &mut acc.b2, sizes[3]).await
}

/// Read parameters back into a copy of `head`.
async fn read_params(ex: &mut Exec<'_>, head: &SegHead, prm: &Params, sizes: [usize; 4]) -> Result<SegHead> {
    Ok(SegHead {
        w1: ex.read(&prm.w1, sizes[0]).await?,
        b1: ex.read(&prm.b1, sizes[1]).await?,
        w2: ex.read(&prm.w2, sizes[2]).await?,
        b2: ex.read(&prm.b2, sizes[3]).await?,
        ..head.clone()
    })
}

/// Train a head on grids [h, w, c] (channels-last) with masks at the output resolution [h·r, w·r]
/// (r = `cfg.scale`, or `GridShape::default_scale`; resize masks with `resize_nearest_u8` first).
/// `unlabeled` grids feed the mean teacher and the pseudo-labels; `sam` is the generalist for `cfg.pseudo`.
#[allow(clippy::too_many_arguments)] // the labelled and unlabelled data, the generalist, settings and progress
pub async fn train(
    ctx: Option<&GpuContext>,
    grid: GridShape,
    grids: &[&[f32]],
    masks: &[&[u8]],
    unlabeled: &[&[f32]],
    sam: Option<&SamPseudo<'_>>,
    cfg: &SegConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SegHead, TrainLog)> {
    train_with_val(ctx, grid, grids, &[], masks, unlabeled, sam, cfg, None, None, progress).await
}

/// A validation split for model selection (MedCAL validates every 5 epochs and keeps the checkpoint of best
/// validation Dice): grids, masks at the head's output size, and how often (every `every` epochs and after the
/// last; the earliest of equally good checkpoints is kept).
#[derive(Clone, Copy, Debug)]
pub struct SegValidation<'a> {
    pub grids: &'a [Vec<f32>],
    pub masks: &'a [Vec<u8>],
    pub every: usize,
    /// Only measure: return the last epoch's head (the same head as without validation) and record the
    /// validation Dice of every measured epoch in [`TrainLog::val_curve`] (the browser's held-out curve).
    pub keep_last: bool,
}

/// Mean Dice of the head's thresholded (p > 0.5) foreground against the validation masks, at the head's output.
async fn val_dice(ctx: Option<&GpuContext>, head: &SegHead, v: &SegValidation<'_>) -> Result<f64> {
    mean_dice(ctx, head, v.grids, v.masks).await
}

/// Mean Dice of the head's thresholded (p > 0.5) foreground on `grids` (channels-last) against `masks` at the
/// head's output size.
pub async fn mean_dice<G: AsRef<[f32]>, M: AsRef<[u8]>>(
    ctx: Option<&GpuContext>,
    head: &SegHead,
    grids: &[G],
    masks: &[M],
) -> Result<f64> {
    let mut sum = 0.0;
    head.predict_each(ctx, grids, &mut |i, p| {
        let pred: Vec<u8> = p.iter().map(|&x| (x > 0.5) as u8).collect();
        sum += crate::metrics::dice_iou(&pred, masks[i].as_ref()).0;
        Ok(())
    })
    .await?;
    Ok(sum / grids.len().max(1) as f64)
}

/// [`train`] with intensity variants and model selection: `variants[i]` are the grids of sample i's intensity
/// variants (empty, or one list per sample; see [`SegConfig::intensity_variants`]); with a validation split
/// (`val`) the returned head is the checkpoint of best validation Dice, and the log says which epoch it was and
/// its Dice. With `stop`, training ends with [`Error::Cancelled`] before the first step after the flag is set.
#[allow(clippy::too_many_arguments)] // train's arguments, the variants, the validation split and the stop flag
pub async fn train_with_val(
    ctx: Option<&GpuContext>,
    grid: GridShape,
    grids: &[&[f32]],
    variants: &[Vec<&[f32]>],
    masks: &[&[u8]],
    unlabeled: &[&[f32]],
    sam: Option<&SamPseudo<'_>>,
    cfg: &SegConfig,
    val: Option<SegValidation<'_>>,
    stop: Option<&std::sync::atomic::AtomicBool>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SegHead, TrainLog)> {
    let n = grids.len();
    if n == 0 || masks.len() != n {
        return Err(Error::Invalid(format!("train: {n} grids and {} masks (need ≥ 1, as many of each)", masks.len())));
    }
    if cfg.batch == 0 || cfg.epochs == 0 || cfg.hidden == 0 {
        return Err(Error::Invalid(format!(
            "train: batch {}, epochs {}, hidden {} (all ≥ 1)",
            cfg.batch, cfg.epochs, cfg.hidden
        )));
    }
    let r = if cfg.scale == 0 { grid.default_scale() } else { cfg.scale };
    let mut rng = Rng::new(cfg.seed);
    let head = SegHead::init(grid, cfg.hidden, r, &mut rng)?;
    let (oh, ow) = head.out_hw();
    for (i, (g, m)) in grids.iter().zip(masks).enumerate() {
        head.check_grid(&format!("sample {i}"), g)?;
        if m.len() != oh * ow {
            return Err(Error::shape("train", format!("mask {i}: {} pixels, the head outputs {oh}×{ow}", m.len())));
        }
    }
    for (i, g) in unlabeled.iter().enumerate() {
        head.check_grid(&format!("unlabelled sample {i}"), g)?;
    }
    if !variants.is_empty() && variants.len() != n {
        return Err(Error::Invalid(format!("train: intensity variants for {} of {n} samples", variants.len())));
    }
    for (i, vs) in variants.iter().enumerate() {
        for (k, g) in vs.iter().enumerate() {
            head.check_grid(&format!("sample {i}, intensity variant {}", k + 1), g)?;
        }
    }
    if let Some(v) = &val {
        if v.every == 0 || v.grids.is_empty() || v.grids.len() != v.masks.len() {
            return Err(Error::Invalid(format!(
                "train: validation every {} epochs on {} grids and {} masks (need every ≥ 1 and as many of each, ≥ 1)",
                v.every,
                v.grids.len(),
                v.masks.len()
            )));
        }
        for (i, (g, m)) in v.grids.iter().zip(v.masks).enumerate() {
            head.check_grid(&format!("validation sample {i}"), g)?;
            if m.len() != oh * ow {
                return Err(Error::shape("train", format!("validation mask {i}: {} pixels, need {oh}×{ow}", m.len())));
            }
        }
    }
    let mut best: Option<(f64, usize, SegHead)> = None;
    if cfg.mean_teacher.is_some() && unlabeled.is_empty() {
        return Err(Error::Invalid("train: the mean teacher needs unlabelled grids".into()));
    }
    let pseudo_on = match (cfg.pseudo, sam) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Error::Invalid("train: pseudo-labels need the generalist (LiteMedSAM's decoder)".into()))
        }
        (Some(_), Some(_)) if unlabeled.is_empty() => {
            return Err(Error::Invalid("train: pseudo-labels need unlabelled grids".into()))
        }
        (Some(p), Some(s)) => {
            p.check()?;
            Some((p, s))
        }
    };
    let t0 = crate::Instant::now();
    let mut ex = Exec::on(ctx);
    let mut prm = Params::upload(&ex, &head)?;
    // The teacher starts as a copy of the student.
    let mut teacher = match cfg.mean_teacher {
        Some(_) => Some(Params::upload(&ex, &head)?),
        None => None,
    };
    let sizes = [head.w1.len(), head.b1.len(), head.w2.len(), head.b2.len()];
    // Pseudo-label state: the distances are fixed (the labelled set does not change), the labels are remade.
    let distance = match pseudo_on {
        Some(_) => pseudo::labeled_distance(grid, grids, unlabeled),
        None => Vec::new(),
    };
    let mut pseudo_set: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut m1 = Vec::new();
    let mut m2 = Vec::new();
    for &s in &sizes {
        m1.push(ex.upload("optimizer state", &vec![0f32; s])?);
        m2.push(ex.upload("optimizer state", &vec![0f32; s])?);
    }
    let steps_per_epoch = n.div_ceil(cfg.batch);
    let total = steps_per_epoch * cfg.epochs;
    let refresh = pseudo_on.map(|(p, _)| pseudo::refresh_steps(total, p.refreshes)).unwrap_or_default();
    let mut order: Vec<usize> = (0..n).collect();
    let mut log = TrainLog::default();
    for _ in 0..cfg.epochs {
        rng.shuffle(&mut order);
        let mut sum = 0f64;
        for chunk in order.chunks(cfg.batch) {
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
                return Err(Error::Cancelled(format!("training stopped at step {} of {total}", log.steps)));
            }
            if let Some((pc, s)) = pseudo_on.filter(|_| refresh.contains(&log.steps)) {
                // Pseudo-labels from the teacher when there is one (FM-ABS), else the student.
                let now = read_params(&mut ex, &head, teacher.as_ref().unwrap_or(&prm), sizes).await?;
                let (labels, mut round) = pseudo::make(ctx, &now, unlabeled, &distance, s, &pc, &mut rng).await?;
                round.step = log.steps;
                pseudo_set = labels.into_iter().filter(|p| p.kept).map(|p| (p.index, p.mask)).collect();
                log.pseudo.push(round);
            }
            // The original grid or one of its intensity variants (no draw when a sample has none).
            let items: Vec<(&[f32], &[u8])> = chunk
                .iter()
                .map(|&i| match variants.get(i).filter(|v| !v.is_empty()) {
                    Some(vs) => match rng.below(vs.len() as u32 + 1) as usize {
                        0 => (grids[i], masks[i]),
                        k => (vs[k - 1], masks[i]),
                    },
                    None => (grids[i], masks[i]),
                })
                .collect();
            let (xs, geom, targets) = upload_batch(&ex, &head, items.into_iter(), cfg.augment, &mut rng)?;
            let (loss, mut g) = loss_and_grads(&mut ex, &head, &prm, &xs, &geom, &targets, cfg.dice).await?;
            if let (Some((pc, _)), false) = (pseudo_on, pseudo_set.is_empty()) {
                // CE against the generalist's pseudo-labels on a batch of kept images, weighted 0.5·w_sam(t).
                let pick: Vec<usize> =
                    (0..cfg.batch.min(pseudo_set.len())).map(|_| rng.below(pseudo_set.len() as u32) as usize).collect();
                let items = pick.iter().map(|&k| (unlabeled[pseudo_set[k].0], pseudo_set[k].1.as_slice()));
                let (px, pg, pt) = upload_batch(&ex, &head, items, cfg.augment, &mut rng)?;
                let rows = pt.len();
                let f = forward(&mut ex, &head, &prm, &px, &pg).await?;
                let w = pc.weight * pseudo::w_sam(log.steps, total);
                let (_, dz) = ex.softmax_xent(&f.logits, &pt, rows, 2, 0.0, w / rows as f32).await?;
                let gp = backward(&mut ex, &head, &prm, &px, &pg, &f, &dz).await?;
                add_grads(&mut ex, &gp, &mut g, sizes).await?;
            }
            if let (Some(mt), Some(tp)) = (cfg.mean_teacher, &teacher) {
                // A batch of unlabelled grids: the student on the clean grid, the teacher on a noisy copy.
                let mut us = Vec::with_capacity(cfg.batch);
                let mut un = Vec::with_capacity(cfg.batch);
                for _ in 0..cfg.batch {
                    let u = unlabeled[rng.below(unlabeled.len() as u32) as usize];
                    us.push(ex.upload("unlabelled grid", u)?);
                    un.push(ex.upload("unlabelled grid", &noisy(u, mt.noise, &mut rng))?);
                }
                let ug = vec![(grid.h, grid.w); us.len()];
                let fs = forward(&mut ex, &head, &prm, &us, &ug).await?;
                let ft = forward(&mut ex, &head, tp, &un, &ug).await?;
                let rows = us.len() * grid.h * grid.w * r * r;
                let lambda = rampup(mt.weight, log.steps, total * 3 / 5);
                let (_, dz) = ex.softmax_mse(&fs.logits, &ft.logits, rows, 2, lambda / (2 * rows) as f32).await?;
                let gu = backward(&mut ex, &head, &prm, &us, &ug, &fs, &dz).await?;
                add_grads(&mut ex, &gu, &mut g, sizes).await?;
            }
            log.steps += 1;
            let grads = [&g.w1, &g.b1, &g.w2, &g.b2];
            let params = [&mut prm.w1, &mut prm.b1, &mut prm.w2, &mut prm.b2];
            for (k, (p, gk)) in params.into_iter().zip(grads).enumerate() {
                match cfg.optimizer {
                    Optimizer::AdamW => {
                        let step = AdamwStep::torch(cfg.lr, cfg.weight_decay, log.steps);
                        ex.adamw(p, gk, &mut m1[k], &mut m2[k], sizes[k], step).await?
                    }
                    Optimizer::Sgd => {
                        // MedCAL's poly schedule, updated every iteration.
                        let lr = cfg.lr * (1.0 - (log.steps - 1) as f32 / total as f32).powf(0.9);
                        ex.sgd_momentum(p, gk, &mut m1[k], sizes[k], lr, 0.9, cfg.weight_decay).await?
                    }
                }
            }
            if let (Some(mt), Some(tp)) = (cfg.mean_teacher, &mut teacher) {
                let alpha = (1.0 - 1.0 / (log.steps as f32 + 1.0)).min(mt.ema);
                let pairs =
                    [(&mut tp.w1, &prm.w1), (&mut tp.b1, &prm.b1), (&mut tp.w2, &prm.w2), (&mut tp.b2, &prm.b2)];
                for (k, (t, s)) in pairs.into_iter().enumerate() {
                    ex.ema_update(t, s, sizes[k], alpha).await?;
                }
            }
            if !loss.is_finite() {
                return Err(Error::Invalid(format!("train: the loss became {loss} at step {}", log.steps)));
            }
            sum += loss as f64;
            progress(log.steps, total);
        }
        log.epoch_loss.push((sum / steps_per_epoch as f64) as f32);
        crate::train::check_loss(log.epoch_loss.len(), sum)?;
        if let Some(v) = &val {
            let epoch = log.epoch_loss.len();
            if epoch % v.every == 0 || epoch == cfg.epochs {
                let now = read_params(&mut ex, &head, &prm, sizes).await?;
                let d = val_dice(ctx, &now, v).await?;
                log.val_curve.push((epoch, d));
                if v.keep_last {
                    log.val_dice = Some(d);
                } else if best.as_ref().is_none_or(|(b, _, _)| d > *b) {
                    best = Some((d, epoch, now));
                }
            }
        }
    }
    let head = match best {
        Some((d, epoch, h)) => {
            log.best_epoch = Some(epoch);
            log.val_dice = Some(d);
            h
        }
        None => read_params(&mut ex, &head, &prm, sizes).await?,
    };
    log.seconds = t0.elapsed().as_secs_f64();
    Ok((head, log))
}

/// The segmentation head's training settings as a user gives them (`--hidden --optimizer --lr --seg-loss ...`),
/// turned into a [`SegConfig`] once the grid's output scale is known.
#[derive(Clone, Debug)]
pub struct SegSettings {
    /// seg: hidden channels of the head's 3×3 conv.
    pub hidden: usize,
    /// seg: optimiser, adamw (lr 1e-3) or sgd (momentum 0.9, MedCAL's poly schedule, lr 0.01).
    pub optimizer: String,
    /// seg: learning rate (default 1e-3 for adamw, 0.01 for sgd).
    pub lr: Option<f32>,
    /// seg: the Dice half of the loss, dice (MedCAL's soft Dice) or robust (FM-ABS noise-robust Dice, γ = 1.5).
    pub seg_loss: String,
    /// seg: random flips / 90° rotations of the feature grid and mask (exact for `pixels`, approximate for a
    /// learned encoder).
    pub augment: bool,
    /// seg: intensity augmentation before encoding: each labelled image is also encoded K times with seeded
    /// random brightness ×[0.75, 1.25], contrast [0.75, 1.25] and gamma [0.7, 1.5] (MedCAL's ranges; cached like
    /// other features), and each epoch uses the original or one variant per image. K+1 times the encoder work on
    /// the labelled images (on the whole training pool for `bench protocol`/`bench loop`).
    pub intensity_variants: usize,
    /// seg: FM-ABS's mean teacher (EMA 0.99, consistency 0.1 with a sigmoid ramp-up, noise on the feature grid)
    /// on the images without annotations (docs/training.md).
    pub mean_teacher: bool,
    /// seg: generalist pseudo-labels on the images without annotations: LiteMedSAM's decoder prompted with the
    /// box of the model's prediction, kept by an ASSFT-like filter (confidence, feature distance to the labelled
    /// images), CE weighted 0.5·w_sam(t) (docs/training.md).
    pub pseudo_labels: bool,
    /// seg: images given a pseudo-label have a confidence (mean max-probability) at least this quantile of the
    /// unlabelled images' (0.5: the more confident half).
    pub pseudo_confidence_quantile: f32,
    /// seg: images given a pseudo-label have a feature distance to the nearest labelled image at most this
    /// quantile of the unlabelled images' (0.5: the closer half).
    pub pseudo_distance_quantile: f32,
    /// seg: LiteMedSAM weights for the pseudo-labels' decoder (default: --weights with --model litemedsam,
    /// else $MEDPICK_WEIGHTS or the cache).
    pub sam_weights: Option<std::path::PathBuf>,
}

impl SegSettings {
    /// The training configuration, with the output scale r.
    pub fn config(&self, epochs: usize, batch: usize, seed: u64, r: usize) -> Result<SegConfig> {
        let optimizer = match self.optimizer.as_str() {
            "adamw" => Optimizer::AdamW,
            "sgd" => Optimizer::Sgd,
            o => return Err(Error::setting("optimizer", o, "use adamw or sgd")),
        };
        let dice = match self.seg_loss.as_str() {
            "dice" => DiceMode::Soft,
            "robust" => DiceMode::NoiseRobust { gamma: 1.5 },
            o => {
                return Err(Error::setting(
                    "seg-loss",
                    o,
                    "use dice (MedCAL's soft Dice) or robust (noise-robust Dice, γ = 1.5)",
                ))
            }
        };
        let sgd = optimizer == Optimizer::Sgd;
        Ok(SegConfig {
            hidden: self.hidden,
            scale: r,
            epochs,
            batch,
            optimizer,
            lr: self.lr.unwrap_or(if sgd { 0.01 } else { 1e-3 }),
            weight_decay: if sgd { 3e-5 } else { 1e-4 },
            dice,
            augment: self.augment,
            intensity_variants: self.intensity_variants,
            mean_teacher: self.mean_teacher.then(MeanTeacher::default),
            pseudo: self.pseudo_labels.then(|| PseudoLabels {
                confidence_quantile: self.pseudo_confidence_quantile,
                distance_quantile: self.pseudo_distance_quantile,
                ..Default::default()
            }),
            seed,
        })
    }
}

impl Default for SegSettings {
    fn default() -> Self {
        SegSettings {
            hidden: 32,
            optimizer: "adamw".into(),
            lr: None,
            seg_loss: "dice".into(),
            augment: false,
            intensity_variants: 0,
            mean_teacher: false,
            pseudo_labels: false,
            pseudo_confidence_quantile: 0.5,
            pseudo_distance_quantile: 0.5,
            sam_weights: None,
        }
    }
}
