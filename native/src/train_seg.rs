//! `medpick train --task seg` and `medpick eval` of a segmentation head: the head trains on the encoder's
//! feature grid of every image of a dataset that has a mask (or those listed in `--labels`), and is evaluated
//! per image at the mask's own size (Dice, IoU, HD95, ASD) and, for slices of volumes, per volume in 3-D.

use std::path::Path;

use anyhow::{bail, Context, Result};
use medpick_core::csv;
use medpick_core::cpu::DiceMode;
use medpick_core::features::Encoder;
use medpick_core::manifest::{self, Sample};
use medpick_core::model::sam_decoder::{LoadedSamDecoder, SamDecoder};
use medpick_core::protocol::{self, SegTest};
use medpick_core::train::pseudo::{PseudoLabels, SamPseudo};
use medpick_core::train::seg::{self, GridShape, Optimizer, SegConfig, SegHead};
use serde::{Deserialize, Serialize};

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
    /// The training configuration, with the output scale r.
    pub fn config(&self, epochs: usize, batch: usize, seed: u64, r: usize) -> Result<SegConfig> {
        let optimizer = match self.optimizer.as_str() {
            "adamw" => Optimizer::AdamW,
            "sgd" => Optimizer::Sgd,
            o => bail!("--optimizer {o}: use adamw or sgd"),
        };
        let dice = match self.seg_loss.as_str() {
            "dice" => DiceMode::Soft,
            "robust" => DiceMode::NoiseRobust { gamma: 1.5 },
            o => bail!("--seg-loss {o}: use dice (MedCAL's soft Dice) or robust (noise-robust Dice, γ = 1.5)"),
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
            mean_teacher: self.mean_teacher.then(seg::MeanTeacher::default),
            pseudo: self.pseudo_labels.then(|| PseudoLabels {
                confidence_quantile: self.pseudo_confidence_quantile,
                distance_quantile: self.pseudo_distance_quantile,
                ..Default::default()
            }),
            seed,
        })
    }
}

/// LiteMedSAM's mask decoder and the LiteMedSAM embeddings of the unlabelled images, for `--pseudo-labels`.
/// With `--model litemedsam` the head's own grids are the embeddings; another encoder's pool is embedded a second
/// time with LiteMedSAM (cached like any other features).
pub struct SamSource {
    pub decoder: LoadedSamDecoder,
    /// LiteMedSAM grids (channels-last) by id, when the head's encoder is not LiteMedSAM.
    own: Option<std::collections::HashMap<String, Vec<f32>>>,
}

impl SamSource {
    pub fn load(
        gpu: &medpick_core::gpu::GpuContext,
        cpu: bool,
        model: &crate::ModelArgs,
        sam_weights: Option<&Path>,
        root: &Path,
        samples: &[Sample],
    ) -> Result<SamSource> {
        let path = match (sam_weights, model.model.as_str()) {
            (Some(p), _) => p.to_path_buf(),
            (None, "litemedsam") if model.weights.is_some() => model.weights.clone().unwrap_or_default(),
            (None, _) => medpick_core::io::weights::default_litemedsam_path()?,
        };
        let w = medpick_core::io::weights::read_weights(&path)
            .with_context(|| format!("--pseudo-labels: loading LiteMedSAM from {}", path.display()))?;
        let dec = SamDecoder::load(&w).with_context(|| format!("{}: LiteMedSAM's mask decoder", path.display()))?;
        let decoder = if cpu { dec.to_cpu()? } else { dec.to_gpu(gpu)? };
        let own = if model.model == "litemedsam" {
            None
        } else {
            eprintln!("pseudo-labels: embedding {} unlabelled images with LiteMedSAM for the decoder", samples.len());
            let m = crate::ModelArgs { model: "litemedsam".into(), weights: Some(path), ..model.clone() };
            let (ids, grids) = embed_grids(gpu, &m, root, samples, SAM_GRID, false)?;
            Some(ids.into_iter().zip(grids).collect())
        };
        Ok(SamSource { decoder, own })
    }

