//! wasm-bindgen API over medpick-core for the browser. Errors become `JsError`s here, at the boundary, with
//! the same messages as the CLI. The page (`web/`) imports the generated `pkg/medpick_wasm.js`.

use medpick_core::features::Encoder;
use medpick_core::gpu::GpuContext;
use medpick_core::io::dicom::DicomInfo;
use medpick_core::io::Window;
use medpick_core::select::{self, Matrix, SelectInput};
use medpick_core::{selftest, upload};
use wasm_bindgen::prelude::*;

mod annotate;

/// True when the browser exposes WebGPU and hands out an adapter.
#[wasm_bindgen]
pub async fn webgpu_available() -> bool {
    wgpu_available().await
}

async fn wgpu_available() -> bool {
    GpuContext::new().await.is_ok()
}

/// Run every kernel's GPU-vs-CPU self-test. With `use_gpu` false, or when no WebGPU adapter exists, only the
/// CPU twins run. Returns JSON: `{ device, gpu_error, reports: [...], kernels: [[name, passed, cases run, cases skipped]...] }`.
#[wasm_bindgen]
pub async fn run_selftest(use_gpu: bool) -> Result<String, JsError> {
    let (ctx, gpu_error) = if use_gpu {
        match GpuContext::new().await {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, Some("WebGPU not requested".to_string()))
    };
    let device = match &ctx {
        Some(c) => {
            let name = if c.info.name.is_empty() { "WebGPU adapter".to_string() } else { c.info.name.clone() };
            format!("{name} ({:?}, {:?})", c.info.backend, c.info.device_type)
        }
        None => "CPU (wasm)".to_string(),
    };
    let reports = selftest::run_all(ctx.as_ref(), |_| true).await;
    let kernels = selftest::summarize(&reports);
    let doc = serde_json::json!({
        "device": device,
        "gpu_error": gpu_error,
        "reports": reports,
        "kernels": kernels,
        "shader_count": medpick_core::gpu::shaders::ALL.len(),
    });
    serde_json::to_string(&doc).map_err(|e| JsError::new(&e.to_string()))
}

fn fixture_tensor(bytes: &[u8], name: &str) -> Result<(Vec<usize>, Vec<f32>), JsError> {
    let w =
        medpick_core::io::weights::read_safetensors_bytes(std::path::Path::new("fixture"), bytes).map_err(js_err)?;
    let t = w.tensors.get(name).ok_or_else(|| JsError::new(&format!("fixture has no tensor {name}")))?;
    let v = match &t.data {
        medpick_core::io::weights::TensorData::F32(v) => v.clone(),
        medpick_core::io::weights::TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
    };
    Ok((t.shape.clone(), v))
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(if a.len() == b.len() { 0.0 } else { f32::INFINITY }, f32::max)
}

/// Encode a LiteMedSAM fixture image on WebGPU and compare with the PyTorch reference. `weights`: the
/// LiteMedSAM wheel (or .pth/.safetensors); `fixture`: e.g. `kvasir_1.safetensors`. Returns JSON
/// `{device, ms, embedding_max_abs_err, pooled_cosine}`.
#[wasm_bindgen]
pub async fn check_litemedsam_fixture(weights: Vec<u8>, fixture: Vec<u8>, gpu: bool) -> Result<String, JsError> {
    use medpick_core::model::tinyvit::TinyVit;
    let ctx = if gpu { Some(GpuContext::new().await.map_err(js_err)?) } else { None };
    let w = medpick_core::io::weights::read_weights_bytes(std::path::Path::new("weights"), &weights).map_err(js_err)?;
    let m = TinyVit::load(&w).map_err(js_err)?.load_on(ctx.as_ref(), Default::default()).map_err(js_err)?;
    let (shape, rgb) = fixture_tensor(&fixture, "image_rgb_u8")?;
    let rgb: Vec<u8> = rgb.iter().map(|&v| v as u8).collect();
    let input = medpick_core::preprocess::litemedsam_from_rgb_u8(&rgb, shape[0], shape[1]);
    let t0 = medpick_core::Instant::now();
    let out = match &ctx {
        Some(ctx) => m.forward(ctx, &input, false).await,
        None => m.forward_cpu(&input, false).await,
    }
    .map_err(js_err)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let (_, want) = fixture_tensor(&fixture, "embedding")?;
    let (_, pooled) = fixture_tensor(&fixture, "pooled")?;
    let dot: f64 = out.pooled.iter().zip(&pooled).map(|(a, b)| *a as f64 * *b as f64).sum();
    let na: f64 = out.pooled.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = pooled.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    let doc = serde_json::json!({
        "device": ctx.as_ref().map_or("cpu (wasm, 1 thread)".into(), |c| format!("{:?} {}", c.info.backend, c.info.name)),
        "ms": ms,
        "embedding_max_abs_err": max_abs(&out.embedding, &want),
        "pooled_cosine": dot / (na * nb),
    });
    Ok(doc.to_string())
}

