//! Fine-tuning the segmentation head on the datastore's final labels in the background (`POST /train/{model}`),
//! its status as MONAI Label reports it (task dict, `train_stats`), and inference: the head's mask of an image
//! and LiteMedSAM's mask inside a box.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use medpick_core::embed::{embed_grids, EmbedConfig};
use medpick_core::train::heads::SegHeadFile;
use medpick_core::train::seg::{self, SegSettings, SegValidation};

use crate::datastore::FINAL;
use crate::volume::{Grid, Prediction};
use crate::{ApiError, ApiResult, App};
use medpick_core::io::nifti;

/// The head's model name in `/info/` and the routes.
pub const HEAD_MODEL: &str = "medpick_seg";
/// LiteMedSAM prompted with a box (params `box`: [x0, y0, x1, y1] in the image's pixels).
pub const BOX_MODEL: &str = "litemedsam_box";

#[derive(Default)]
pub struct Trainer {
    /// The latest task dict (MONAI Label's shape: id, status, request, start_ts, end_ts, details, result).
    pub task: Mutex<Option<Value>>,
    /// `train_stats` of the head: epoch, total_epochs, best_metric, total_time, ...
    pub stats: Mutex<Value>,
    pub running: AtomicBool,
    pub stop: Arc<AtomicBool>,
    /// The trained head, once there is one.
    pub head: Mutex<Option<Arc<SegHeadFile>>>,
}

fn ts_string() -> String {
    let secs = crate::datastore::now_ts();
    format!("{secs}")
}

impl Trainer {
    /// `train_stats` of the head: `{}` before any training (3D Slicer reads it as a dict).
    pub fn stats(&self) -> Value {
        match self.stats.lock().map(|s| s.clone()) {
            Ok(Value::Object(m)) => Value::Object(m),
            _ => json!({}),
        }
    }
    pub fn task(&self) -> Option<Value> {
        self.task.lock().ok().and_then(|t| t.clone())
    }
}

/// The head file's place: `<datastore>/.medpick/models/medpick_seg.json` (hidden: not a datastore file).
pub fn head_path(root: &Path) -> PathBuf {
    root.join(".medpick").join("models").join(format!("{HEAD_MODEL}.json"))
}

/// Start training in the background; 429 while a training runs (as MONAI Label).
pub fn start(app: &Arc<App>, params: Value) -> ApiResult<Value> {
    let epochs = params.get("max_epochs").and_then(|v| v.as_u64()).map(|v| v as usize).unwrap_or(app.cfg.epochs);
    let epochs = epochs.clamp(1, 1000);
    let id = format!("{:016x}", rand_id());
    let task = json!({
        "id": id, "status": "RUNNING", "request": {"model": HEAD_MODEL, "max_epochs": epochs, "params": params},
        "start_ts": ts_string(), "details": ["training started"],
    });
    {
        // Under the task's lock, as `DELETE /train/` checks and stops: a stop finds either nothing running or this
        // training, never the moment between (where this start would undo it, or it would stop this one unasked).
        let mut t = app.train.task.lock().map_err(|_| ApiError::internal("lock"))?;
        if app.train.running.swap(true, Ordering::SeqCst) {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "a training of medpick_seg is already running",
            ));
        }
        app.train.stop.store(false, Ordering::SeqCst);
        *t = Some(task.clone());
    }
    let app2 = app.clone();
    std::thread::spawn(move || {
        let t0 = std::time::Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&app2, epochs)))
            .unwrap_or_else(|_| Err(ApiError::internal("training panicked")));
        let secs = t0.elapsed().as_secs_f64();
        // The end under the task's lock, the head saved there: a stop comes either before it (nothing is saved)
        // or after the training has ended (and finds nothing running).
        let mut guard = app2.train.task.lock().unwrap_or_else(|e| e.into_inner());
        let stopped = app2.train.stop.load(Ordering::SeqCst);
        let (status, result) = match r {
            Ok((file, log_line, root)) if !stopped => match save_head(&root, &file) {
                Ok(()) => {
                    if let Ok(mut h) = app2.train.head.lock() {
                        *h = Some(Arc::new(file));
                    }
                    if let Ok(mut s) = app2.train.stats.lock() {
                        if let Value::Object(m) = &mut *s {
                            m.insert("total_time".into(), format!("{secs:.1} s").into());
                        }
                    }
                    ("DONE", log_line)
                }
                Err(e) => ("ERROR", e.message),
            },
            // Stopped (`DELETE /train/`) after the last step.
            Ok(_) => ("STOPPED", "stopped after its last step; the head was not saved".to_string()),
            Err(e) if stopped => ("STOPPED", format!("{}; the head was not saved", e.message)),
            Err(e) => ("ERROR", e.message),
        };
        if status != "DONE" {
            eprintln!("medpick serve: training {}: {result}", status.to_lowercase());
        }
        if let Some(Value::Object(m)) = guard.as_mut() {
            m.insert("status".into(), status.into());
            m.insert("end_ts".into(), ts_string().into());
            m.insert("result".into(), result.clone().into());
            m.insert("details".into(), json!([result]));
        }
        app2.train.running.store(false, Ordering::SeqCst);
    });
    Ok(task)
}

