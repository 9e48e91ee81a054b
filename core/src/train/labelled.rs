//! Training on labels made in memory and choosing the next batch: the browser's annotation loop (label the
//! picks → train a head → score the unlabelled pool → next batch) runs these, and so do `medpick train` and
//! `medpick bench loop` for the same steps, so a head trained in a tab equals the CLI's trained on the exported
//! labels (same order, same settings, same seed) and the next batch equals the warm loop's pick.

use crate::gpu::GpuContext;
use crate::model::Precision;
use crate::train::cls::{self, ClsConfig};
use crate::train::grid::{chw_to_hwc, resize_nearest_u8, GridShape};
use crate::train::heads::{ClsHeadFile, SegHeadFile};
use crate::train::seg::{self, SegHead, SegSettings};
use crate::train::TrainLog;
use crate::uncertainty as u;
use crate::{Error, Result};

/// A binary mask drawn on one image: 1 = foreground, row-major at the image's size.
#[derive(Clone, Debug)]
pub struct MaskLabel {
    pub id: String,
    pub width: usize,
    pub height: usize,
    pub mask: Vec<u8>,
}

impl MaskLabel {
    /// Check the mask against its image's size; any non-zero value counts as foreground.
    pub fn new(id: &str, width: usize, height: usize, mask: Vec<u8>) -> Result<MaskLabel> {
        if width == 0 || height == 0 || mask.len() != width * height {
            return Err(Error::Invalid(format!(
                "{id}: the mask has {} pixels, its image is {width}×{height} ({} pixels)",
                mask.len(),
                width * height
            )));
        }
        let mask = mask.into_iter().map(|v| (v != 0) as u8).collect();
        Ok(MaskLabel { id: id.to_string(), width, height, mask })
    }
}

/// The settings `medpick train --task seg` uses by default, for `epochs`, `batch` and `seed`.
pub fn seg_config(shape: GridShape, epochs: usize, batch: usize, seed: u64) -> Result<seg::SegConfig> {
    SegSettings::default().config(epochs, batch, seed, shape.default_scale())
}

/// Train a segmentation head on the encoder grids of labelled images (`grids[i]` in the encoder's layout,
/// channels-first when `chw`) and their masks at the images' sizes, in the given order, as `medpick train
/// --task seg --epochs E --batch B --seed S` does on the same images (masks resized to the head's output by
/// nearest neighbour). `held_out` (grids and masks of labelled images not trained on) is only measured: its mean
/// Dice after every epoch goes to the log's `val_curve`, and the head is the last epoch's, as without it.
/// `progress(step, steps)` after each step. Returns the head file (the CLI's format, loaded by `medpick eval`),
/// the log (loss per epoch) and the head's mean Dice on the images it trained on.
#[allow(clippy::too_many_arguments)] // the model's identity, the labelled data and the three settings
pub async fn train_seg(
    ctx: Option<&GpuContext>,
    model: &str,
    shape: GridShape,
    chw: bool,
    grids: &[&[f32]],
    masks: &[MaskLabel],
    held_out: (&[&[f32]], &[MaskLabel]),
    epochs: usize,
    batch: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SegHeadFile, TrainLog, f64)> {
    if masks.is_empty() {
        return Err(Error::Invalid("train: no image has a mask yet: draw at least one".into()));
    }
    let cfg = seg_config(shape, epochs, batch, seed)?;
    let (oh, ow) = (shape.h * cfg.scale, shape.w * cfg.scale);
    let prepare = |grids: &[&[f32]], masks: &[MaskLabel]| -> Result<(Vec<Vec<f32>>, Vec<Vec<u8>>)> {
        if grids.len() != masks.len() {
            return Err(Error::Invalid(format!("train: {} grids for {} masks", grids.len(), masks.len())));
        }
        let hwc = grids
            .iter()
            .zip(masks)
            .map(|(g, m)| {
                if g.len() != shape.len() {
                    let why = format!("{}: grid of {} values, expected {}", m.id, g.len(), shape.len());
                    return Err(Error::shape("train", why));
                }
                Ok(if chw { chw_to_hwc(g, shape.c, shape.h, shape.w) } else { g.to_vec() })
            })
            .collect::<Result<_>>()?;
        let resized = masks.iter().map(|m| resize_nearest_u8(&m.mask, m.height, m.width, oh, ow)).collect();
        Ok((hwc, resized))
    };
    let (hwc, resized) = prepare(grids, masks)?;
    let (val_grids, val_masks) = prepare(held_out.0, held_out.1)?;
    let g: Vec<&[f32]> = hwc.iter().map(|v| v.as_slice()).collect();
    let r: Vec<&[u8]> = resized.iter().map(|v| v.as_slice()).collect();
    let val = (!val_grids.is_empty()).then_some(seg::SegValidation {
        grids: &val_grids,
        masks: &val_masks,
        every: 1,
        keep_last: true,
    });
    let (head, log) = seg::train_with_val(ctx, shape, &g, &[], &r, &[], None, &cfg, val, None, progress).await?;
    let train_dice = seg::mean_dice(ctx, &head, &hwc, &resized).await?;
    let file = SegHeadFile {
        task: "seg".into(),
        model: model.to_string(),
        grid_chw: chw,
        precision: Precision::F32,
        window: "file".into(),
        trained_on: masks.len(),
        config: serde_json::to_value(&cfg)?,
        head,
    };
    Ok((file, log, train_dice))
}

