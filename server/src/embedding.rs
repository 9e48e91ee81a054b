//! The embedding side of the server: a datastore image's 2-D samples (the image, a volume's or series' slices),
//! embedded in the background through core's feature cache, each image's feature the mean of its samples'.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use medpick_core::embed::features::{embed_samples, Encoder, Pool as PoolKind};
use medpick_core::embed::EmbedConfig;
use medpick_core::manifest::{IngestOptions, Sample};

use crate::pool::{Features, Selector};

/// Slices embedded per volume (evenly spaced over its middle 60 %), whose mean is the volume's feature.
pub const VOLUME_SLICES: usize = 5;

/// Where the background embedding stands.
#[derive(Default)]
pub struct EmbedProgress {
    pub total: AtomicUsize,
    pub done: AtomicUsize,
    pub state: Mutex<String>,
    /// (image id, why) for images that could not be embedded.
    pub skipped: Mutex<Vec<(String, String)>>,
}

/// The 2-D samples medpick embeds for one datastore image: the image itself, or [`VOLUME_SLICES`] axial slices of a
/// volume.
pub fn samples_of(root: &Path, file: &Path) -> Result<Vec<Sample>, String> {
    Ok(pick_slices(all_samples(root, file)?))
}

/// Every 2-D sample of one datastore image (a series' or volume's every slice), sources relative to `root`.
pub fn all_samples(root: &Path, file: &Path) -> Result<Vec<Sample>, String> {
    let mut all = Vec::new();
    let opts = IngestOptions::default();
    let report = medpick_core::manifest::ingest(
        file,
        &opts,
        &mut |s| {
            all.push(s.clone());
            Ok(())
        },
        &mut |_, _, _| {},
    )
    .map_err(|e| e.to_string())?;
    // In a series' folder only its own DICOM files count: a note or a thumbnail beside the slices is not an error,
    // and neither a file in a sub-folder nor a link that leads out of the folder is a slice (the
    // series is the folder's own files, what its zip holds).
    let folder = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let own = |p: &Path| std::fs::canonicalize(p).is_ok_and(|c| c.parent() == Some(folder.as_path()));
    let counts =
        |p: &str| !file.is_dir() || (medpick_core::io::dicom::is_dicom_path(&file.join(p)) && own(&file.join(p)));
    if let Some((p, why)) = report.skipped.iter().find(|(p, _)| counts(p)) {
        return Err(format!("{p}: {why}"));
    }
    if all.is_empty() {
        return Err(format!("{}: no image in it", file.display()));
    }
    // ingest made sources relative to the file's folder (a series' own folder); the embedding root is the
    // images folder.
    let parent = if file.is_dir() { file } else { file.parent().unwrap_or(root) };
    for s in all.iter_mut() {
        let abs = parent.join(&s.source);
        s.source = abs.strip_prefix(root).unwrap_or(&abs).to_string_lossy().into_owned();
    }
    if file.is_dir() {
        // A DICOM series: ingest orders its slices along the normal; other files in the folder are not slices.
        all.retain(|s| medpick_core::io::dicom::is_dicom_path(&root.join(&s.source)) && own(&root.join(&s.source)));
        // Slice ids are relative to the series' folder: its name in front keeps two series' slices apart.
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for s in all.iter_mut() {
            s.id = format!("{name}/{}", s.id);
        }
        if all.is_empty() {
            return Err(format!("{}: no DICOM slice in it", file.display()));
        }
    }
    Ok(all)
}

/// [`VOLUME_SLICES`] slices evenly spaced over a volume's middle 60 % (an image's one sample stays as it is).
fn pick_slices(mut all: Vec<Sample>) -> Vec<Sample> {
    if all.len() > VOLUME_SLICES {
        let n = all.len();
        let pick: Vec<Sample> = (0..VOLUME_SLICES)
            .map(|k| {
                let f = 0.2 + 0.6 * (k as f64 + 0.5) / VOLUME_SLICES as f64;
                all[((f * n as f64) as usize).min(n - 1)].clone()
            })
            .collect();
        all = pick;
    }
    all
}