/// Write the head to [`head_path`] (atomically: a reader sees the old file or the new one).
fn save_head(root: &Path, file: &SegHeadFile) -> ApiResult<()> {
    let path = head_path(root);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| ApiError::io(d, e))?;
    }
    let text = serde_json::to_vec(file).map_err(|e| ApiError::internal(e.to_string()))?;
    crate::datastore::atomic_write(&path, &text)
}

fn rand_id() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (t as u64) ^ ((std::process::id() as u64) << 32)
}

/// The grid-pooled embedding configuration of the server's model.
fn grid_cfg(app: &App) -> EmbedConfig {
    EmbedConfig { pool: "grid".into(), ..app.cfg.model.clone() }
}

/// Train on every image with a final label: a 2-D image, or up to [`crate::volume::TRAIN_SLICES`] slices of a
/// volume (NIfTI or DICOM series) across its labelled range; a label that cannot be used is skipped and noted.
fn run(app: &Arc<App>, epochs: usize) -> ApiResult<(SegHeadFile, String, PathBuf)> {
    let (images_dir, root, pairs) = {
        let ds = app.ds.lock().map_err(|_| ApiError::internal("lock"))?;
        let mut pairs = Vec::new();
        for id in ds.labeled() {
            pairs.push((id.clone(), ds.image_path(&id)?, ds.label_path(&id, FINAL)?));
        }
        (ds.images_dir(), ds.root.clone(), pairs)
    };
    let gpu = app.gpu.as_deref();
    let cfg = grid_cfg(app);
    let encoder = medpick_core::features::Encoder::load_with(gpu, &cfg.model, cfg.weights.as_deref(), cfg.precision)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (shape, chw) = encoder.grid_shape();
    drop(encoder);
    let r = shape.default_scale();
    let (oh, ow) = (shape.h * r, shape.w * r);
    let mut samples = Vec::new();
    let mut masks = Vec::new();
    let mut notes = Vec::new();
    for (id, image, label) in &pairs {
        // A label that cannot be used is skipped and named in the training's notes; the others train.
        let one = || -> ApiResult<(Vec<crate::volume::LabelSlice>, bool)> {
            let ext = crate::datastore::to_id(&label.file_name().unwrap_or_default().to_string_lossy()).1;
            let bytes = std::fs::read(label).map_err(|e| ApiError::io(label, e))?;
            let what = label.display().to_string();
            let m = crate::labels::read_mask(&bytes, &ext, &what)?;
            let all = crate::pool::all_samples(&images_dir, image).map_err(ApiError::bad)?;
            // A 2-D label file (PNG, TIFF, BMP) holds its pixels as shown, the one sample's orientation.
            let flat = matches!(ext.as_str(), ".png" | ".tif" | ".tiff" | ".bmp");
            if is_volume(image) && !flat {
                let grid = Grid::of(&images_dir, image, &all)?;
                if let (Grid::Nifti { header, .. }, ".nii" | ".nii.gz") = (&grid, ext.as_str()) {
                    let lh = nifti::header_bytes(Path::new(&what), &bytes).map_err(|e| ApiError::bad(e.to_string()))?;
                    let (want, got) = (nifti::header_layout(header), nifti::header_layout(&lh));
                    if want != got {
                        return Err(ApiError::bad(format!(
                            "{what}: the label is {got} but its image is {want}; they would not slice alike"
                        )));
                    }
                }
                let slices = crate::volume::label_slices(&grid, &all, &m, &what, crate::volume::TRAIN_SLICES)?;
                return Ok((slices, true));
            }
            if all.len() != 1 {
                return Err(ApiError::bad(format!(
                    "{what}: a 2-D label for an image of {} slices (send a NIfTI or NRRD label volume)",
                    all.len()
                )));
            }
            let s = all.into_iter().next().ok_or_else(|| ApiError::bad(format!("{}: no image", image.display())))?;
            crate::labels::check_against(&m, [s.width as usize, s.height as usize, 1], &what)?;
            Ok((vec![(s, m.dims[0], m.dims[1], m.data)], false))
        };
        match one() {
            Ok((slices, volume)) => {
                if volume {
                    notes.push(format!("{id}: {} labelled slices of a volume", slices.len()));
                }
                for (s, w, h, m) in slices {
                    masks.push(seg::resize_nearest_u8(&m, h, w, oh, ow));
                    samples.push(s);
                }
            }
            Err(e) => notes.push(format!("{id}: skipped: {}", e.message)),
        }
    }
    if samples.is_empty() {
        return Err(ApiError::bad(format!("no image with a usable final label to train on ({})", notes.join("; "))));
    }
    let stopped = || app.train.stop.load(Ordering::SeqCst);
    if stopped() {
        return Err(ApiError::bad("training stopped before its images were embedded"));
    }
    let (ids, grids) = pollster::block_on(embed_grids(gpu, &cfg, &images_dir, &samples, shape, chw))?;
    if stopped() {
        return Err(ApiError::bad("training stopped after its images were embedded"));
    }
    if ids.len() != samples.len() {
        return Err(ApiError::bad(format!(
            "{} of {} labelled images could not be embedded",
            samples.len() - ids.len(),
            samples.len()
        )));
    }
    // Hold out a fifth (at least one) for the best-epoch choice when there are five labels or more.
    let n = grids.len();
    let n_val = if n >= 5 { (n / 5).max(1) } else { 0 };
    let (tr, va) = (0..n).partition::<Vec<usize>, _>(|&i| i >= n_val);
    let g: Vec<&[f32]> = tr.iter().map(|&i| grids[i].as_slice()).collect();
    let m: Vec<&[u8]> = tr.iter().map(|&i| masks[i].as_slice()).collect();
    let vg: Vec<Vec<f32>> = va.iter().map(|&i| grids[i].clone()).collect();
    let vm: Vec<Vec<u8>> = va.iter().map(|&i| masks[i].clone()).collect();
    let settings = SegSettings::default();
    let batch = 8.min(g.len()).max(1);
    let scfg = settings.config(epochs, batch, app.cfg.seed, r)?;
    let val = (!vg.is_empty()).then_some(SegValidation { grids: &vg, masks: &vm, every: 1, keep_last: false });
    let steps_per_epoch = g.len().div_ceil(batch);
    let total_epochs = epochs;
    let t0 = std::time::Instant::now();
    let stats = &app.train.stats;
    let mut progress = |k: usize, _n: usize| {
        let epoch = (k / steps_per_epoch.max(1)).min(total_epochs);
        if let Ok(mut s) = stats.lock() {
            *s = json!({"epoch": epoch, "total_epochs": total_epochs, "current_iteration": k,
                        "start_ts": ts_string(), "current_time": format!("{:.1} s", t0.elapsed().as_secs_f64()),
                        "best_metric": s.get("best_metric").cloned().unwrap_or(json!(0.0))});
        }
    };
    let ctx = gpu;
    let (head, log) = pollster::block_on(seg::train_with_val(
        ctx,
        shape,
        &g,
        &[],
        &m,
        &[],
        None,
        &scfg,
        val,
        Some(&app.train.stop),
        &mut progress,
    ))?;
    let best = log.val_dice.unwrap_or(0.0);
    if let Ok(mut s) = stats.lock() {
        *s = json!({"epoch": total_epochs, "total_epochs": total_epochs, "best_metric": best,
                    "best_metric_epoch": log.best_epoch, "validation_images": n_val, "train_images": g.len(),
                    "loss": log.epoch_loss.last().copied().unwrap_or(0.0),
                    "notes": notes});
    }
    let file = SegHeadFile {
        task: "seg".into(),
        model: cfg.model.clone(),
        grid_chw: chw,
        precision: cfg.precision,
        window: cfg.window.clone(),
        trained_on: g.len(),
        config: serde_json::to_value(&scfg).unwrap_or(Value::Null),
        head,
    };
    let line = format!(
        "trained medpick_seg on {} images ({} held out: best Dice {best:.4}) in {:.1} s",
        g.len(),
        n_val,
        log.seconds
    );
    Ok((file, line, root))
}

