//! `medpick train` and `medpick eval`: the arguments, turned into core's head training and evaluation
//! (`medpick_core::train::heads`), and what they print.

use std::path::PathBuf;

use anyhow::{bail, Result};
use medpick_core::train::cls::{ClsConfig, HeadKind};
use medpick_core::train::heads::{self, HeadFile, SegTrainConfig};
use medpick_core::train::seg::SegSettings;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// cls: a classification head on a feature file and a label CSV; seg: a segmentation head on the images of
    /// --dataset that have masks (those listed in --labels, when given).
    #[arg(long, default_value = "cls")]
    pub task: String,
    /// cls: feature file (`medpick embed`) holding the labelled samples.
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// cls: CSV with `id` and `label` columns (a header naming them, any other columns ignored; or two columns
    /// id,label). Rows with an empty label are not annotated yet and are skipped. seg: optional CSV with an `id`
    /// column (e.g. picks.csv) restricting training to those images.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// seg: folder or manifest of images with masks (the annotations to train on).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// seg: training batch size (MedCAL: 8).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[command(flatten)]
    pub seg: SegArgs,
    /// Head file to write (JSON).
    #[arg(long, short)]
    pub out: PathBuf,
    /// linear or dropquery.
    #[arg(long, default_value = "linear")]
    pub head: String,
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub epochs: usize,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    #[command(flatten)]
    pub model: crate::ModelArgs,
    /// Train the head on the CPU backend even when the encoder runs on the GPU (--device cpu: everything).
    #[arg(long)]
    pub cpu: bool,
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Head file written by `medpick train` (a classification or a segmentation head).
    #[arg(long)]
    pub head: PathBuf,
    /// cls: feature file of the samples to evaluate (same model and pooling as the head's).
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// cls: ground truth, CSV with `id` and `label` columns. seg: optional CSV with an `id` column restricting
    /// the evaluation to those images.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// seg: folder or manifest of images with masks to evaluate the segmentation head on.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// seg: weights of the head's encoder (default: as for `embed`).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// seg: feature cache folder (as for `embed`; "none" disables it).
    #[arg(long)]
    pub cache: Option<String>,
    /// Also write per-sample predictions (id, label, predicted, probabilities) as CSV; seg: per-image scores.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// seg: also write the per-volume 3-D scores (volume, first_slice, slices, dice, iou, hd95_mm, asd_mm) as
    /// CSV, for datasets of volumes (NIfTI with label volumes).
    #[arg(long)]
    pub out_volumes: Option<PathBuf>,
    #[arg(long)]
    pub cpu: bool,
    #[arg(long)]
    pub force: bool,
}

/// Settings of the segmentation head's training (shared by `train --task seg` and `bench protocol --task seg`).
#[derive(clap::Args, Clone)]
pub struct SegArgs {
    /// seg: hidden channels of the head's 3×3 conv.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// seg: optimiser, adamw (lr 1e-3) or sgd (momentum 0.9, MedCAL's poly schedule, lr 0.01).
    #[arg(long, default_value = "adamw")]
    pub optimizer: String,
    /// seg: learning rate (default 1e-3 for adamw, 0.01 for sgd).
    #[arg(long)]
    pub lr: Option<f32>,
    /// seg: the Dice half of the loss, dice (MedCAL's soft Dice) or robust (FM-ABS noise-robust Dice, γ = 1.5).
    #[arg(long, default_value = "dice")]
    pub seg_loss: String,
    /// seg: random flips / 90° rotations of the feature grid and mask (exact for `pixels`, approximate for a
    /// learned encoder).
    #[arg(long)]
    pub augment: bool,
    /// seg: intensity augmentation before encoding: each labelled image is also encoded K times with seeded
    /// random brightness ×[0.75, 1.25], contrast [0.75, 1.25] and gamma [0.7, 1.5] (MedCAL's ranges; cached like
    /// other features), and each epoch uses the original or one variant per image. K+1 times the encoder work on
    /// the labelled images (on the whole training pool for `bench protocol`/`bench loop`).
    #[arg(long, default_value_t = 0)]
    pub intensity_variants: usize,
    /// seg: FM-ABS's mean teacher (EMA 0.99, consistency 0.1 with a sigmoid ramp-up, noise on the feature grid)
    /// on the images without annotations (docs/training.md).
    #[arg(long)]
    pub mean_teacher: bool,
    /// seg: generalist pseudo-labels on the images without annotations: LiteMedSAM's decoder prompted with the
    /// box of the model's prediction, kept by an ASSFT-like filter (confidence, feature distance to the labelled
    /// images), CE weighted 0.5·w_sam(t) (docs/training.md).
    #[arg(long)]
    pub pseudo_labels: bool,
    /// seg: images given a pseudo-label have a confidence (mean max-probability) at least this quantile of the
    /// unlabelled images' (0.5: the more confident half).
    #[arg(long, default_value_t = 0.5)]
    pub pseudo_confidence_quantile: f32,
    /// seg: images given a pseudo-label have a feature distance to the nearest labelled image at most this
    /// quantile of the unlabelled images' (0.5: the closer half).
    #[arg(long, default_value_t = 0.5)]
    pub pseudo_distance_quantile: f32,
    /// seg: LiteMedSAM weights for the pseudo-labels' decoder (default: --weights with --model litemedsam,
    /// else $MEDPICK_WEIGHTS or the cache).
    #[arg(long)]
    pub sam_weights: Option<std::path::PathBuf>,
}

