//! Heads a person trains on the picks they labelled (`medpick train`) and evaluates (`medpick eval`): the head
//! files (JSON: the head and the encoder it was trained on), training from a feature file and a labels CSV
//! (classification) or from a dataset's masks (segmentation), and evaluation with per-sample results as CSV.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cls::{self, ClsConfig, ClsHead};
use super::grid::{resize_nearest_u8, GridShape};
use super::pseudo::SamPseudo;
use super::sam_source::SamSource;
use super::seg::{self, SegHead, SegSettings};
use super::TrainLog;
use crate::data::csv;
use crate::data::dataset::{annotated, read_mask};
use crate::embed::features::{Encoder, Features, DINOV2_BATCH};
use crate::embed::{embed_grids, embed_variant_grids, EmbedConfig};
use crate::gpu::GpuContext;
use crate::manifest::{create_new, MaskLoader, Sample};
use crate::model::Precision;
use crate::protocol::{self, SegScoresEach, SegTest, SlicePlace};
use crate::{metrics, Context, Error, Result};

/// A classification head file: the head, its classes and the features it was trained on.
#[derive(Serialize, Deserialize)]
pub struct ClsHeadFile {
    pub classes: Vec<String>,
    pub model: String,
    pub pool: String,
    pub dim: usize,
    pub head: ClsHead,
    pub trained_on: usize,
}

/// A segmentation head file: the head and the encoder it was trained on.
#[derive(Serialize, Deserialize)]
pub struct SegHeadFile {
    pub task: String,
    pub model: String,
    /// The encoder's grid is channels-first and is transposed before the head.
    pub grid_chw: bool,
    /// Storage of the encoder's matmul weights the head was trained on (eval re-embeds the same way).
    #[serde(default)]
    pub precision: Precision,
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

/// Either kind of head file.
pub enum HeadFile {
    Cls(ClsHeadFile),
    Seg(SegHeadFile),
}

impl HeadFile {
    pub fn read(path: &Path) -> Result<HeadFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        if let Ok(h) = serde_json::from_str::<SegHeadFile>(&text) {
            return Ok(HeadFile::Seg(h));
        }
        serde_json::from_str(&text)
            .map(HeadFile::Cls)
            .map_err(|e| Error::decode(path, format!("not a medpick head file ({e})")))
    }
}

/// The path (`weight[12]`) of the first null inside an array of `v`, where a non-finite number went.
fn null_in_array(v: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| match x {
            Value::Null => Some(format!("{at}[{i}]")),
            _ => null_in_array(x, format!("{at}[{i}]")),
        }),
        Value::Object(o) => {
            o.iter().find_map(|(k, x)| null_in_array(x, if at.is_empty() { k.clone() } else { format!("{at}.{k}") }))
        }
        _ => None,
    }
}

/// Write `value` as JSON to a new file (an existing one only with `force`).
pub fn write_json(path: &Path, value: &impl Serialize, force: bool) -> Result<()> {
    let v = serde_json::to_value(value)?;
    // serde_json writes NaN and ±Inf as null: a number array holding one was not finite. Refuse to write it
    // (a later `eval` or `select` would read it back as garbage or refuse it far from the cause).
    if let Some(at) = null_in_array(&v, String::new()) {
        return Err(Error::Invalid(format!(
            "{}: not written: {at} holds a NaN or infinite value (the training diverged? try a lower --lr)",
            path.display()
        )));
    }
    let mut w = create_new(path, force)?;
    w.write_all(serde_json::to_string_pretty(&v)?.as_bytes()).map_err(|e| Error::io(path, e))?;
    w.flush().map_err(|e| Error::io(path, e))
}

/// Train a classification head on the rows of `features` that `labels` labels (a labels CSV, see
/// [`csv::read_labels`]). Labelled ids missing from the features are reported as a note.
pub async fn train_cls(
    ctx: Option<&GpuContext>,
    features: &Path,
    labels: &Path,
    cfg: &ClsConfig,
) -> Result<(ClsHeadFile, TrainLog)> {
    let f = Features::read(features)?;
    let labels_of = csv::read_labels(labels)?;
    let mut classes: Vec<String> = labels_of.values().cloned().collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(Error::decode(labels, format!("need labels of at least 2 classes, found {classes:?}")));
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, id) in f.ids.iter().enumerate() {
        if let Some(l) = labels_of.get(id) {
            x.extend_from_slice(f.row(i));
            y.push(classes.iter().position(|c| c == l).unwrap_or(0));
        }
    }
    let missing = labels_of.keys().filter(|id| !f.ids.contains(id)).count();
    if missing > 0 {
        note!("{missing} labelled ids are not in {} (ignored)", features.display());
    }
    if y.is_empty() {
        return Err(Error::decode(features, format!("none of the ids labelled in {} is here", labels.display())));
    }
    let (head, log) = cls::train(ctx, &x, &y, classes.len(), cfg, None).await?;
    Ok((ClsHeadFile { classes, model: f.model, pool: f.pool, dim: f.dim, head, trained_on: y.len() }, log))
}