    /// The LiteMedSAM embedding [256, 64, 64] of image `id`, whose head grid (channels-last) is `grid`.
    pub fn embedding(&self, id: &str, grid: &[f32]) -> medpick_core::Result<Vec<f32>> {
        let g = match &self.own {
            None => grid,
            Some(m) => m.get(id).map(|g| g.as_slice()).ok_or_else(|| {
                medpick_core::Error::Invalid(format!("{id}: no LiteMedSAM embedding for its pseudo-label"))
            })?,
        };
        if g.len() != SAM_GRID.len() {
            return Err(medpick_core::Error::Invalid(format!(
                "pseudo-labels: {id}: a grid of {} values, LiteMedSAM's is 256×64×64",
                g.len()
            )));
        }
        Ok(seg::hwc_to_chw(g, SAM_GRID.c, SAM_GRID.h, SAM_GRID.w))
    }
}

/// LiteMedSAM's image embedding: 256 channels at 64×64 (channels first from the encoder).
const SAM_GRID: GridShape = GridShape { c: 256, h: 64, w: 64 };

/// A segmentation head file: the head and the encoder it was trained on.
#[derive(Serialize, Deserialize)]
pub struct SegHeadFile {
    pub task: String,
    pub model: String,
    /// The encoder's grid is channels-first and is transposed before the head.
    pub grid_chw: bool,
    /// Storage of the encoder's matmul weights the head was trained on (eval re-embeds the same way).
    #[serde(default)]
    pub precision: medpick_core::model::Precision,
    /// Intensity window of DICOM/NIfTI inputs the head was trained on (eval re-embeds with it; heads written
    /// before it was recorded were trained on "file").
    #[serde(default = "file_window")]
    pub window: String,
    pub trained_on: usize,
    pub config: serde_json::Value,
    pub head: SegHead,
}

fn file_window() -> String {
    "file".into()
}

/// Feature grids (channels-last) of `samples`, with their ids (samples that could not be embedded are skipped
/// and reported by `embed_features`).
pub fn embed_grids(
    gpu: &medpick_core::gpu::GpuContext,
    model: &crate::ModelArgs,
    root: &Path,
    samples: &[Sample],
    shape: GridShape,
    chw: bool,
) -> Result<(Vec<String>, Vec<Vec<f32>>)> {
    embed_grids_with(gpu, model, root, samples, shape, chw, None)
}

/// `embed_grids` of an intensity variant of every image (`None`: the images as they are).
fn embed_grids_with(
    gpu: &medpick_core::gpu::GpuContext,
    model: &crate::ModelArgs,
    root: &Path,
    samples: &[Sample],
    shape: GridShape,
    chw: bool,
    intensity: Option<medpick_core::augment::IntensityVariant>,
) -> Result<(Vec<String>, Vec<Vec<f32>>)> {
    let m = crate::ModelArgs { pool: "grid".into(), ..model.clone() };
    let f = crate::embed_features_with(gpu, &m, root, samples, intensity)?;
    if f.dim != shape.len() {
        bail!("{}: grid of {} values, expected {}×{}×{}", model.model, f.dim, shape.c, shape.h, shape.w);
    }
    let grids = (0..f.ids.len())
        .map(|i| if chw { seg::chw_to_hwc(f.row(i), shape.c, shape.h, shape.w) } else { f.row(i).to_vec() })
        .collect();
    Ok((f.ids, grids))
}

/// The grids of `k` intensity variants (seed `seed`) of every sample of `ids` (channels-last), in the order of
/// `ids`: `out[i][j]` is variant j + 1 of `ids[i]`. Empty when `k` is 0.
#[allow(clippy::too_many_arguments)] // embed_grids' arguments, the ids to align to, and the variants
pub fn embed_variant_grids(
    gpu: &medpick_core::gpu::GpuContext,
    model: &crate::ModelArgs,
    root: &Path,
    samples: &[Sample],
    ids: &[String],
    shape: GridShape,
    chw: bool,
    k: usize,
    seed: u64,
) -> Result<Vec<Vec<Vec<f32>>>> {
    if k == 0 {
        return Ok(Vec::new());
    }
    let by_id: std::collections::HashMap<&str, &Sample> = samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let todo: Vec<Sample> = ids.iter().filter_map(|id| by_id.get(id.as_str()).map(|s| (*s).clone())).collect();
    let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(k); ids.len()];
    for index in 1..=k {
        eprintln!("intensity variant {index} of {k} of {} images", todo.len());
        let v = medpick_core::augment::IntensityVariant { seed, index };
        let (vids, grids) = embed_grids_with(gpu, model, root, &todo, shape, chw, Some(v))?;
        let mut by_id: std::collections::HashMap<String, Vec<f32>> = vids.into_iter().zip(grids).collect();
        for (i, id) in ids.iter().enumerate() {
            let Some(g) = by_id.remove(id) else { bail!("{id}: intensity variant {index} could not be embedded") };
            out[i].push(g);
        }
    }
    Ok(out)
}

