//! `medpick train` and `medpick eval`: a classification head on a feature file, from the labels a person gave
//! (a CSV with `id` and `label` columns — e.g. picks.csv with a label column filled in), and its evaluation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use medpick_core::features::Features;
use medpick_core::train::cls::{self, ClsConfig, ClsHead, HeadKind};
use serde::{Deserialize, Serialize};

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
    pub seg: crate::train_seg::SegArgs,
    /// Head file to write (JSON).
    #[arg(long, short)]
    pub out: PathBuf,
    /// linear or dropquery.
    #[arg(long, default_value = "linear")]
    pub head: String,
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub model: crate::ModelArgs,
    /// Train on the CPU twins.
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

#[derive(Serialize, Deserialize)]
struct HeadFile {
    classes: Vec<String>,
    model: String,
    pool: String,
    dim: usize,
    head: ClsHead,
    trained_on: usize,
}

/// id → label from a CSV with a header naming `id` and `label` (or a plain two-column file).
pub fn read_labels(path: &Path) -> Result<HashMap<String, String>> {
    Ok(medpick_core::csv::read_labels(path)?)
}

pub fn train(a: TrainArgs) -> Result<bool> {
    if a.out.exists() && !a.force {
        bail!("{} already exists (pass --force to overwrite)", a.out.display());
    }
    match a.task.as_str() {
        "cls" => {}
        "seg" => return crate::train_seg::train(a),
        other => bail!("--task {other}: use cls or seg"),
    }
    let (Some(features), Some(labels_path)) = (&a.features, &a.labels) else {
        bail!("--task cls needs --features and --labels");
    };
    let f = Features::read(features)?;
    let labels = read_labels(labels_path)?;
    let mut classes: Vec<String> = labels.values().cloned().collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        bail!("{}: need labels of at least 2 classes, found {:?}", labels_path.display(), classes);
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, id) in f.ids.iter().enumerate() {
        if let Some(l) = labels.get(id) {
            x.extend_from_slice(f.row(i));
            y.push(classes.iter().position(|c| c == l).unwrap_or(0));
        }
    }
    let missing = labels.keys().filter(|id| !f.ids.contains(id)).count();
    if missing > 0 {
        eprintln!("{missing} labelled ids are not in {} (ignored)", features.display());
    }
    if y.is_empty() {
        bail!("none of the labelled ids is in {}", features.display());
    }
    let ctx = if a.cpu { None } else { Some(crate::open_gpu()?) };
    let cfg = ClsConfig { kind: HeadKind::parse(&a.head)?, epochs: a.epochs, seed: a.seed, ..Default::default() };
    let (head, log) = pollster::block_on(cls::train(ctx.as_ref(), &x, &y, classes.len(), &cfg, None))?;
    let file = HeadFile { classes, model: f.model, pool: f.pool, dim: f.dim, head, trained_on: y.len() };
    let mut w = medpick_core::manifest::create_new(&a.out, a.force)?;
    use std::io::Write;
    w.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
    w.flush()?;
    println!(
        "trained a {} head on {} samples ({} classes) in {} steps, {:.2} s ({:.2} ms/step); loss {:.4} -> {:.4}; wrote {}",
        a.head,
        y.len(),
        file.classes.len(),
        log.steps,
        log.seconds,
        1e3 * log.seconds / log.steps.max(1) as f64,
        log.epoch_loss.first().unwrap_or(&0.0),
        log.epoch_loss.last().unwrap_or(&0.0),
        a.out.display()
    );
    Ok(true)
}

pub fn eval(a: EvalArgs) -> Result<bool> {
    let text = std::fs::read_to_string(&a.head).with_context(|| format!("reading {}", a.head.display()))?;
    if let Ok(h) = serde_json::from_str::<crate::train_seg::SegHeadFile>(&text) {
        return crate::train_seg::eval(a, h);
    }
    let h: HeadFile =
        serde_json::from_str(&text).with_context(|| format!("{}: not a medpick head file", a.head.display()))?;
    let (Some(features), Some(labels_path)) = (&a.features, &a.labels) else {
        bail!("{} is a classification head: pass --features and --labels", a.head.display());
    };
    let f = Features::read(features)?;
    if f.dim != h.dim || f.model != h.model || f.pool != h.pool {
        bail!(
            "{}: features are {} ({} pool, dim {}) but the head was trained on {} ({} pool, dim {})",
            features.display(),
            f.model,
            f.pool,
            f.dim,
            h.model,
            h.pool,
            h.dim
        );
    }
    let labels = read_labels(labels_path)?;
    let (mut x, mut y, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for (i, id) in f.ids.iter().enumerate() {
        if let Some(l) = labels.get(id) {
            let Some(c) = h.classes.iter().position(|c| c == l) else {
                bail!("{}: {id} has label {l}, not one of the head's classes {:?}", labels_path.display(), h.classes)
            };
            x.extend_from_slice(f.row(i));
            y.push(c);
            ids.push(id.clone());
        }
    }
    if y.is_empty() {
        bail!("none of the ids in {} is in {}", labels_path.display(), features.display());
    }
    let ctx = if a.cpu { None } else { Some(crate::open_gpu()?) };
    let probs = pollster::block_on(h.head.predict(ctx.as_ref(), &x))?;
    let k = h.classes.len();
    let pred = ClsHead::argmax(&probs, k);
    use medpick_core::metrics;
    println!("{} samples, classes {:?}", y.len(), h.classes);
    println!("accuracy           {:.4}", metrics::accuracy(&pred, &y));
    println!("balanced accuracy  {:.4}", metrics::balanced_accuracy(&pred, &y, k));
    match metrics::macro_auc(&probs, &y, k) {
        Some(v) => println!("macro AUC (OvR)    {v:.4}"),
        None => println!("macro AUC (OvR)    – (a class is missing from the labels)"),
    }
    if let Some(out) = &a.out {
        let mut w = medpick_core::csv::Writer::new(medpick_core::manifest::create_new(out, a.force)?, out);
        let probs_h = h.classes.iter().map(|c| format!("p_{c}"));
        w.row(["id", "label", "predicted"].map(String::from).into_iter().chain(probs_h))?;
        for (i, id) in ids.iter().enumerate() {
            let p = probs[i * k..(i + 1) * k].iter().map(|v| format!("{v:.6}"));
            w.row([id.clone(), h.classes[y[i]].clone(), h.classes[pred[i]].clone()].into_iter().chain(p))?;
        }
        std::io::Write::flush(&mut w.finish()?)?;
        println!("wrote {}", out.display());
    }
    Ok(true)
}