/// Embed the images `todo` ((id, file)) and add their features to `sel` (image feature = mean of its samples').
pub fn embed_images(
    sel: &Selector,
    gpu: Option<&medpick_core::gpu::GpuContext>,
    cfg: &EmbedConfig,
    images_dir: &Path,
    todo: &[(String, PathBuf)],
) -> Result<(), String> {
    let p = &sel.progress;
    let mut samples = Vec::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    for (id, file) in todo {
        match samples_of(images_dir, file) {
            Ok(ss) => {
                for s in ss {
                    owner.insert(s.id.clone(), id.clone());
                    samples.push(s);
                }
            }
            Err(why) => {
                p.skipped.lock().map(|mut v| v.push((id.clone(), why))).ok();
            }
        }
    }
    p.total.fetch_add(todo.len(), Ordering::Relaxed);
    let base_done = p.done.load(Ordering::Relaxed);
    let pool = PoolKind::parse(&cfg.pool).map_err(|e| e.to_string())?;
    let window = medpick_core::io::Window::parse(&cfg.window).map_err(|e| e.to_string())?;
    let mut encoder =
        Encoder::load_with(gpu, &cfg.model, cfg.weights.as_deref(), cfg.precision).map_err(|e| e.to_string())?;
    encoder.set_batch(cfg.batch);
    let cache = cfg.cache_dir();
    let images_of_done = |done: usize| -> usize {
        // Progress in images: samples done, mapped to their images.
        let mut seen = HashSet::new();
        for s in &samples[..done.min(samples.len())] {
            seen.insert(owner.get(&s.id));
        }
        seen.len()
    };
    let (f, report) = pollster::block_on(embed_samples(
        gpu,
        &encoder,
        images_dir,
        &samples,
        pool,
        window,
        cache.as_deref(),
        None,
        &mut |done, _, _| {
            if done % 4 == 0 || done == samples.len() {
                p.done.store(base_done + images_of_done(done), Ordering::Relaxed);
            }
        },
    ))
    .map_err(|e| e.to_string())?;
    p.done.store(base_done + todo.len(), Ordering::Relaxed);
    let mut bad: HashSet<String> = HashSet::new();
    for (sid, why) in &report.skipped {
        if let Some(id) = owner.get(sid) {
            if bad.insert(id.clone()) {
                p.skipped.lock().map(|mut v| v.push((id.clone(), why.clone()))).ok();
            }
        }
    }
    // Mean of each image's samples (an image with any sample that failed is left out whole: no partial volume).
    let mut sums: HashMap<String, (Vec<f64>, usize)> = HashMap::new();
    let mut order = Vec::new();
    for (i, sid) in f.ids.iter().enumerate() {
        let Some(id) = owner.get(sid) else { continue };
        if bad.contains(id) {
            continue;
        }
        let e = sums.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            (vec![0.0; f.dim], 0)
        });
        for (a, &v) in e.0.iter_mut().zip(f.row(i)) {
            *a += v as f64;
        }
        e.1 += 1;
    }
    let mut guard = sel.features.write().map_err(|_| "lock".to_string())?;
    let mut next = Features {
        ids: guard.ids.clone(),
        index: guard.index.clone(),
        dim: f.dim,
        data: guard.data.clone(),
        generation: guard.generation + 1,
    };
    if !next.ids.is_empty() && next.dim != guard.dim {
        return Err(format!("feature size changed from {} to {}", guard.dim, f.dim));
    }
    for id in order {
        let (s, k) = &sums[&id];
        if next.index.contains_key(&id) {
            continue;
        }
        if s.iter().any(|v| !v.is_finite()) {
            p.skipped.lock().map(|mut v| v.push((id.clone(), "non-finite features".into()))).ok();
            continue;
        }
        next.index.insert(id.clone(), next.ids.len());
        next.ids.push(id);
        next.data.extend(s.iter().map(|v| (v / *k as f64) as f32));
    }
    *guard = Arc::new(next);
    Ok(())
}