/// The (height, width, mask) of a sample's first mask (`loader` keeps the last label volume).
pub fn read_mask(loader: &mut manifest::MaskLoader, s: &Sample) -> Result<(usize, usize, Vec<u8>)> {
    let (w, h, m) = loader.load(s, 0).with_context(|| format!("{}: reading its mask", s.id))?;
    Ok((h as usize, w as usize, m))
}

/// Samples with masks, restricted to the ids of `ids_csv` when given; and the others (unlabelled).
fn annotated(dataset: &Path, ids_csv: Option<&Path>) -> Result<(std::path::PathBuf, Vec<Sample>, Vec<Sample>)> {
    let (root, samples, _) = crate::load_samples(dataset, None)?;
    let all = samples.clone();
    let mut keep: Vec<Sample> = samples.into_iter().filter(|s| !s.masks.is_empty()).collect();
    if let Some(p) = ids_csv {
        let ids = read_ids(p)?;
        let before = keep.len();
        keep.retain(|s| ids.contains(&s.id));
        let missing = ids.iter().filter(|id| !keep.iter().any(|s| &s.id == *id)).count();
        if missing > 0 {
            eprintln!("{missing} ids of {} have no image with a mask in {} (ignored)", p.display(), dataset.display());
        }
        eprintln!("{} of {before} images with masks are listed in {}", keep.len(), p.display());
    }
    if keep.is_empty() {
        bail!(
            "{}: no images with masks{}",
            dataset.display(),
            if ids_csv.is_some() { " among the listed ids" } else { "" }
        );
    }
    let rest = all.into_iter().filter(|s| !keep.iter().any(|k| k.id == s.id)).collect();
    Ok((root, keep, rest))
}

/// The `id` column of a CSV (header naming `id`; otherwise the first column).
fn read_ids(path: &Path) -> Result<std::collections::HashSet<String>> {
    Ok(medpick_core::csv::read_ids(path)?.into_iter().collect())
}

