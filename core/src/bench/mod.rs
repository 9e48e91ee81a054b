//! Model and selection benchmarks (`medpick bench encoder`, `medpick bench select`). Kernel throughput
//! (`medpick bench kernels`) lives with the kernels: [`medpick_kernels::bench`], re-exported here.

#[cfg(not(target_arch = "wasm32"))]
pub mod composable;
pub mod select_grid;
#[cfg(not(target_arch = "wasm32"))]
pub mod vs_torch;

use serde::Serialize;

use crate::gpu::GpuContext;
use crate::rng::Rng;
use crate::{Instant, Result};
pub use medpick_kernels::bench::{kernels, median, table as kernels_table, BenchOptions, KernelBench};
#[cfg(not(target_arch = "wasm32"))]
pub use vs_torch::cpu_gemm_vs_numpy;

/// One row of `medpick bench encoder`.
#[derive(Clone, Debug, Serialize)]
pub struct EncoderBench {
    pub model: String,
    /// Storage of the matmul weights: f32 or f16 (`--precision`).
    pub precision: crate::model::Precision,
    /// Bytes of the model's parameters on the device.
    pub weight_bytes: u64,
    /// Images per timed run.
    pub batch: usize,
    /// Images per forward pass within the run: DINOv2 encodes a run's images in batched passes (split only
    /// where the device's binding limit requires), LiteMedSAM one image per pass.
    pub images_per_pass: usize,
    pub seconds: f64,
    pub images_per_s: f64,
    pub ms_per_image: f64,
    pub gflop_per_image: f64,
    pub gflops: f64,
    /// Peak live device buffer memory during the run (wgpu-hal's counter, sampled at every allocation; weights
    /// included; 0 where the backend keeps no counter, and on the CPU backend).
    pub peak_gpu_bytes: u64,
    /// `gpu` or `cpu` (the CPU backend), and its threads (0 on the GPU).
    pub backend: &'static str,
    pub threads: usize,
    /// The process's peak resident host memory at the end of the run (Linux VmHWM; 0 where unknown): it only
    /// grows, so a row is the peak of everything up to it.
    pub peak_host_bytes: u64,
}

impl EncoderBench {
    /// A row from a timed run of `batch` images taking `seconds`, at `gflop` per image.
    fn from_run(m: &ModelRun, batch: usize, seconds: f64, gflop: f64, peak_gpu_bytes: u64, on_gpu: bool) -> Self {
        EncoderBench {
            model: m.name.clone(),
            precision: m.precision,
            weight_bytes: m.weight_bytes,
            batch,
            images_per_pass: batch.min(m.max_pass),
            seconds,
            images_per_s: batch as f64 / seconds,
            ms_per_image: seconds * 1e3 / batch as f64,
            gflop_per_image: gflop,
            gflops: gflop * batch as f64 / seconds,
            peak_gpu_bytes,
            backend: if on_gpu { "gpu" } else { "cpu" },
            threads: if on_gpu { 0 } else { crate::cpu::par::threads() },
            peak_host_bytes: peak_host_bytes(),
        }
    }
}

/// The process's peak resident memory (VmHWM of /proc/self/status), 0 where that cannot be read.
pub fn peak_host_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        })
        .map_or(0, |kb| kb * 1024)
}

/// `medpick bench encoder`'s result: one row per batch size, and with `profile`, where one more image's time
/// went, kernel by kernel (slowest first).
#[derive(Clone, Debug, Serialize)]
pub struct EncoderReport {
    pub rows: Vec<EncoderBench>,
    pub profile: Vec<crate::gpu::KernelTime>,
}

/// The model a bench run times: its name, weight storage and parameter bytes on the device.
struct ModelRun {
    name: String,
    precision: crate::model::Precision,
    weight_bytes: u64,
    /// Most images one forward pass takes.
    max_pass: usize,
}

