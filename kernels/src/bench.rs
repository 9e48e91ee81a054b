//! Kernel throughput benchmark (`medpick bench kernels`): GFLOP/s of matmul at ViT shapes and GB/s of the
//! selection kernels, each beside the time of its CPU twin on the same inputs (the twin is the f64 reference,
//! not a tuned BLAS: the ratio says how much the GPU path buys over the reference code).

use serde::Serialize;

use crate::cpu;
use crate::gpu::{ops, read_f32, GpuContext};
use crate::rng::Rng;
use crate::{Instant, Result};

#[derive(Clone, Debug, Serialize)]
pub struct KernelBench {
    pub kernel: &'static str,
    pub shape: String,
    /// Median GPU time of one dispatch (ms), inputs already on the device.
    pub gpu_ms: f64,
    pub gpu_gflops: f64,
    pub gpu_gbps: f64,
    /// CPU twin time (ms), `None` when skipped.
    pub cpu_ms: Option<f64>,
    pub speedup_vs_cpu: Option<f64>,
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Benchmark settings.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub iters: usize,
    /// Also time the CPU twins.
    pub cpu: bool,
    /// Smaller shapes (for CI smoke runs).
    pub quick: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { iters: 5, cpu: true, quick: false }
    }
}

async fn time_gpu<F, Fut>(ctx: &GpuContext, iters: usize, sync: &wgpu::Buffer, mut f: F) -> Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<wgpu::CommandEncoder>>,
{
    // Warm-up (pipeline creation, first-use costs).
    let enc = f().await?;
    ctx.submit(enc);
    read_f32(ctx, sync, 1).await?;
    let mut times = Vec::new();
    for _ in 0..iters.max(1) {
        let enc = f().await?;
        let t = Instant::now();
        ctx.submit(enc);
        read_f32(ctx, sync, 1).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(times))
}

fn cpu_time(enabled: bool, f: impl FnOnce()) -> Option<f64> {
    enabled.then(|| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    })
}

fn row(kernel: &'static str, shape: String, gpu_ms: f64, flops: f64, bytes: f64, cpu_ms: Option<f64>) -> KernelBench {
    KernelBench {
        kernel,
        shape,
        gpu_ms,
        gpu_gflops: flops / (gpu_ms * 1e6),
        gpu_gbps: bytes / (gpu_ms * 1e6),
        cpu_ms,
        speedup_vs_cpu: cpu_ms.map(|c| c / gpu_ms),
    }
}