pub fn train(a: crate::train::TrainArgs) -> Result<bool> {
    let Some(dataset) = &a.dataset else {
        bail!("--task seg needs --dataset (a folder or manifest of images with masks)")
    };
    let (root, samples, rest) = annotated(dataset, a.labels.as_deref())?;
    let gpu = crate::open_gpu()?;
    let (shape, chw) = Encoder::load_with(Some(&gpu), &a.model.model, a.model.weights.as_deref(), a.model.precision)
        .with_context(|| format!("loading --model {}", a.model.model))?
        .grid_shape();
    let r = shape.default_scale();
    let cfg = a.seg.config(a.epochs, a.batch, a.seed, r)?;
    let (ids, grids) = embed_grids(&gpu, &a.model, &root, &samples, shape, chw)?;
    let variant_grids =
        embed_variant_grids(&gpu, &a.model, &root, &samples, &ids, shape, chw, cfg.intensity_variants, cfg.seed)?;
    let by_id: std::collections::HashMap<&str, &Sample> = samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let (oh, ow) = (shape.h * r, shape.w * r);
    let mut loader = manifest::MaskLoader::new(&root);
    let masks: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| read_mask(&mut loader, by_id[id.as_str()]).map(|(h, w, m)| seg::resize_nearest_u8(&m, h, w, oh, ow)))
        .collect::<Result<_>>()?;
    let (u_ids, unlabeled) = if cfg.mean_teacher.is_some() || cfg.pseudo.is_some() {
        if rest.is_empty() {
            bail!(
                "--mean-teacher/--pseudo-labels: every image of {} is annotated; there is nothing unlabelled",
                dataset.display()
            );
        }
        eprintln!("semi-supervised: {} unlabelled images", rest.len());
        embed_grids(&gpu, &a.model, &root, &rest, shape, chw)?
    } else {
        (Vec::new(), Vec::new())
    };
    let sam_src = match cfg.pseudo {
        Some(_) => Some(SamSource::load(&gpu, a.cpu, &a.model, a.seg.sam_weights.as_deref(), &root, &rest)?),
        None => None,
    };
    let embedding = |i: usize| match &sam_src {
        Some(s) => s.embedding(&u_ids[i], &unlabeled[i]),
        None => Err(medpick_core::Error::Invalid("no generalist loaded".into())),
    };
    let sam = sam_src.as_ref().map(|s| SamPseudo { decoder: &s.decoder, embedding: &embedding });
    let ctx = if a.cpu { None } else { Some(&gpu) };
    let g: Vec<&[f32]> = grids.iter().map(|g| g.as_slice()).collect();
    let m: Vec<&[u8]> = masks.iter().map(|m| m.as_slice()).collect();
    let u: Vec<&[f32]> = unlabeled.iter().map(|g| g.as_slice()).collect();
    let v: Vec<Vec<&[f32]>> = variant_grids.iter().map(|vs| vs.iter().map(|g| g.as_slice()).collect()).collect();
    let pb = crate::progress_bar("train");
    let (head, log) =
        pollster::block_on(seg::train_with_val(ctx, shape, &g, &v, &m, &u, sam.as_ref(), &cfg, None, &mut |k, n| {
            pb.set_length(n as u64);
            pb.set_position(k as u64);
        }))?;
    pb.finish_and_clear();
    for p in &log.pseudo {
        eprintln!(
            "pseudo-labels at step {}: {} of {} unlabelled images kept ({} with foreground; confidence ≥ {:.4}, \
             distance ≤ {:.4})",
            p.step, p.kept, p.unlabeled, p.with_foreground, p.confidence_threshold, p.distance_threshold
        );
    }
    let file = SegHeadFile {
        task: "seg".into(),
        model: a.model.model.clone(),
        grid_chw: chw,
        precision: a.model.precision,
        window: a.model.window.clone(),
        trained_on: ids.len(),
        config: serde_json::to_value(&cfg)?,
        head,
    };
    let mut w = manifest::create_new(&a.out, a.force)?;
    use std::io::Write;
    w.write_all(serde_json::to_string(&file)?.as_bytes())?;
    w.flush()?;
    println!(
        "trained a segmentation head on {} images ({}×{}×{} grids → {oh}×{ow}) in {} steps, {:.1} s ({:.3} s/step at \
         batch {}); loss {:.4} -> {:.4}; wrote {}",
        ids.len(),
        shape.c,
        shape.h,
        shape.w,
        log.steps,
        log.seconds,
        log.seconds / log.steps.max(1) as f64,
        cfg.batch,
        log.epoch_loss.first().unwrap_or(&0.0),
        log.epoch_loss.last().unwrap_or(&0.0),
        a.out.display()
    );
    Ok(true)
}