/// One warm-up image, then `batch` images per timed run for every batch size (peak device memory per run);
/// with `profile`, one more image with per-kernel profiling on. `forward(b)` encodes b images.
async fn timed_runs(
    ctx: Option<&GpuContext>,
    model: &ModelRun,
    batches: &[usize],
    gflop: f64,
    profile: bool,
    forward: impl AsyncFn(usize) -> Result<()>,
) -> Result<EncoderReport> {
    forward(1).await?;
    let mut rows = Vec::new();
    for &b in batches {
        let peak = || ctx.map_or(0, |c| c.take_peak_buffer_bytes());
        peak();
        let t = Instant::now();
        forward(b).await?;
        let seconds = t.elapsed().as_secs_f64();
        rows.push(EncoderBench::from_run(model, b, seconds, gflop, peak(), ctx.is_some()));
    }
    let mut kernels = Vec::new();
    if let (true, Some(ctx)) = (profile, ctx) {
        ctx.set_profiling(true);
        let r = forward(1).await;
        kernels = ctx.profile();
        ctx.set_profiling(false);
        r?;
    }
    Ok(EncoderReport { rows, profile: kernels })
}

/// Time the LiteMedSAM encoder on random 256×256 inputs, `batch` images per run, after one warm-up image.
pub async fn encoder_litemedsam(
    ctx: Option<&GpuContext>,
    model: &crate::model::tinyvit::LoadedTinyVit,
    batches: &[usize],
    profile: bool,
) -> Result<EncoderReport> {
    let mut rng = Rng::new(7);
    let input = rng.uniform_vec(3 * 256 * 256, 0.0, 1.0);
    let gflop = crate::model::tinyvit::flops() / 1e9;
    let run = ModelRun {
        name: "litemedsam".into(),
        precision: model.precision(),
        weight_bytes: model.param_bytes(),
        max_pass: 1,
    };
    timed_runs(ctx, &run, batches, gflop, profile, async |b| {
        for _ in 0..b {
            std::hint::black_box(match ctx {
                Some(ctx) => model.forward(ctx, &input, false).await?,
                None => model.forward_cpu(&input, false).await?,
            });
        }
        Ok(())
    })
    .await
}

/// Time a DINOv2 with the shapes of a released model (`size`: small, base, large or giant; 224×224, no
/// registers) and random weights, the matmul weights stored in `precision`.
pub async fn encoder_dinov2_shape(
    ctx: Option<&GpuContext>,
    size: &str,
    batches: &[usize],
    profile: bool,
    precision: crate::model::Precision,
) -> Result<EncoderReport> {
    use crate::model::dinov2::{random_weights, Dinov2, Dinov2Config};
    let cfg = Dinov2Config::released(size).ok_or_else(|| crate::Error::Unknown {
        kind: "DINOv2 size",
        name: size.to_string(),
        known: "small, base, large, giant".into(),
    })?;
    let w = random_weights(&cfg, 11);
    let m = Dinov2::load(&w, Some(cfg.clone()))?.load_on(ctx, precision)?;
    drop(w);
    let input = Rng::new(12).uniform_vec(3 * 224 * 224, -2.0, 2.0);
    // FLOPs: patch embedding + per layer qkv, attention (QK and PV), output, FFN (first linear 2H wide for SwiGLU).
    let (s, df, hid) = (257.0, cfg.hidden_size as f64, cfg.ffn_hidden() as f64);
    let f1 = if cfg.use_swiglu_ffn { 2.0 * hid } else { hid };
    let gflop = (2.0 * 256.0 * df * 588.0
        + cfg.num_hidden_layers as f64
            * (2.0 * s * 3.0 * df * df + 2.0 * 2.0 * s * s * df + 2.0 * s * df * df + 2.0 * s * df * (f1 + hid)))
        / 1e9;
    let run = ModelRun {
        name: format!("dinov2-{size}-shape"),
        precision,
        weight_bytes: m.param_bytes(),
        max_pass: ctx.map_or(usize::MAX, |c| m.max_batch(c, 224, 224)),
    };
    timed_runs(ctx, &run, batches, gflop, profile, async |b| {
        let inputs = vec![input.as_slice(); b];
        std::hint::black_box(m.forward_batch_on(ctx, &inputs, 224, 224, false, b).await?);
        Ok(())
    })
    .await
}

