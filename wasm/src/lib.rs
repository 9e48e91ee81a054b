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