/// Train a classification head on feature rows (`x`, `dim` values each) with class names, as `medpick train
/// --task cls` does from a labels CSV: classes sorted by name, the CLI's default settings with `epochs` and
/// `seed`.
pub async fn train_cls(
    ctx: Option<&GpuContext>,
    model: &str,
    x: &[f32],
    dim: usize,
    labels: &[String],
    epochs: usize,
    seed: u64,
) -> Result<(ClsHeadFile, TrainLog)> {
    let mut classes: Vec<String> = labels.to_vec();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(Error::Invalid(format!(
            "train: labels of at least 2 classes are needed, found {} ({})",
            classes.len(),
            classes.join(", ")
        )));
    }
    if dim == 0 || x.len() != labels.len() * dim {
        return Err(Error::shape("train", format!("{} feature values for {} labels of {dim}", x.len(), labels.len())));
    }
    let y: Vec<usize> = labels.iter().map(|l| classes.iter().position(|c| c == l).unwrap_or(0)).collect();
    let cfg = ClsConfig { epochs, seed, ..ClsConfig::default() };
    let (head, log) = cls::train(ctx, x, &y, classes.len(), &cfg, None).await?;
    let file = ClsHeadFile { classes, model: model.into(), pool: "mean".into(), dim, head, trained_on: labels.len() };
    Ok((file, log))
}

/// Uncertainty scores a segmentation head can rank the unlabelled pool by (the warm loop's, without the ones
/// that need more than one head's probabilities).
pub const SEG_SCORES: &[&str] = &["lc", "entropy", "her", "margin", "asd"];

/// Score grids (channels-last) with a segmentation head, as the warm loop does: `lc` (least confidence, low =
/// uncertain), `entropy`, `her` (high-entropy ratio at threshold `tau`), `margin` (low = uncertain), `asd`.
pub async fn seg_scores(
    ctx: Option<&GpuContext>,
    head: &SegHead,
    grids: &[&[f32]],
    score: &str,
    tau: f64,
) -> Result<Vec<f64>> {
    if !SEG_SCORES.contains(&score) && score != "herd" {
        return Err(Error::setting("score", score, format!("use one of {}", SEG_SCORES.join(", "))));
    }
    let mut s = Vec::with_capacity(grids.len());
    head.predict_each(ctx, grids, &mut |_, p| {
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
    Ok(s)
}

/// Scores of a classification head's probabilities per row (`lc`, `entropy`, `margin`).
pub fn cls_scores(probs: &[f32], classes: usize, score: &str) -> Result<Vec<f64>> {
    if classes == 0 || !probs.len().is_multiple_of(classes) {
        return Err(Error::shape("score", format!("{} probabilities for {classes} classes", probs.len())));
    }
    probs
        .chunks(classes)
        .map(|q| match score {
            "lc" => Ok(u::lc(q, classes, 1)),
            "entropy" => Ok(u::he(q, classes, 1)),
            "margin" => Ok(u::margin(q, classes, 1)),
            s => Err(Error::setting("score", s, "use lc, entropy or margin for a classification head")),
        })
        .collect()
}

/// The `batch` most uncertain of `scores` (indices into it): the lowest for `lc` and `margin`, the highest for
/// the others; ties by index.
pub fn most_uncertain(scores: &[f64], batch: usize, score: &str) -> Vec<usize> {
    u::top_by(scores, batch, matches!(score, "lc" | "margin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_of_the_wrong_size_are_refused_and_values_become_binary() {
        assert!(MaskLabel::new("a", 4, 3, vec![0; 11]).unwrap_err().to_string().contains("4×3"));
        let m = MaskLabel::new("a", 2, 2, vec![0, 255, 1, 0]).unwrap();
        assert_eq!(m.mask, vec![0, 1, 1, 0]);
        assert!(MaskLabel::new("a", 0, 0, vec![]).is_err());
    }

    #[test]
    fn one_class_is_refused() {
        let labels = vec!["a".to_string(), "a".to_string()];
        let Err(err) = pollster::block_on(train_cls(None, "m", &[0.0; 4], 2, &labels, 1, 0)) else {
            panic!("one class trained")
        };
        assert!(err.to_string().contains("at least 2 classes"), "{err}");
    }

    #[test]
    fn two_images_of_two_classes_train_a_head() {
        let labels = vec!["b".to_string(), "a".to_string()];
        let x = [0.5, -1.0, 2.0, 0.0, -0.5, 1.0, -2.0, 0.25];
        let (file, log) = pollster::block_on(train_cls(None, "m", &x, 4, &labels, 5, 0)).unwrap();
        assert_eq!((file.classes.clone(), file.trained_on, log.epoch_loss.len()), (vec!["a".into(), "b".into()], 2, 5));
    }

    #[test]
    fn most_uncertain_is_lowest_for_lc_and_highest_for_entropy() {
        let s = [0.9, 0.2, 0.5];
        assert_eq!(most_uncertain(&s, 2, "lc"), vec![1, 2]);
        assert_eq!(most_uncertain(&s, 2, "entropy"), vec![0, 2]);
    }
}
