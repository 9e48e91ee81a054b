//! `medpick bench encoder --vs-torch`: medpick's encoder and PyTorch's reference of the same model (same input
//! size, same thread count) timed in one run, at 1 and 2 threads and every core, with the ratio. PyTorch runs in
//! a child (`bench/torch_encoder.py`) with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment
//! (set on some machines, they force an old BLAS kernel). Native only.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::{encoder_runs, EncoderBench};
use crate::gpu::GpuContext;
use crate::{cpu, Instant, Result};

/// PyTorch's side of one thread count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TorchRun {
    pub torch: String,
    pub threads: usize,
    #[serde(default)]
    pub cpu_capability: Option<String>,
    pub rows: Vec<TorchRow>,
    pub peak_host_bytes: u64,
    #[serde(default)]
    pub threadpools: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TorchRow {
    pub batch: usize,
    pub seconds: f64,
    pub ms_per_image: f64,
    pub images_per_s: f64,
}

/// One thread count: medpick's rows, PyTorch's (or why there are none), and the machine's measured fp32 GEMM
/// peak on those threads.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadRun {
    pub threads: usize,
    pub medpick: Vec<EncoderBench>,
    pub torch: Option<TorchRun>,
    pub torch_unavailable: Option<String>,
    pub peak_gflops: f64,
}

/// The best of three 1024³ single-precision GEMMs on the CPU backend's current threads, in GFLOP/s: the
/// machine's measured fp32 peak the encoder's GFLOP/s is a fraction of.
pub fn measured_peak_gflops() -> f64 {
    let n = 1024;
    let a = crate::rng::Rng::new(3).uniform_vec(n * n, -1.0, 1.0);
    let b = crate::rng::Rng::new(4).uniform_vec(n * n, -1.0, 1.0);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(cpu::matmul(&a, &b, None, n, n, n, false));
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// PyTorch's timing of `model` on `threads` threads, or why it could not run.
pub fn torch_run(
    python: &str,
    script: &Path,
    model: &str,
    threads: usize,
    batches: &[usize],
) -> std::result::Result<TorchRun, String> {
    let list: Vec<String> = batches.iter().map(|b| b.to_string()).collect();
    let out = Command::new(python)
        .arg(script)
        .args(["--model", model, "--threads", &threads.to_string(), "--batches", &list.join(",")])
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .map_err(|e| format!("could not run {python}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        if let Some(why) = v.get("unavailable").and_then(|w| w.as_str()) {
            return Err(why.to_string());
        }
        if out.status.success() {
            return serde_json::from_value(v).map_err(|e| format!("{}: unexpected output ({e})", script.display()));
        }
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!("{} failed ({}): {}", script.display(), out.status, err.lines().last().unwrap_or("").trim()))
}

/// The thread counts compared: 1, 2 and every core (each once).
pub fn thread_counts() -> Vec<usize> {
    let mut t = vec![1, 2, cpu::par::cores()];
    t.sort_unstable();
    t.dedup();
    t
}

/// medpick (on `ctx`, or the CPU backend) and PyTorch at each thread count.
#[allow(clippy::too_many_arguments)] // the encoder bench's settings and the peer's
pub async fn compare(
    ctx: Option<&GpuContext>,
    model: &str,
    weights: Option<&Path>,
    batches: &[usize],
    precision: crate::model::Precision,
    python: &str,
    script: &Path,
    threads: &[usize],
) -> Result<Vec<ThreadRun>> {
    let before = cpu::par::threads();
    let mut runs = Vec::new();
    for &t in threads {
        cpu::par::set_threads(t);
        let (medpick, _) = encoder_runs(ctx, model, weights, batches, false, &[precision]).await?;
        let peak_gflops = if ctx.is_none() { measured_peak_gflops() } else { 0.0 };
        let (torch, torch_unavailable) = match torch_run(python, script, model, t, batches) {
            Ok(r) => (Some(r), None),
            Err(why) => (None, Some(why)),
        };
        runs.push(ThreadRun { threads: t, medpick, torch, torch_unavailable, peak_gflops });
    }
    cpu::par::set_threads(before);
    Ok(runs)
}

/// The whole comparison on `dev`'s backend (a thread sweep on the CPU backend, the current threads on a GPU):
/// the JSON document and the table.
pub async fn run(
    dev: &crate::device::Device,
    model: &str,
    weights: Option<&Path>,
    batches: &[usize],
    precision: crate::model::Precision,
    python: &str,
    script: &Path,
) -> Result<(serde_json::Value, String)> {
    let ctx = dev.gpu.as_ref();
    let threads = if ctx.is_some() { vec![cpu::par::threads()] } else { thread_counts() };
    let runs = compare(ctx, model, weights, batches, precision, python, script, &threads).await?;
    let doc = serde_json::json!({"backend": dev.reason, "cpu_simd": cpu::math::simd_level(),
        "adapter": ctx.map(|c| c.report()), "runs": runs});
    Ok((doc, table(&runs)))
}

/// The comparison table: per thread count and batch, both times and medpick's speed relative to PyTorch's
/// (above 1: medpick is faster), GFLOP/s and their fraction of the measured peak, peak host memory.
pub fn table(runs: &[ThreadRun]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>7} {:>5} {:>13} {:>13} {:>10} {:>9} {:>11} {:>7} {:>13} {:>13}",
        "model",
        "threads",
        "batch",
        "medpick ms/im",
        "torch ms/im",
        "vs torch",
        "GFLOP/s",
        "peak GFLOP/s",
        "of peak",
        "medpick MB",
        "torch MB"
    );
    for r in runs {
        for m in &r.medpick {
            let t = r.torch.as_ref().and_then(|t| t.rows.iter().find(|x| x.batch == m.batch));
            let (tms, ratio) = match t {
                Some(t) => (format!("{:.1}", t.ms_per_image), format!("{:.2}x", t.ms_per_image / m.ms_per_image)),
                None => ("-".into(), "-".into()),
            };
            let frac =
                if r.peak_gflops > 0.0 { format!("{:.0}%", 100.0 * m.gflops / r.peak_gflops) } else { "-".into() };
            let tmb = r.torch.as_ref().map_or("-".into(), |t| format!("{:.0}", t.peak_host_bytes as f64 / 1e6));
            let _ = writeln!(
                out,
                "{:<20} {:>7} {:>5} {:>13.1} {:>13} {:>10} {:>9.1} {:>11.1} {:>7} {:>13.0} {:>13}",
                m.model,
                r.threads,
                m.batch,
                m.ms_per_image,
                tms,
                ratio,
                m.gflops,
                r.peak_gflops,
                frac,
                m.peak_host_bytes as f64 / 1e6,
                tmb
            );
        }
        if let Some(why) = &r.torch_unavailable {
            let _ = writeln!(out, "  ({} threads: no PyTorch row: {why})", r.threads);
        }
    }
    let _ = writeln!(
        out,
        "(vs torch = torch ms/image ÷ medpick's: above 1 medpick is faster; peak GFLOP/s = best 1024³ sgemm on those \
         threads; MB = each process's peak resident memory so far)"
    );
    out
}