/// The trained head (from memory, else from the datastore's `.medpick/models`).
pub fn load_head(app: &App) -> ApiResult<Arc<SegHeadFile>> {
    if let Some(h) = app.train.head.lock().map_err(|_| ApiError::internal("lock"))?.clone() {
        return Ok(h);
    }
    let root = app.ds.lock().map_err(|_| ApiError::internal("lock"))?.root.clone();
    let p = head_path(&root);
    if !p.is_file() {
        return Err(ApiError::not_found(format!("{HEAD_MODEL} is not trained yet: POST /train/{HEAD_MODEL} first")));
    }
    match medpick_core::train::heads::HeadFile::read(&p)? {
        medpick_core::train::heads::HeadFile::Seg(f) => {
            let f = Arc::new(f);
            *app.train.head.lock().map_err(|_| ApiError::internal("lock"))? = Some(f.clone());
            Ok(f)
        }
        _ => Err(ApiError::internal(format!("{}: not a segmentation head", p.display()))),
    }
}

/// A volume: a series folder or a NIfTI file (whose slices are cut along the world axes, even a single one).
pub fn is_volume(image: &Path) -> bool {
    image.is_dir() || medpick_core::io::nifti::is_nifti_path(image)
}

/// Slices embedded at once when inferring on a volume (each grid is a few MB).
const INFER_CHUNK: usize = 16;