/// Run the kernel benchmark.
pub async fn kernels(ctx: &GpuContext, opt: &BenchOptions) -> Result<Vec<KernelBench>> {
    let mut rng = Rng::new(42);
    let mut out = Vec::new();
    let batch = if opt.quick { 1 } else { 8 };
    // (label, M, N, K): ViT-S/14 qkv and MLP on 257 tokens × batch, ViT-B/14 qkv.
    let mm: Vec<(String, usize, usize, usize)> = vec![
        (format!("ViT-S qkv {}x384·(1152x384)ᵀ", 257 * batch), 257 * batch, 1152, 384),
        (format!("ViT-S fc1 {}x384·(1536x384)ᵀ", 257 * batch), 257 * batch, 1536, 384),
        (format!("ViT-B qkv {}x768·(2304x768)ᵀ", 257 * batch), 257 * batch, 2304, 768),
    ];
    for (label, m, n, k) in mm {
        let a = rng.uniform_vec(m * k, -1.0, 1.0);
        let b = rng.uniform_vec(n * k, -1.0, 1.0);
        let bias = rng.uniform_vec(n, -1.0, 1.0);
        let (ba, bb, bbias) = (ctx.upload("bench", &a)?, ctx.upload("bench", &b)?, ctx.upload("bench", &bias)?);
        let c = ctx.storage("bench", (m * n * 4) as u64)?;
        let cpu_ms = cpu_time(opt.cpu, || {
            std::hint::black_box(cpu::matmul(&a, &b, Some(&bias), m, n, k, true));
        });
        let bytes = ((m * k + n * k + m * n) * 4) as f64;
        // The three f32 GEMM kernels on the same operands: which one this adapter should use (`gpu-info` says which
        // one it does use).
        for kernel in ["matmul", "matmul_regs", "matmul_regs4"] {
            let ms = time_gpu(ctx, opt.iters, &c, || async {
                let mut enc = ctx.encoder();
                match kernel {
                    "matmul" => ops::matmul(ctx, &mut enc, &ba, &bb, Some(&bbias), &c, m, n, k, true).await?,
                    "matmul_regs" => ops::matmul_regs(ctx, &mut enc, &ba, &bb, Some(&bbias), &c, m, n, k, true).await?,
                    _ => ops::matmul_regs4(ctx, &mut enc, &ba, &bb, Some(&bbias), &c, m, n, k, true).await?,
                }
                Ok(enc)
            })
            .await?;
            out.push(row(kernel, label.clone(), ms, 2.0 * (m * n * k) as f64, bytes, cpu_ms));
        }
    }

    let (n, m, d) = if opt.quick { (1024, 1024, 384) } else { (4096, 4096, 384) };
    {
        let a = rng.uniform_vec(n * d, -1.0, 1.0);
        let b = rng.uniform_vec(m * d, -1.0, 1.0);
        let (ba, bb) = (ctx.upload("bench", &a)?, ctx.upload("bench", &b)?);
        let o = ctx.storage("bench", (n * m * 4) as u64)?;
        let cpu_ms = cpu_time(opt.cpu, || {
            std::hint::black_box(cpu::pairwise_sqdist(&a, &b, n, m, d));
        });
        let bytes = ((n * d + m * d + n * m) * 4) as f64;
        for kernel in ["pairwise_sqdist", "pairwise_sqdist_regs", "pairwise_sqdist_regs4"] {
            let ms = time_gpu(ctx, opt.iters, &o, || async {
                let mut enc = ctx.encoder();
                match kernel {
                    "pairwise_sqdist" => ops::pairwise_sqdist(ctx, &mut enc, &ba, &bb, &o, n, m, d).await?,
                    "pairwise_sqdist_regs" => ops::pairwise_sqdist_regs(ctx, &mut enc, &ba, &bb, &o, n, m, d).await?,
                    _ => ops::pairwise_sqdist_regs4(ctx, &mut enc, &ba, &bb, &o, n, m, d).await?,
                }
                Ok(enc)
            })
            .await?;
            out.push(row(kernel, format!("{n}x{m} d{d}"), ms, 2.0 * (n * m * d) as f64, bytes, cpu_ms));
        }
    }

    // 100k rows, or as many as fit in one storage binding on this device.
    let d = 384;
    let fit = (ctx.limits.max_storage_buffer_binding_size / (d as u64 * 4)) as usize;
    let n = if opt.quick { 20_000 } else { 100_000.min(fit / 1000 * 1000) };
    {
        let x = rng.uniform_vec(n * d, -1.0, 1.0);
        let bx = ctx.upload("bench", &x)?;
        let mind = ctx.storage("bench", (n * 4) as u64)?;
        let ms = time_gpu(ctx, opt.iters, &mind, || async {
            let mut enc = ctx.encoder();
            ops::min_dist_update(ctx, &mut enc, &bx, &mind, n, d, 7, false).await?;
            Ok(enc)
        })
        .await?;
        let cpu_ms = cpu_time(opt.cpu, || {
            let mut m = vec![f32::MAX; n];
            cpu::min_dist_update(&x, &mut m, n, d, 7, false);
            std::hint::black_box(m);
        });
        let bytes = ((n * d + 2 * n) * 4) as f64;
        out.push(row("min_dist_update", format!("n{n} d{d}"), ms, 3.0 * (n * d) as f64, bytes, cpu_ms));
        // The same step on the f16 store: half the feature bytes.
        let packed = cpu::min_dist_update_f16::pack_f16_rows(&x, n, d);
        let bp = ctx.upload("bench", &packed)?;
        let ms = time_gpu(ctx, opt.iters, &mind, || async {
            let mut enc = ctx.encoder();
            ops::min_dist_update_f16(ctx, &mut enc, &bp, &mind, n, d, 7, false).await?;
            Ok(enc)
        })
        .await?;
        let cpu_ms = cpu_time(opt.cpu, || {
            let mut m = vec![f32::MAX; n];
            cpu::min_dist_update_f16(&packed, &mut m, n, d, 7, false);
            std::hint::black_box(m);
        });
        let bytes = ((n * d / 2 + 2 * n) * 4) as f64;
        out.push(row("min_dist_update_f16", format!("n{n} d{d}"), ms, 3.0 * (n * d) as f64, bytes, cpu_ms));
    }
    Ok(out)
}

