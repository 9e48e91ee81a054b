//! Embedding a dataset: [`features`] holds the encoders, the feature file and the per-sample cache; this module
//! turns a model configuration ([`EmbedConfig`], what `--model --weights --pool --window --cache --precision
//! --embed-batch` say) into features or feature grids of a list of samples, reporting progress.

mod cache_entry;
pub mod features;
pub mod parts;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::data::augment::IntensityVariant;
use crate::data::io::Window;
use crate::data::manifest::Sample;
use crate::gpu::GpuContext;
use crate::model::Precision;
use crate::train::grid::{chw_to_hwc, GridShape};
use crate::Result;
use features::{Encoder, Features, Pool};

/// Which encoder, from which weights, pooled how, and where its features are cached.
#[derive(Clone, Debug)]
pub struct EmbedConfig {
    /// litemedsam, dinov2 (and its variants), pixels or pixels:N.
    pub model: String,
    /// Weights file; None: the model's default location.
    pub weights: Option<PathBuf>,
    /// mean, cls or grid.
    pub pool: String,
    /// Intensity window of DICOM/NIfTI inputs.
    pub window: String,
    /// Feature cache folder; "none" disables it; None: `<cache dir>/features`.
    pub cache: Option<String>,
    pub precision: Precision,
    /// Images per encoder pass.
    pub batch: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            model: "litemedsam".into(),
            weights: None,
            pool: "mean".into(),
            window: "file".into(),
            cache: None,
            precision: Precision::F32,
            batch: features::DINOV2_BATCH,
        }
    }
}

impl EmbedConfig {
    /// The feature cache folder this configuration uses (None: no cache).
    pub fn cache_dir(&self) -> Option<PathBuf> {
        match self.cache.as_deref() {
            Some("none") => None,
            Some(p) => Some(PathBuf::from(p)),
            None => Some(crate::data::io::weights::cache_dir().join("features")),
        }
    }
}

/// Features of `samples` (ids of the ones that could not be embedded are reported as notes and left out).
pub async fn embed_features(
    ctx: Option<&GpuContext>,
    cfg: &EmbedConfig,
    root: &Path,
    samples: &[Sample],
) -> Result<Features> {
    embed_features_with(ctx, cfg, root, samples, None).await
}

/// [`embed_features`] of an intensity variant of every image (`None`: the images as they are).
pub async fn embed_features_with(
    ctx: Option<&GpuContext>,
    cfg: &EmbedConfig,
    root: &Path,
    samples: &[Sample],
    intensity: Option<IntensityVariant>,
) -> Result<Features> {
    let pool = Pool::parse(&cfg.pool)?;
    let window = Window::parse(&cfg.window)?;
    let mut encoder = Encoder::load_with(ctx, &cfg.model, cfg.weights.as_deref(), cfg.precision)?;
    encoder.set_batch(cfg.batch);
    let cache = cfg.cache_dir();
    let pb = crate::progress::bar("embed");
    pb.set_length(samples.len() as u64);
    let t0 = crate::Instant::now();
    let mut fresh = 0usize;
    let on = if ctx.is_some() { "on the GPU" } else { "on the CPU" };
    let (f, report) = features::embed_samples(
        ctx,
        &encoder,
        root,
        samples,
        pool,
        window,
        cache.as_deref(),
        intensity,
        &mut |done, _total, hit| {
            if !hit {
                fresh += 1;
            }
            pb.set_position(done as u64);
            let secs = t0.elapsed().as_secs_f64();
            pb.set_message(format!("{:.2} images/s {on} ({} from cache)", fresh as f64 / secs.max(1e-9), done - fresh));
        },
    )
    .await?;
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    note!(
        "embedded {} samples with {} in {:.1} s ({} new, {:.2} images/s; {} from cache)",
        f.ids.len(),
        encoder.name(),
        secs,
        report.embedded,
        report.embedded as f64 / secs.max(1e-9),
        report.from_cache
    );
    for (id, why) in &report.skipped {
        note!("skipped {id}: {why}");
    }
    // Every input failing is an error, not an empty success.
    if f.ids.is_empty() && !samples.is_empty() {
        let first = report.skipped.first().map(|(id, why)| format!(" (the first, {id}: {why})")).unwrap_or_default();
        return Err(crate::Error::Invalid(format!("none of the {} samples could be embedded{first}", samples.len())));
    }
    Ok(f)
}

/// LiteMedSAM's image embedding: 256 channels at 64×64 (channels first from the encoder).
pub const SAM_GRID: GridShape = GridShape { c: 256, h: 64, w: 64 };

/// Feature grids (channels-last) of `samples`, with their ids (samples that could not be embedded are skipped
/// and reported by [`embed_features`]). `chw`: the encoder's grid is channels-first.
pub async fn embed_grids(
    ctx: Option<&GpuContext>,
    cfg: &EmbedConfig,
    root: &Path,
    samples: &[Sample],
    shape: GridShape,
    chw: bool,
) -> Result<(Vec<String>, Vec<Vec<f32>>)> {
    embed_grids_with(ctx, cfg, root, samples, shape, chw, None).await
}

/// [`embed_grids`] of an intensity variant of every image (`None`: the images as they are).
async fn embed_grids_with(
    ctx: Option<&GpuContext>,
    cfg: &EmbedConfig,
    root: &Path,
    samples: &[Sample],
    shape: GridShape,
    chw: bool,
    intensity: Option<IntensityVariant>,
) -> Result<(Vec<String>, Vec<Vec<f32>>)> {
    let m = EmbedConfig { pool: "grid".into(), ..cfg.clone() };
    let f = embed_features_with(ctx, &m, root, samples, intensity).await?;
    if f.dim != shape.len() {
        bail!("{}: grid of {} values, expected {}×{}×{}", cfg.model, f.dim, shape.c, shape.h, shape.w);
    }
    let grids = (0..f.ids.len())
        .map(|i| if chw { chw_to_hwc(f.row(i), shape.c, shape.h, shape.w) } else { f.row(i).to_vec() })
        .collect();
    Ok((f.ids, grids))
}

/// The grids of `k` intensity variants (seed `seed`) of every sample of `ids` (channels-last), in the order of
/// `ids`: `out[i][j]` is variant j + 1 of `ids[i]`. Empty when `k` is 0.
#[allow(clippy::too_many_arguments)] // embed_grids' arguments, the ids to align to, and the variants
pub async fn embed_variant_grids(
    ctx: Option<&GpuContext>,
    cfg: &EmbedConfig,
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
    let by_id: HashMap<&str, &Sample> = samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let todo: Vec<Sample> = ids.iter().filter_map(|id| by_id.get(id.as_str()).map(|s| (*s).clone())).collect();
    let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(k); ids.len()];
    for index in 1..=k {
        note!("intensity variant {index} of {k} of {} images", todo.len());
        let v = IntensityVariant { seed, index };
        let (vids, grids) = Box::pin(embed_grids_with(ctx, cfg, root, &todo, shape, chw, Some(v))).await?;
        let mut by_id: HashMap<String, Vec<f32>> = vids.into_iter().zip(grids).collect();
        for (i, id) in ids.iter().enumerate() {
            let Some(g) = by_id.remove(id) else { bail!("{id}: intensity variant {index} could not be embedded") };
            out[i].push(g);
        }
    }
    Ok(out)
}