impl SegArgs {
    /// The settings as core takes them.
    pub fn settings(&self) -> SegSettings {
        SegSettings {
            hidden: self.hidden,
            optimizer: self.optimizer.clone(),
            lr: self.lr,
            seg_loss: self.seg_loss.clone(),
            augment: self.augment,
            intensity_variants: self.intensity_variants,
            mean_teacher: self.mean_teacher,
            pseudo_labels: self.pseudo_labels,
            pseudo_confidence_quantile: self.pseudo_confidence_quantile,
            pseudo_distance_quantile: self.pseudo_distance_quantile,
            sam_weights: self.sam_weights.clone(),
        }
    }
}

pub fn train(a: TrainArgs) -> Result<bool> {
    for p in [&a.features, &a.labels, &a.dataset].into_iter().flatten() {
        medpick_core::manifest::protect_input(p);
    }
    medpick_core::manifest::refuse_existing(&a.out, a.force)?;
    match a.task.as_str() {
        "cls" => {}
        "seg" => return train_seg(a),
        other => bail!("--task {other}: use cls or seg"),
    }
    let (Some(features), Some(labels)) = (&a.features, &a.labels) else {
        bail!("--task cls needs --features and --labels");
    };
    let ctx = if a.cpu { None } else { crate::open_device()? };
    let cfg = ClsConfig { kind: HeadKind::parse(&a.head)?, epochs: a.epochs, seed: a.seed, ..Default::default() };
    let (file, log) = pollster::block_on(heads::train_cls(ctx.as_ref(), features, labels, &cfg))?;
    heads::write_json(&a.out, &file, a.force)?;
    println!("{}; wrote {}", file.trained_line(&a.head, &log), a.out.display());
    Ok(true)
}

fn train_seg(a: TrainArgs) -> Result<bool> {
    let Some(dataset) = &a.dataset else {
        bail!("--task seg needs --dataset (a folder or manifest of images with masks)")
    };
    let gpu = crate::open_device()?;
    let c = SegTrainConfig {
        dataset: dataset.clone(),
        labels: a.labels.clone(),
        model: a.model.config(),
        seg: a.seg.settings(),
        epochs: a.epochs,
        batch: a.batch,
        seed: a.seed,
        cpu: a.cpu,
    };
    let t = pollster::block_on(heads::train_seg(gpu.as_ref(), &c))?;
    let mut w = medpick_core::manifest::create_new(&a.out, a.force)?;
    std::io::Write::write_all(&mut w, serde_json::to_string(&t.file)?.as_bytes())?;
    std::io::Write::flush(&mut w)?;
    println!("{}; wrote {}", t.trained_line(), a.out.display());
    Ok(true)
}

