//! The warm loop (`medpick bench loop`): a cold-start pick, then rounds of train → score the unlabelled pool →
//! add the best batch, for classification and segmentation.

use serde::{Deserialize, Serialize};

use super::*;
use crate::gpu::GpuContext;
use crate::select::{self, Matrix, SelectInput};
use crate::train::cls::{self, ClsConfig, ClsHead};
use crate::train::seg::{GridShape, SegConfig};
use crate::{metrics, Error, Result};

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
    let first = select::select(
        start,
        &SelectInput {
            x,
            budget: batch,
            seed,
            labeled: &[],
            scans: Some(crate::exec::Backend::on(ctx)),
            weights: None,
        },
    )
    .await?;
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
                    let sel = select::select(
                        "coreset",
                        &SelectInput {
                            x,
                            budget: batch,
                            seed,
                            labeled: &labeled,
                            scans: Some(crate::exec::Backend::on(ctx)),
                            weights: None,
                        },
                    )
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
                    let sel = select::select(
                        "coreset",
                        &SelectInput {
                            x,
                            budget: batch,
                            seed,
                            labeled: &labeled,
                            scans: Some(crate::exec::Backend::on(ctx)),
                            weights: None,
                        },
                    )
                    .await?;
                    sel.picks.iter().filter_map(|p| rest.iter().position(|q| q == p)).collect()
                }
                _ => {
                    let tau = u::her_threshold(round as f64, (rounds - 1) as f64, 0.35, 0.60);
                    let grids: Vec<&[f32]> = rest.iter().map(|&i| pool.grids[i].as_slice()).collect();
                    let s = crate::train::labelled::seg_scores(ctx, &head, &grids, score, tau).await?;
                    match hist {
                        Some(h) if score == "herd" => {
                            let hs: Vec<[f32; 20]> = rest.iter().map(|&i| h[i]).collect();
                            u::herd_from_histograms(&s, &hs, batch, seed ^ round as u64)?
                        }
                        _ => crate::train::labelled::most_uncertain(&s, batch, score),
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