/// `bench kernels --device cpu`: the CPU backend's GEMM GFLOP/s at the models' shapes beside numpy's (OpenBLAS,
/// same threads, OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE removed) when `python` has numpy and threadpoolctl.
pub fn cpu_gemm_vs_numpy(iters: usize, quick: bool, python: &str, script: &Path) -> (serde_json::Value, String) {
    use std::fmt::Write;
    let rows = medpick_kernels::bench::cpu_gemm(iters, quick);
    let shapes: Vec<String> = rows.iter().map(|r| format!("{},{},{}", r.m, r.k, r.n)).collect();
    let threads = cpu::par::threads().to_string();
    let peer = Command::new(python)
        .arg(script)
        .args(["--shapes", &shapes.join(";"), "--threads", &threads, "--iters", &iters.to_string()])
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            serde_json::from_str::<serde_json::Value>(s.lines().last().unwrap_or("")).ok()
        });
    let numpy: Vec<Option<f64>> =
        (0..rows.len()).map(|i| peer.as_ref().and_then(|p| p["gflops"].get(i)).and_then(|v| v.as_f64())).collect();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<22} {:>7} {:>10} {:>14} {:>12} {:>9}",
        "GEMM M×K×N", "threads", "ms", "medpick GFLOP/s", "numpy GFLOP/s", "ratio"
    );
    for (r, np) in rows.iter().zip(&numpy) {
        let (npf, ratio) = match np {
            Some(g) => (format!("{g:.1}"), format!("{:.2}x", r.gflops / g)),
            None => ("-".into(), "-".into()),
        };
        let shape = format!("{}x{}x{}", r.m, r.k, r.n);
        let _ = writeln!(table, "{shape:<22} {:>7} {:>10.2} {:>14.1} {npf:>12} {ratio:>9}", r.threads, r.ms, r.gflops);
    }
    match &peer {
        Some(p) if p.get("unavailable").is_none() => {
            let _ = writeln!(table, "(numpy {} with {})", p["numpy"], p["threadpools"]);
        }
        Some(p) => {
            let _ = writeln!(table, "(no numpy column: {})", p["unavailable"]);
        }
        None => {
            let _ = writeln!(table, "(no numpy column: {python} {} did not run)", script.display());
        }
    }
    let doc = serde_json::json!({"cpu_simd": cpu::math::simd_level(), "results": rows, "numpy_gflops": numpy,
        "numpy": peer});
    (doc, table)
}