/// Synthetic features for `bench select`: a seeded mixture of 64 Gaussian clusters (centres N(0, 1), spread
/// 0.5) in `d` dimensions, so clustering, kNN and coverage see structure rather than uniform noise.
pub fn synthetic_features(n: usize, d: usize, seed: u64) -> Vec<f32> {
    synthetic_labelled(n, d, seed, false).0
}

/// [`synthetic_features`] with clusters of unequal sizes: cluster c is drawn with probability ∝ 1/(c + 1) (the
/// largest of the 64 holds about a fifth of the rows, the smallest 0.3 %).
pub fn synthetic_features_skewed(n: usize, d: usize, seed: u64) -> Vec<f32> {
    synthetic_labelled(n, d, seed, true).0
}

/// The synthetic features and each row's cluster (of 64): equal sizes, or `skewed`.
pub fn synthetic_labelled(n: usize, d: usize, seed: u64, skewed: bool) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed ^ if skewed { 0x5ce3_ed00 } else { 0x005e_1ec7 });
    let k = 64;
    let centers: Vec<f32> = (0..k * d).map(|_| rng.normal()).collect();
    let cum: Vec<f64> = (0..k)
        .scan(0.0, |a, c| {
            *a += 1.0 / (c + 1) as f64;
            Some(*a)
        })
        .collect();
    let (mut x, mut labels) = (Vec::with_capacity(n * d), Vec::with_capacity(n));
    for _ in 0..n {
        let c = if skewed {
            let u = rng.next_f64() * cum[k - 1];
            cum.partition_point(|&v| v <= u).min(k - 1)
        } else {
            rng.below(k as u32) as usize
        };
        labels.push(c as u32);
        x.extend(centers[c * d..(c + 1) * d].iter().map(|&m| m + 0.5 * rng.normal()));
    }
    (x, labels)
}

/// One cell of `bench select`: a strategy on n × d features in the scans of one backend.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SelectCell {
    pub strategy: String,
    /// "gpu" or "cpu", and the CPU backend's threads (0 on the GPU).
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub threads: usize,
    pub n: usize,
    pub d: usize,
    pub budget: usize,
    pub seconds: f64,
    /// Peak live device buffer memory during the selection (wgpu-hal's counter, sampled at every allocation).
    pub peak_gpu_bytes: u64,
    pub picks: usize,
    pub notes: Vec<String>,
}

/// Time one strategy in the scans of `ctx` (the GPU) or of the CPU backend (features already in host memory;
/// uploading them is part of the time).
pub async fn select_cell(
    ctx: Option<&GpuContext>,
    x: &[f32],
    n: usize,
    d: usize,
    strategy: &str,
    budget: usize,
) -> Result<SelectCell> {
    let m = crate::select::Matrix::new(x, n, d)?;
    let scans = Some(crate::exec::Backend::on(ctx));
    let input = crate::select::SelectInput { x: m, budget, seed: 0, labeled: &[], scans, weights: None };
    if let Some(c) = ctx {
        c.take_peak_buffer_bytes();
    }
    let t = Instant::now();
    let sel = crate::select::select_on(strategy, &input).await?;
    let seconds = t.elapsed().as_secs_f64();
    Ok(SelectCell {
        strategy: strategy.to_string(),
        backend: if ctx.is_some() { "gpu" } else { "cpu" }.into(),
        threads: if ctx.is_some() { 0 } else { crate::cpu::par::threads() },
        n,
        d,
        budget,
        seconds,
        peak_gpu_bytes: ctx.map_or(0, |c| c.take_peak_buffer_bytes()),
        picks: sel.picks.len(),
        notes: sel.notes,
    })
}