/// A classification head's predictions on labelled samples.
pub struct ClsEval {
    pub ids: Vec<String>,
    /// True class per sample.
    pub y: Vec<usize>,
    /// Class probabilities [n, k].
    pub probs: Vec<f32>,
    pub pred: Vec<usize>,
    pub k: usize,
}

impl ClsEval {
    pub fn accuracy(&self) -> f64 {
        metrics::accuracy(&self.pred, &self.y)
    }
    pub fn balanced_accuracy(&self) -> f64 {
        metrics::balanced_accuracy(&self.pred, &self.y, self.k)
    }
    /// None when a class is missing from the labels.
    pub fn macro_auc(&self) -> Option<f64> {
        metrics::macro_auc(&self.probs, &self.y, self.k)
    }
}

/// Evaluate `h` on the rows of `features` that `labels` labels.
pub async fn eval_cls(ctx: Option<&GpuContext>, h: &ClsHeadFile, features: &Path, labels: &Path) -> Result<ClsEval> {
    let f = Features::read(features)?;
    if f.dim != h.dim || f.model != h.model || f.pool != h.pool {
        return Err(Error::decode(
            features,
            format!(
                "features are {} ({} pool, dim {}) but the head was trained on {} ({} pool, dim {})",
                f.model, f.pool, f.dim, h.model, h.pool, h.dim
            ),
        ));
    }
    let labels_of = csv::read_labels(labels)?;
    let (mut x, mut y, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for (i, id) in f.ids.iter().enumerate() {
        if let Some(l) = labels_of.get(id) {
            let Some(c) = h.classes.iter().position(|c| c == l) else {
                return Err(Error::decode(
                    labels,
                    format!("{id} has label {l}, not one of the head's classes {:?}", h.classes),
                ));
            };
            x.extend_from_slice(f.row(i));
            y.push(c);
            ids.push(id.clone());
        }
    }
    if y.is_empty() {
        return Err(Error::decode(labels, format!("none of its ids is in {}", features.display())));
    }
    let probs = h.head.predict(ctx, &x).await?;
    let k = h.classes.len();
    let pred = ClsHead::argmax(&probs, k);
    Ok(ClsEval { ids, y, probs, pred, k })
}

/// `id,label,predicted,p_<class>...` per sample.
pub fn write_cls_predictions(path: &Path, h: &ClsHeadFile, e: &ClsEval, force: bool) -> Result<()> {
    let mut w = csv::Writer::new(create_new(path, force)?, path);
    let probs_h = h.classes.iter().map(|c| format!("p_{c}"));
    w.row(["id", "label", "predicted"].map(String::from).into_iter().chain(probs_h))?;
    for (i, id) in e.ids.iter().enumerate() {
        let p = e.probs[i * e.k..(i + 1) * e.k].iter().map(|v| format!("{v:.6}"));
        w.row([id.clone(), h.classes[e.y[i]].clone(), h.classes[e.pred[i]].clone()].into_iter().chain(p))?;
    }
    w.finish()?.flush().map_err(|e| Error::io(path, e))
}

/// What `medpick train --task seg` asks for.
#[derive(Clone, Debug)]
pub struct SegTrainConfig {
    /// Folder or manifest of images with masks.
    pub dataset: PathBuf,
    /// Restrict training to the ids of this CSV (e.g. picks.csv).
    pub labels: Option<PathBuf>,
    pub model: EmbedConfig,
    pub seg: SegSettings,
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
    /// Train on the CPU kernels.
    pub cpu: bool,
}

/// A trained segmentation head with how it went.
pub struct SegTrained {
    pub file: SegHeadFile,
    pub log: TrainLog,
    pub shape: GridShape,
    pub out_hw: (usize, usize),
    pub batch: usize,
}

/// Train a segmentation head on the feature grids of the annotated images of a dataset.
pub async fn train_seg(gpu: Option<&GpuContext>, c: &SegTrainConfig) -> Result<SegTrained> {
    let (root, samples, rest) = annotated(&c.dataset, c.labels.as_deref())?;
    let (shape, chw) = Encoder::load_with(gpu, &c.model.model, c.model.weights.as_deref(), c.model.precision)
        .with_context(|| format!("loading model {}", c.model.model))?
        .grid_shape();
    let r = shape.default_scale();
    let cfg = c.seg.config(c.epochs, c.batch, c.seed, r)?;
    let (ids, grids) = embed_grids(gpu, &c.model, &root, &samples, shape, chw).await?;
    let (k, seed) = (cfg.intensity_variants, cfg.seed);
    let variant_grids = embed_variant_grids(gpu, &c.model, &root, &samples, &ids, shape, chw, k, seed).await?;
    let by_id: HashMap<&str, &Sample> = samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let (oh, ow) = (shape.h * r, shape.w * r);
    let mut loader = MaskLoader::new(&root);
    let masks: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| read_mask(&mut loader, by_id[id.as_str()]).map(|(h, w, m)| resize_nearest_u8(&m, h, w, oh, ow)))
        .collect::<Result<_>>()?;
    let (u_ids, unlabeled) = if cfg.mean_teacher.is_some() || cfg.pseudo.is_some() {
        if rest.is_empty() {
            let why = "every image is annotated, so ‹mean-teacher› and ‹pseudo-labels› have nothing unlabelled to use";
            return Err(Error::setting("dataset", c.dataset.display(), why));
        }
        note!("semi-supervised: {} unlabelled images", rest.len());
        embed_grids(gpu, &c.model, &root, &rest, shape, chw).await?
    } else {
        (Vec::new(), Vec::new())
    };
    let sam_src = match cfg.pseudo {
        Some(_) => Some(SamSource::load(gpu, c.cpu, &c.model, c.seg.sam_weights.as_deref(), &root, &rest).await?),
        None => None,
    };
    let embedding = |i: usize| match &sam_src {
        Some(s) => s.embedding(&u_ids[i], &unlabeled[i]),
        None => Err(Error::Invalid("no generalist loaded".into())),
    };
    let sam = sam_src.as_ref().map(|s| SamPseudo { decoder: &s.decoder, embedding: &embedding });
    let ctx = if c.cpu { None } else { gpu };
    let g: Vec<&[f32]> = grids.iter().map(|g| g.as_slice()).collect();
    let m: Vec<&[u8]> = masks.iter().map(|m| m.as_slice()).collect();
    let u: Vec<&[f32]> = unlabeled.iter().map(|g| g.as_slice()).collect();
    let v: Vec<Vec<&[f32]>> = variant_grids.iter().map(|vs| vs.iter().map(|g| g.as_slice()).collect()).collect();
    let pb = crate::progress::bar("train");
    let mut step = |k: usize, n: usize| {
        pb.set_length(n as u64);
        pb.set_position(k as u64);
    };
    let (head, log) =
        seg::train_with_val(ctx, shape, &g, &v, &m, &u, sam.as_ref(), &cfg, None, None, &mut step).await?;
    pb.finish_and_clear();
    for p in &log.pseudo {
        note!(
            "pseudo-labels at step {}: {} of {} unlabelled images kept ({} with foreground; confidence ≥ {:.4}, \
             distance ≤ {:.4})",
            p.step,
            p.kept,
            p.unlabeled,
            p.with_foreground,
            p.confidence_threshold,
            p.distance_threshold
        );
    }
    let file = SegHeadFile {
        task: "seg".into(),
        model: c.model.model.clone(),
        grid_chw: chw,
        precision: c.model.precision,
        window: c.model.window.clone(),
        trained_on: ids.len(),
        config: serde_json::to_value(&cfg)?,
        head,
    };
    Ok(SegTrained { file, log, shape, out_hw: (oh, ow), batch: cfg.batch })
}