pub fn eval(a: EvalArgs) -> Result<bool> {
    medpick_core::manifest::protect_input(&a.head);
    for p in [&a.features, &a.labels, &a.dataset, &a.weights].into_iter().flatten() {
        medpick_core::manifest::protect_input(p);
    }
    match HeadFile::read(&a.head)? {
        HeadFile::Cls(h) => {
            let (Some(features), Some(labels)) = (&a.features, &a.labels) else {
                bail!("{} is a classification head: pass --features and --labels", a.head.display());
            };
            if let Some(out) = &a.out {
                medpick_core::manifest::refuse_existing(out, a.force)?;
            }
            let ctx = if a.cpu { None } else { crate::open_device()? };
            let e = pollster::block_on(heads::eval_cls(ctx.as_ref(), &h, features, labels))?;
            print!("{}", e.summary(&h.classes));
            if let Some(out) = &a.out {
                heads::write_cls_predictions(out, &h, &e, a.force)?;
                println!("wrote {}", out.display());
            }
        }
        HeadFile::Seg(h) => {
            let Some(dataset) = &a.dataset else {
                bail!("{} is a segmentation head: pass --dataset (images with masks)", a.head.display())
            };
            // The outputs are refused before the work if they exist (no --force).
            for p in a.out.iter().chain(&a.out_volumes) {
                medpick_core::manifest::refuse_existing(p, a.force)?;
            }
            let gpu = crate::open_device()?;
            let (w, cache) = (a.weights.clone(), a.cache.clone());
            let e = pollster::block_on(heads::eval_seg(
                gpu.as_ref(),
                a.cpu,
                &h,
                dataset,
                a.labels.as_deref(),
                w,
                cache,
                a.out_volumes.as_deref(),
            ))?;
            print!("{}", e.summary(&h));
            if let Some(p) = &a.out {
                heads::write_seg_scores(p, &e, a.force)?;
                println!("wrote {}", p.display());
            }
            if e.has_volumes {
                print!("{}", e.volumes_table());
            }
            if let Some(p) = &a.out_volumes {
                heads::write_volume_scores(p, &e, a.force)?;
                println!("wrote {}", p.display());
            }
        }
    }
    Ok(true)
}

#[derive(clap::Args)]
pub struct NextArgs {
    /// Segmentation head file (`medpick train --task seg`, or downloaded from the browser tab).
    #[arg(long)]
    pub head: PathBuf,
    /// Folder or manifest of the pool.
    #[arg(long)]
    pub dataset: PathBuf,
    /// CSV with an `id` column: images already labelled or listed, never picked again.
    #[arg(long)]
    pub exclude: Option<PathBuf>,
    /// Uncertainty score: lc, entropy, margin or her.
    #[arg(long, default_value = "lc")]
    pub score: String,
    /// How many images to pick.
    #[arg(long, default_value_t = 10)]
    pub n: usize,
    /// Weights of the head's encoder (default: as for `embed`).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Feature cache folder (as for `embed`; "none" disables it).
    #[arg(long)]
    pub cache: Option<String>,
}

/// `medpick next`: the next batch to label by the head's uncertainty, as the warm loop and the browser pick it;
/// prints `rank,id,score` (CSV).
pub fn next(a: NextArgs) -> Result<bool> {
    medpick_core::manifest::protect_input(&a.head);
    let HeadFile::Seg(h) = HeadFile::read(&a.head)? else {
        bail!("{} is not a segmentation head", a.head.display());
    };
    let exclude = match &a.exclude {
        Some(p) => medpick_core::csv::read_ids(p)?.into_iter().collect(),
        None => Default::default(),
    };
    let gpu = crate::open_device()?;
    let picks = pollster::block_on(heads::next_seg(
        gpu.as_ref(),
        &h,
        &a.dataset,
        &exclude,
        &a.score,
        a.n,
        a.weights.clone(),
        a.cache.clone(),
    ))?;
    let rows = picks.iter().enumerate().map(|(r, (id, s))| [format!("{}", r + 1), id.clone(), format!("{s:.9}")]);
    print!(
        "{}",
        medpick_core::csv::to_string(std::iter::once(["rank".into(), "id".into(), a.score.clone()]).chain(rows))
    );
    Ok(true)
}