/// The table `medpick bench kernels` prints.
pub fn table(rows: &[KernelBench]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<21} {:<36} {:>10} {:>10} {:>9} {:>12} {:>9}",
        "kernel", "shape", "gpu ms", "GFLOP/s", "GB/s", "cpu twin ms", "gpu/cpu"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<21} {:<36} {:>10.2} {:>10.1} {:>9.1} {:>12} {:>9}",
            r.kernel,
            r.shape,
            r.gpu_ms,
            r.gpu_gflops,
            r.gpu_gbps,
            r.cpu_ms.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into()),
            r.speedup_vs_cpu.map(|s| format!("{s:.1}x")).unwrap_or_else(|| "-".into()),
        );
    }
    out
}

/// GEMM shapes (M, K, N) of the models medpick runs: TinyViT's 1×1 convolutions and MLPs at LiteMedSAM's
/// resolutions, the neck's 3×3 as im2col, and DINOv2-small's linears at batch 8 (M = 8 × 257 tokens).
pub const CPU_GEMM_SHAPES: [(usize, usize, usize); 8] = [
    (65536, 64, 256),
    (65536, 256, 64),
    (16384, 128, 512),
    (4096, 320, 1280),
    (4096, 2304, 256),
    (2056, 384, 1152),
    (2056, 384, 1536),
    (2056, 1536, 384),
];

/// One row of `bench kernels --device cpu`: the CPU backend's GEMM (A [M,K] · Bᵀ, B [N,K] as a linear layer's
/// weight) at one shape, median of `iters` runs.
#[derive(Clone, Debug, Serialize)]
pub struct CpuGemmBench {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub threads: usize,
    pub ms: f64,
    pub gflops: f64,
}

/// The CPU backend's GEMM at [`CPU_GEMM_SHAPES`] (the first three when `quick`, with M divided by 16).
pub fn cpu_gemm(iters: usize, quick: bool) -> Vec<CpuGemmBench> {
    let shapes: Vec<(usize, usize, usize)> = if quick {
        CPU_GEMM_SHAPES[..3].iter().map(|&(m, k, n)| (m / 16, k, n)).collect()
    } else {
        CPU_GEMM_SHAPES.to_vec()
    };
    let mut rng = Rng::new(5);
    shapes
        .into_iter()
        .map(|(m, k, n)| {
            let a = rng.uniform_vec(m * k, -1.0, 1.0);
            let b = rng.uniform_vec(n * k, -1.0, 1.0);
            std::hint::black_box(cpu::matmul(&a, &b, None, m, n, k, true));
            let times: Vec<f64> = (0..iters.max(1))
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(cpu::matmul(&a, &b, None, m, n, k, true));
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            let ms = median(times);
            CpuGemmBench { m, k, n, threads: cpu::par::threads(), ms, gflops: 2.0 * (m * n * k) as f64 / (ms * 1e6) }
        })
        .collect()
}