/// A segmentation head's scores on the annotated images of a dataset.
pub struct SegHeadEval {
    pub ids: Vec<String>,
    pub each: SegScoresEach,
    /// Some evaluated image is a slice of a volume (per-volume 3-D scores exist).
    pub has_volumes: bool,
}

/// Evaluate `h` on the annotated images of `dataset` (only the ids of `labels` when given), re-embedding them as
/// the head was trained (its model, window and precision; `weights` and `cache` as for `embed`). `volumes`: the
/// per-volume scores are wanted, so images that are no volume's slices are refused before the scoring.
#[allow(clippy::too_many_arguments)] // the head, the data, where its encoder's weights and features are
pub async fn eval_seg(
    gpu: Option<&GpuContext>,
    cpu: bool,
    h: &SegHeadFile,
    dataset: &Path,
    labels: Option<&Path>,
    weights: Option<PathBuf>,
    cache: Option<String>,
    volumes: Option<&Path>,
) -> Result<SegHeadEval> {
    let (root, samples, _) = annotated(dataset, labels)?;
    let model = h.grid_config(weights, cache);
    let (ids, grids) = embed_grids(gpu, &model, &root, &samples, h.head.grid, h.grid_chw).await?;
    let by_id: HashMap<&str, &Sample> = samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut loader = MaskLoader::new(&root);
    let masks: Vec<(usize, usize, Vec<u8>)> =
        ids.iter().map(|id| read_mask(&mut loader, by_id[id.as_str()])).collect::<Result<_>>()?;
    let places: Vec<Option<SlicePlace>> = ids.iter().map(|id| SlicePlace::of(by_id[id.as_str()])).collect();
    let has_volumes = places.iter().any(|p| p.is_some());
    if let (Some(p), false) = (volumes, has_volumes) {
        return Err(Error::setting("out-volumes", p.display(), "none of the evaluated images is a slice of a volume"));
    }
    let ctx = if cpu { None } else { gpu };
    let all = SegTest { grids: &grids, masks: &masks, places: &places };
    let each = protocol::seg_scores_each(ctx, &h.head, &all).await?;
    Ok(SegHeadEval { ids, each, has_volumes })
}