/// Run a DINOv2 fixture case through the Exec seam, on WebGPU when `gpu` and on the CPU kernels (the app's
/// fallback without WebGPU) otherwise: `weights` = model.safetensors, `config` = config.json text,
/// `inputs`/`outputs` = the fixture files, `case` e.g. "kvasir_2". Returns JSON with the device and the max abs
/// errors against PyTorch.
#[wasm_bindgen]
pub async fn check_dinov2_fixture(
    weights: Vec<u8>,
    config: String,
    inputs: Vec<u8>,
    outputs: Vec<u8>,
    case: String,
    gpu: bool,
) -> Result<String, JsError> {
    use medpick_core::model::dinov2::{Dinov2, Dinov2Config};
    use medpick_core::model::Precision;
    let ctx = if gpu { Some(GpuContext::new().await.map_err(js_err)?) } else { None };
    let w = medpick_core::io::weights::read_weights_bytes(std::path::Path::new("weights"), &weights).map_err(js_err)?;
    let cfg: Dinov2Config = serde_json::from_str(&config).map_err(js_err)?;
    let m = Dinov2::load(&w, Some(cfg)).map_err(js_err)?.load_on(ctx.as_ref(), Precision::F32).map_err(js_err)?;
    let (shape, px) = fixture_tensor(&inputs, &format!("{case}_pixel_values"))?;
    let t0 = medpick_core::Instant::now();
    let out = m.forward_on(ctx.as_ref(), &px, shape[2], shape[3], false).await.map_err(js_err)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let (_, last) = fixture_tensor(&outputs, &format!("{case}_last_hidden_state"))?;
    let (_, pool) = fixture_tensor(&outputs, &format!("{case}_pooler_output"))?;
    let device = match &ctx {
        Some(ctx) => format!("{:?} {}", ctx.info.backend, ctx.info.name),
        None => "cpu (wasm)".to_string(),
    };
    let doc = serde_json::json!({
        "device": device,
        "ms": ms,
        "last_hidden_state_max_abs_err": max_abs(&out.last_hidden_state, &last),
        "pooler_max_abs_err": max_abs(&out.cls, &pool),
    });
    Ok(doc.to_string())
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn json(v: &serde_json::Value) -> String {
    v.to_string()
}

/// The cold-start strategies, in the order `--strategy all` runs them (JSON list of names).
#[wasm_bindgen]
pub fn strategies() -> String {
    json(&serde_json::json!(select::COLD_START))
}

/// The strategy the measured evidence recommends for a pool of unknown kind (a dropped folder has no labels or
/// masks), as `medpick select --strategy auto` picks it: JSON `{name, why}`.
#[wasm_bindgen]
pub fn default_strategy() -> String {
    let (name, why) = medpick_core::select::evidence::auto(None);
    json(&serde_json::json!({ "name": name, "why": why }))
}

/// Plan a dropped folder: `paths` is the JSON list of each file's `webkitRelativePath` (or name). Returns
/// JSON `{order: [index...], rel: [path...], skipped: [[path, reason]...]}`: decode `order`'s files in that
/// order (the CLI's walk order), naming each by `rel`.
#[wasm_bindgen]
pub fn plan_upload(paths: &str) -> Result<String, JsError> {
    let paths: Vec<String> = serde_json::from_str(paths).map_err(|e| js_err(format!("plan_upload: {e}")))?;
    serde_json::to_string(&upload::plan(&paths)).map_err(js_err)
}

/// One decoded file's rows.
struct FileRows {
    rel: String,
    dicom: Option<DicomInfo>,
    /// A NIfTI volume's header and geometry: its slices' masks export as one label volume on its grid.
    volume: Option<medpick_core::io::nifti::VolumeGrid>,
    rows: Vec<Row>,
}

/// One embedded 2-D sample.
pub(crate) struct Row {
    id: String,
    feature: Vec<f32>,
    thumb: Vec<u8>,
    /// Which 2-D sample of its file (for decoding it again), and its size.
    sample: usize,
    width: usize,
    height: usize,
    /// LiteMedSAM's image embedding [256, 64, 64] (the box decoder's and the segmentation head's input), kept
    /// while the session holds less than [`GRID_BYTES`]; computed again from the file when needed otherwise.
    grid: Option<Vec<f32>>,
}

/// Image embeddings kept from the first pass (1 GiB: 256 LiteMedSAM images).
const GRID_BYTES: usize = 1 << 30;

/// A browser session: the device, the model, and the pool embedded so far. All work happens in core; this
/// type only holds state between calls from the page's worker.
#[wasm_bindgen]
pub struct Session {
    gpu: Option<GpuContext>,
    gpu_error: Option<String>,
    encoder: Option<Encoder>,
    model_name: String,
    files: Vec<FileRows>,
    skipped: Vec<(String, String)>,
    /// LiteMedSAM's box-prompt decoder (the annotation view's mask proposals).
    decoder: Option<medpick_core::model::sam_decoder::LoadedSamDecoder>,
    /// The head trained last in this tab (scores the next batch).
    head: Option<annotate::Head>,
    grid_bytes: usize,
    /// Rows whose embedding was computed when opened, beyond the first pass's budget (oldest first).
    extra: std::collections::VecDeque<(usize, usize)>,
}

#[wasm_bindgen]
impl Session {
    /// Open a session on WebGPU when `use_gpu` and an adapter exists, else on the CPU (wasm).
    pub async fn create(use_gpu: bool) -> Session {
        let (gpu, gpu_error) = if use_gpu {
            match GpuContext::new().await {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, Some("WebGPU not requested".to_string()))
        };
        Session {
            gpu,
            gpu_error,
            encoder: None,
            model_name: String::new(),
            files: Vec::new(),
            skipped: Vec::new(),
            decoder: None,
            head: None,
            grid_bytes: 0,
            extra: Default::default(),
        }
    }

    /// Which device runs the work: the WebGPU adapter, or "CPU (wasm)".
    pub fn device(&self) -> String {
        match &self.gpu {
            Some(c) => {
                let name = if c.info.name.is_empty() { "WebGPU adapter".to_string() } else { c.info.name.clone() };
                format!("WebGPU: {name}")
            }
            None => "CPU (wasm)".to_string(),
        }
    }

    /// Why WebGPU is not used, when it is not.
    pub fn gpu_error(&self) -> Option<String> {
        self.gpu_error.clone()
    }

    /// Load a model from a file's bytes (`name` is the file name, for its format and in errors): the
    /// LiteMedSAM wheel, `.pth` or `.safetensors`; or DINOv2 safetensors (WebGPU only). Returns the model name.
    pub fn load_model(&mut self, name: &str, bytes: &[u8]) -> Result<String, JsError> {
        let path = std::path::Path::new(name);
        let w = medpick_core::io::weights::read_weights_bytes(path, bytes).map_err(js_err)?;
        let is_lite = w.tensors.keys().any(|k| k.starts_with("image_encoder.patch_embed"));
        self.head = None;
        let mut decoder = None;
        let enc = if is_lite {
            let dec = medpick_core::model::sam_decoder::SamDecoder::load(&w).map_err(js_err)?;
            decoder = Some(match &self.gpu {
                Some(ctx) => dec.to_gpu(ctx).map_err(js_err)?,
                None => dec.to_cpu().map_err(js_err)?,
            });
            Encoder::litemedsam(self.gpu.as_ref(), &w).map_err(js_err)?
        } else {
            drop(w);
            Encoder::dinov2(self.gpu.as_ref(), "dinov2", path, bytes, None).map_err(js_err)?
        };
        self.model_name = enc.name().to_string();
        self.encoder = Some(enc);
        self.decoder = decoder;
        self.files.clear();
        self.grid_bytes = 0;
        self.extra.clear();
        Ok(self.model_name.clone())
    }

    /// Decode one file and embed its samples. `rel`: its path in the dropped folder (from `plan_upload`).
    /// A file that cannot be decoded is recorded as skipped (not an error); returns JSON
    /// `{ids: [...], skipped: reason | null, ms}`. `on_sample(done, total)` is called after each sample.
    pub async fn add_file(
        &mut self,
        rel: String,
        bytes: Vec<u8>,
        on_sample: Option<js_sys::Function>,
    ) -> Result<String, JsError> {
        let enc = self.encoder.as_ref().ok_or_else(|| JsError::new("no model loaded"))?;
        let t0 = medpick_core::Instant::now();
        let decoded = match upload::decode(&rel, &bytes, Window::File) {
            Ok(d) => d,
            Err(e) => {
                self.skipped.push((rel.clone(), e.to_string()));
                return Ok(json(&serde_json::json!({"ids": [], "skipped": e.to_string(), "ms": 0})));
            }
        };
        drop(bytes);
        let total = decoded.samples.len();
        let mut rows = Vec::with_capacity(total);
        for (k, (id, img)) in decoded.samples.into_iter().enumerate() {
            let (v, grid) = match enc.embed_with_grid(self.gpu.as_ref(), &img).await {
                Ok(v) => v,
                Err(e) => {
                    self.skipped.push((id.clone(), e.to_string()));
                    continue;
                }
            };
            let grid = grid.filter(|g| self.grid_bytes + 4 * g.len() <= GRID_BYTES);
            self.grid_bytes += grid.as_ref().map_or(0, |g| 4 * g.len());
            let thumb = upload::thumbnail_png(&img, 128).unwrap_or_default();
            let (width, height) = (img.width as usize, img.height as usize);
            rows.push(Row { id, feature: v, thumb, sample: k, width, height, grid });
            if let Some(f) = &on_sample {
                let _ = f.call2(&JsValue::NULL, &JsValue::from(k + 1), &JsValue::from(total));
            }
        }
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let doc = serde_json::json!({"ids": ids, "skipped": null, "ms": t0.elapsed().as_secs_f64() * 1e3});
        self.files.push(FileRows { rel, dicom: decoded.dicom, volume: decoded.volume, rows });
        Ok(json(&doc))
    }

    /// Record a file the page could not read at all.
    pub fn skip(&mut self, rel: String, why: String) {
        self.skipped.push((rel, why));
    }

    /// Samples embedded so far.
    pub fn count(&self) -> usize {
        self.files.iter().map(|f| f.rows.len()).sum()
    }

    /// Forget the pool (keeps the model).
    pub fn clear(&mut self) {
        self.files.clear();
        self.skipped.clear();
        self.grid_bytes = 0;
        self.extra.clear();
        self.head = None;
    }

    /// The thumbnail (PNG bytes) of row `row` in the last selection's order.
    pub fn thumbnail(&self, row: usize) -> Vec<u8> {
        self.ordered().0.get(row).map(|r| r.thumb.clone()).unwrap_or_default()
    }

    /// Select `budget` samples with `strategy` and `seed`. Returns JSON with the picks (rank, id, row, score),
    /// notes, every id, the 2-D PCA coordinates of every row, the CSV text (`medpick select`'s format), the
    /// skipped files and the time taken.
    pub async fn select(&self, strategy: String, budget: usize, seed: u64) -> Result<String, JsError> {
        let (rows, gaps) = self.ordered();
        if rows.is_empty() {
            return Err(JsError::new("no images embedded yet: add a folder first"));
        }
        let dim = rows[0].feature.len();
        let mut data = Vec::with_capacity(rows.len() * dim);
        for r in &rows {
            data.extend_from_slice(&r.feature);
        }
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let x = Matrix::new(&data, rows.len(), dim).map_err(js_err)?;
        let t0 = medpick_core::Instant::now();
        let scans = Some(medpick_core::exec::Backend::on(self.gpu.as_ref()));
        let input = SelectInput { x, budget, seed, labeled: &[], scans, weights: None };
        let sel = select::select(&strategy, &input).await.map_err(js_err)?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let pca = select::pca::pca2(x);
        let mut doc = sel.to_json(&ids);
        let skipped: Vec<_> = self.skipped.iter().chain(&gaps).collect();
        doc["ids"] = serde_json::json!(ids);
        doc["pca"] = serde_json::json!(pca);
        doc["csv"] = serde_json::json!(sel.to_csv(&ids));
        doc["skipped"] = serde_json::json!(skipped);
        doc["model"] = serde_json::json!(self.model_name);
        doc["device"] = serde_json::json!(self.device());
        doc["ms"] = serde_json::json!(ms);
        Ok(json(&doc))
    }
}

impl Session {
    /// Rows in the CLI's order (non-DICOM files in walk order, then DICOM series), and series dropped for gaps.
    fn ordered(&self) -> (Vec<&Row>, Vec<(String, String)>) {
        let (at, gaps) = self.places();
        (at.iter().map(|&(f, r)| &self.files[f].rows[r]).collect(), gaps)
    }

    /// (file, row within it) of each row in the CLI's order, and series dropped for gaps.
    #[allow(clippy::type_complexity)]
    fn places(&self) -> (Vec<(usize, usize)>, Vec<(String, String)>) {
        let files: Vec<(String, Option<DicomInfo>)> =
            self.files.iter().map(|f| (f.rel.clone(), f.dicom.clone())).collect();
        let (order, gaps) = upload::order(&files);
        (order.iter().flat_map(|&i| (0..self.files[i].rows.len()).map(move |r| (i, r))).collect(), gaps)
    }
}