/// The table `medpick bench encoder` prints, with f16's speed relative to f32 where both ran.
pub fn encoder_table(rows: &[EncoderBench]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>7} {:>5} {:>6} {:>8} {:>10} {:>10} {:>12} {:>10} {:>12} {:>13} {:>11} {:>12}",
        "model",
        "backend",
        "prec",
        "batch",
        "per pass",
        "images/s",
        "ms/image",
        "GFLOP/image",
        "GFLOP/s",
        "peak GPU MB",
        "peak host MB",
        "weights MB",
        "vs f32 speed"
    );
    for r in rows {
        let peak = if r.peak_gpu_bytes > 0 { format!("{:.1}", r.peak_gpu_bytes as f64 / 1e6) } else { "n/a".into() };
        // The same batch in f32 in this run, when there is one: f32 ms/image ÷ this row's (above 1: faster).
        let base = rows.iter().find(|b| b.batch == r.batch && b.precision == crate::model::Precision::F32);
        let ratio = match base {
            Some(b) if b.precision != r.precision => format!("{:.2}x", b.ms_per_image / r.ms_per_image),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<20} {:>7} {:>5} {:>6} {:>8} {:>10.3} {:>10.1} {:>12.2} {:>10.2} {:>12} {:>13.1} {:>11.1} {:>12}",
            r.model,
            if r.backend == "cpu" { format!("cpu x{}", r.threads) } else { "gpu".into() },
            r.precision.name(),
            r.batch,
            r.images_per_pass,
            r.images_per_s,
            r.ms_per_image,
            r.gflop_per_image,
            r.gflops,
            peak,
            r.peak_host_bytes as f64 / 1e6,
            r.weight_bytes as f64 / 1e6,
            ratio
        );
    }
    let _ = writeln!(
        out,
        "(per pass: images in one forward pass — DINOv2 batches a run's images, LiteMedSAM encodes one at a time; \
         peak GPU memory = live device buffers, weights included; peak host = the process's resident peak so far)"
    );
    out
}

/// Where one image's time went, kernel by kernel (`bench encoder --profile`).
pub fn profile_table(p: &str, kernels: &[crate::gpu::KernelTime]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let total: f64 = kernels.iter().map(|k| k.seconds).sum();
    let _ = writeln!(
        out,
        "\nprofile of one image, {p} weights ({:.1} ms in kernels, each submitted and waited for alone):",
        total * 1e3
    );
    let _ = writeln!(out, "{:<21} {:>6} {:>10} {:>7}", "kernel", "calls", "ms", "share");
    for k in kernels {
        let _ = writeln!(
            out,
            "{:<21} {:>6} {:>10.1} {:>6.1}%",
            k.kernel,
            k.calls,
            k.seconds * 1e3,
            100.0 * k.seconds / total.max(1e-12)
        );
    }
    out
}

/// Every `bench encoder` row for `model` (litemedsam with its weights, or dinov2-{small,base,large,giant}-shape
/// with random weights) at each batch and weight precision, with each precision's kernel profile when asked.
pub async fn encoder_runs(
    ctx: Option<&GpuContext>,
    model: &str,
    weights: Option<&std::path::Path>,
    batches: &[usize],
    profile: bool,
    precisions: &[crate::model::Precision],
) -> Result<(Vec<EncoderBench>, Vec<(&'static str, Vec<crate::gpu::KernelTime>)>)> {
    let size = model.strip_prefix("dinov2-").and_then(|s| s.strip_suffix("-shape"));
    if model != "litemedsam" && size.is_none() {
        return Err(crate::Error::setting("model", model, "use litemedsam or dinov2-{small,base,large,giant}-shape"));
    }
    let tiny = match model {
        "litemedsam" => {
            let path = match weights {
                Some(p) => p.to_path_buf(),
                None => crate::io::weights::default_litemedsam_path()?,
            };
            Some(crate::model::tinyvit::TinyVit::load(&crate::io::weights::read_weights(&path)?)?)
        }
        _ => None,
    };
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    for &p in precisions {
        let report = match (&tiny, size) {
            (Some(t), _) => {
                let m = t.load_on(ctx, p)?;
                encoder_litemedsam(ctx, &m, batches, profile).await?
            }
            (None, Some(size)) => encoder_dinov2_shape(ctx, size, batches, profile, p).await?,
            (None, None) => continue,
        };
        rows.extend(report.rows);
        if profile {
            profiles.push((p.name(), report.profile));
        }
    }
    Ok((rows, profiles))
}