pub fn eval(a: crate::train::EvalArgs, h: SegHeadFile) -> Result<bool> {
    let Some(dataset) = &a.dataset else {
        bail!("{} is a segmentation head: pass --dataset (images with masks)", a.head.display())
    };
    let (root, samples, _) = annotated(dataset, a.labels.as_deref())?;
    let gpu = crate::open_gpu()?;
    let model = crate::ModelArgs {
        model: h.model.clone(),
        weights: a.weights.clone(),
        pool: "grid".into(),
        window: h.window.clone(),
        cache: a.cache.clone(),
        precision: h.precision,
        embed_batch: medpick_core::features::DINOV2_BATCH,
    };
    let (ids, grids) = embed_grids(&gpu, &model, &root, &samples, h.head.grid, h.grid_chw)?;
    let by_id: std::collections::HashMap<&str, &Sample> = samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut loader = manifest::MaskLoader::new(&root);
    let masks: Vec<(usize, usize, Vec<u8>)> =
        ids.iter().map(|id| read_mask(&mut loader, by_id[id.as_str()])).collect::<Result<_>>()?;
    let places: Vec<Option<protocol::SlicePlace>> =
        ids.iter().map(|id| protocol::SlicePlace::of(by_id[id.as_str()])).collect();
    let ctx = if a.cpu { None } else { Some(&gpu) };
    let all = SegTest { grids: &grids, masks: &masks, places: &places };
    // The outputs are refused before the work if they exist (no --force).
    let out = a.out.as_ref().map(|p| manifest::create_new(p, a.force).map(|f| csv::Writer::new(f, p))).transpose()?;
    let has_volumes = places.iter().any(|p| p.is_some());
    let out_volumes = match (&a.out_volumes, has_volumes) {
        (Some(p), true) => Some(csv::Writer::new(manifest::create_new(p, a.force)?, p)),
        (Some(p), false) => bail!("--out-volumes {}: none of the evaluated images is a slice of a volume", p.display()),
        (None, _) => None,
    };
    let each = pollster::block_on(protocol::seg_scores_each(ctx, &h.head, &all))?;
    let mean = protocol::SegEval::mean(&each.images);
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into());
    println!("{} images, model {}, window {} (head trained on {} images)", ids.len(), h.model, h.window, h.trained_on);
    println!("Dice  {:.4}\nIoU   {:.4}\nHD95  {} px\nASD   {} px", mean.dice, mean.iou, fmt(mean.hd95), fmt(mean.asd));
    use std::io::Write;
    if let (Some(mut w), Some(path)) = (out, &a.out) {
        w.row(["id", "dice", "iou", "hd95", "asd"])?;
        for (id, e) in ids.iter().zip(&each.images) {
            w.row([id.clone(), format!("{:.6}", e.dice), format!("{:.6}", e.iou), fmt(e.hd95), fmt(e.asd)])?;
        }
        w.finish()?.flush()?;
        println!("wrote {}", path.display());
    }
    if has_volumes {
        print_volumes(&each);
    }
    if let (Some(mut w), Some(path)) = (out_volumes, &a.out_volumes) {
        w.row(["volume", "first_slice", "slices", "dice", "iou", "hd95_mm", "asd_mm"])?;
        for v in &each.volumes {
            let e = &v.scores;
            w.row([
                v.volume.clone(),
                v.first.to_string(),
                v.slices.to_string(),
                format!("{:.6}", e.dice),
                format!("{:.6}", e.iou),
                fmt(e.hd95),
                fmt(e.asd),
            ])?;
        }
        w.finish()?.flush()?;
        println!("wrote {}", path.display());
    }
    Ok(true)
}

/// The per-volume table of `eval`: 3-D scores after MedCAL's component filter, and their mean.
fn print_volumes(each: &protocol::SegScoresEach) {
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into());
    println!(
        "\n{} volumes in 3-D (predicted slices stacked, components under a third of the largest dropped; distances in \
         mm):",
        each.volumes.len()
    );
    if !each.volumes.is_empty() {
        let width = each.volumes.iter().map(|v| v.volume.chars().count()).max().unwrap_or(6).max(6);
        println!("{:width$}  slices    Dice     IoU   HD95 mm  ASD mm", "volume");
        for v in &each.volumes {
            let e = &v.scores;
            println!(
                "{:width$}  {:>6}  {:.4}  {:.4}  {:>7}  {:>6}",
                v.volume,
                v.slices,
                e.dice,
                e.iou,
                fmt(e.hd95),
                fmt(e.asd)
            );
        }
        let m = protocol::SegEval::mean(&each.volumes.iter().map(|v| v.scores).collect::<Vec<_>>());
        println!("{:width$}  {:>6}  {:.4}  {:.4}  {:>7}  {:>6}", "mean", "", m.dice, m.iou, fmt(m.hd95), fmt(m.asd));
    }
    for (v, why) in &each.volumes_skipped {
        println!("not scored in 3-D: {v}: {why}");
    }
}