/// The next batch of uncertainty sampling with the segmentation head `h`: the `n` images of `dataset` not in
/// `exclude` (labelled or already listed) the head is least sure of by `score` (`lc`, `entropy`, `margin`,
/// `her`), most uncertain first, as (id, score). The warm loop (`bench loop`) and the browser tab pick with the
/// same functions ([`super::labelled::seg_scores`], [`super::labelled::most_uncertain`]; `her` at τ = 0.35).
#[allow(clippy::too_many_arguments)] // the head, the pool, what to leave out, the score, where its encoder is
pub async fn next_seg(
    gpu: Option<&GpuContext>,
    h: &SegHeadFile,
    dataset: &Path,
    exclude: &std::collections::HashSet<String>,
    score: &str,
    n: usize,
    weights: Option<PathBuf>,
    cache: Option<String>,
) -> Result<Vec<(String, f64)>> {
    if !matches!(score, "lc" | "entropy" | "margin" | "her") {
        return Err(Error::setting("score", score, "lc, entropy, margin or her"));
    }
    let d = crate::data::dataset::load(dataset, None)?;
    let rest: Vec<Sample> = d.samples.into_iter().filter(|s| !exclude.contains(&s.id)).collect();
    if rest.is_empty() {
        return Err(Error::decode(dataset, "every image is excluded: nothing left to pick"));
    }
    let model = h.grid_config(weights, cache);
    let (ids, grids) = embed_grids(gpu, &model, &d.root, &rest, h.head.grid, h.grid_chw).await?;
    let refs: Vec<&[f32]> = grids.iter().map(|g| g.as_slice()).collect();
    let s = super::labelled::seg_scores(gpu, &h.head, &refs, score, 0.35).await?;
    Ok(super::labelled::most_uncertain(&s, n, score).into_iter().map(|i| (ids[i].clone(), s[i])).collect())
}

impl SegHeadFile {
    /// How images are embedded for this head: its model, window and precision, grid-pooled (`weights` and
    /// `cache` as for `embed`).
    fn grid_config(&self, weights: Option<PathBuf>, cache: Option<String>) -> EmbedConfig {
        EmbedConfig {
            model: self.model.clone(),
            weights,
            pool: "grid".into(),
            window: self.window.clone(),
            cache,
            precision: self.precision,
            batch: DINOV2_BATCH,
        }
    }
}

impl ClsHeadFile {
    /// One line on how training went: the head, the samples, the steps and the loss.
    pub fn trained_line(&self, head: &str, log: &TrainLog) -> String {
        format!(
            "trained a {head} head on {} samples ({} classes) in {} steps, {:.2} s ({:.2} ms/step); loss {:.4} -> {:.4}",
            self.trained_on,
            self.classes.len(),
            log.steps,
            log.seconds,
            1e3 * log.seconds / log.steps.max(1) as f64,
            log.epoch_loss.first().unwrap_or(&0.0),
            log.epoch_loss.last().unwrap_or(&0.0),
        )
    }
}

impl SegTrained {
    /// One line on how training went: the images, the grids, the steps and the loss.
    pub fn trained_line(&self) -> String {
        let (s, log) = (self.shape, &self.log);
        format!(
            "trained a segmentation head on {} images ({}×{}×{} grids → {}×{}) in {} steps, {:.1} s ({:.3} s/step at \
             batch {}); loss {:.4} -> {:.4}",
            self.file.trained_on,
            s.c,
            s.h,
            s.w,
            self.out_hw.0,
            self.out_hw.1,
            log.steps,
            log.seconds,
            log.seconds / log.steps.max(1) as f64,
            self.batch,
            log.epoch_loss.first().unwrap_or(&0.0),
            log.epoch_loss.last().unwrap_or(&0.0),
        )
    }
}