/// The head's binary mask of a datastore image at the image's size: a 2-D mask, or a label volume on a volume's
/// voxel grid (every slice inferred).
pub fn infer_head(app: &App, image: &Path) -> ApiResult<Prediction> {
    let head = load_head(app)?;
    let images_dir = app.ds.lock().map_err(|_| ApiError::internal("lock"))?.images_dir();
    let all = crate::pool::all_samples(&images_dir, image).map_err(ApiError::bad)?;
    let cfg = EmbedConfig { window: head.window.clone(), precision: head.precision, ..grid_cfg(app) };
    let gpu = app.gpu.as_deref();
    let (oh, ow) = head.head.out_hw();
    // The volume's grid first: a geometry that cannot be written is refused before minutes of inference.
    let grid = if is_volume(image) { Some(Grid::of(&images_dir, image, &all)?) } else { None };
    let mut masks = Vec::with_capacity(all.len());
    for chunk in all.chunks(INFER_CHUNK) {
        let (ids, grids) =
            pollster::block_on(embed_grids(gpu, &cfg, &images_dir, chunk, head.head.grid, head.grid_chw))?;
        if ids.len() != chunk.len() {
            let missing = chunk.iter().find(|s| !ids.contains(&s.id)).map(|s| s.source.clone()).unwrap_or_default();
            return Err(ApiError::bad(format!("{}: {missing} could not be embedded", image.display())));
        }
        for (s, g) in chunk.iter().zip(&grids) {
            let p = pollster::block_on(head.head.predict(gpu, g))?;
            let pred: Vec<u8> = p.iter().map(|&v| (v > 0.5) as u8).collect();
            masks.push(seg::resize_nearest_u8(&pred, oh, ow, s.height as usize, s.width as usize));
        }
    }
    if let Some(grid) = grid {
        return crate::volume::assemble(grid, &all, &masks);
    }
    let s = &all[0];
    let mask = masks.into_iter().next().unwrap_or_default();
    Ok(Prediction { dims: [s.width as usize, s.height as usize, 1], mask, grid: None })
}

/// LiteMedSAM's mask inside `bx` on a 2-D datastore image (0/1, at the image's size).
pub fn infer_box(app: &App, image: &Path, bx: [f64; 4]) -> ApiResult<Prediction> {
    if is_volume(image) {
        return Err(ApiError::bad(format!(
            "{BOX_MODEL} prompts 2-D images with a box; {} is a volume (use {HEAD_MODEL})",
            image.file_name().unwrap_or_default().to_string_lossy()
        )));
    }
    let weights = app.cfg.sam_weights.clone();
    let (_, s) =
        pollster::block_on(medpick_core::segment::segment_file(app.gpu.as_deref(), image, bx, 0, weights.as_deref()))?;
    let mask = s.mask.iter().map(|&v| (v != 0) as u8).collect();
    Ok(Prediction { dims: [s.width, s.height, 1], mask, grid: None })
}