impl ClsEval {
    /// What `eval` prints for a classification head.
    pub fn summary(&self, classes: &[String]) -> String {
        let auc = match self.macro_auc() {
            Some(v) => format!("{v:.4}"),
            None => "– (a class is missing from the labels)".into(),
        };
        format!(
            "{} samples, classes {classes:?}\naccuracy           {:.4}\nbalanced accuracy  {:.4}\nmacro AUC (OvR)    {auc}\n",
            self.y.len(),
            self.accuracy(),
            self.balanced_accuracy()
        )
    }
}

impl SegHeadEval {
    /// What `eval` prints for a segmentation head (per image; [`SegHeadEval::volumes_table`] adds the volumes).
    pub fn summary(&self, h: &SegHeadFile) -> String {
        let m = protocol::SegEval::mean(&self.each.images);
        let f = fmt_distance;
        format!(
            "{} images, model {}, window {} (head trained on {} images)\nDice  {:.4}\nIoU   {:.4}\nHD95  {} px\nASD   {} px\n",
            self.ids.len(),
            h.model,
            h.window,
            h.trained_on,
            m.dice,
            m.iou,
            f(m.hd95),
            f(m.asd)
        )
    }

    /// The per-volume table of `eval`: 3-D scores after MedCAL's component filter, and their mean.
    pub fn volumes_table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let fmt = fmt_distance;
        let _ = writeln!(out,
        "\n{} volumes in 3-D (predicted slices stacked, components under a third of the largest dropped; distances in \
         mm):",
        self.each.volumes.len()
    );
        if !self.each.volumes.is_empty() {
            let width = self.each.volumes.iter().map(|v| v.volume.chars().count()).max().unwrap_or(6).max(6);
            let _ = writeln!(out, "{:width$}  slices    Dice     IoU   HD95 mm  ASD mm", "volume");
            for v in &self.each.volumes {
                let e = &v.scores;
                let _ = writeln!(
                    out,
                    "{:width$}  {:>6}  {:.4}  {:.4}  {:>7}  {:>6}",
                    v.volume,
                    v.slices,
                    e.dice,
                    e.iou,
                    fmt(e.hd95),
                    fmt(e.asd)
                );
            }
            let m = protocol::SegEval::mean(&self.each.volumes.iter().map(|v| v.scores).collect::<Vec<_>>());
            let _ = writeln!(
                out,
                "{:width$}  {:>6}  {:.4}  {:.4}  {:>7}  {:>6}",
                "mean",
                "",
                m.dice,
                m.iou,
                fmt(m.hd95),
                fmt(m.asd)
            );
        }
        for (v, why) in &self.each.volumes_skipped {
            let _ = writeln!(out, "not scored in 3-D: {v}: {why}");
        }
        out
    }
}

/// A distance or "–" where it is undefined (an empty mask).
pub fn fmt_distance(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into())
}

/// `id,dice,iou,hd95,asd` per image.
pub fn write_seg_scores(path: &Path, e: &SegHeadEval, force: bool) -> Result<()> {
    let mut w = csv::Writer::new(create_new(path, force)?, path);
    w.row(["id", "dice", "iou", "hd95", "asd"])?;
    for (id, s) in e.ids.iter().zip(&e.each.images) {
        let row =
            [id.clone(), format!("{:.6}", s.dice), format!("{:.6}", s.iou), fmt_distance(s.hd95), fmt_distance(s.asd)];
        w.row(row)?;
    }
    w.finish()?.flush().map_err(|e| Error::io(path, e))
}

/// `volume,first_slice,slices,dice,iou,hd95_mm,asd_mm` per volume.
pub fn write_volume_scores(path: &Path, e: &SegHeadEval, force: bool) -> Result<()> {
    let mut w = csv::Writer::new(create_new(path, force)?, path);
    w.row(["volume", "first_slice", "slices", "dice", "iou", "hd95_mm", "asd_mm"])?;
    for v in &e.each.volumes {
        let s = &v.scores;
        w.row([
            v.volume.clone(),
            v.first.to_string(),
            v.slices.to_string(),
            format!("{:.6}", s.dice),
            format!("{:.6}", s.iou),
            fmt_distance(s.hd95),
            fmt_distance(s.asd),
        ])?;
    }
    w.finish()?.flush().map_err(|e| Error::io(path, e))
}
