//! `medpick`: cold-start active learning for medical images on any GPU. A thin CLI over `medpick-core`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use medpick_core::gpu::GpuContext;
use medpick_core::{bench, selftest};

#[derive(Parser)]
#[command(
    name = "medpick",
    version,
    about = "Pick which medical images to annotate first — on any GPU, in WGSL."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the GPU adapter medpick would use: name, backend, limits and features.
    /// Honours WGPU_BACKEND (vulkan|gl|metal|dx12), WGPU_ADAPTER_NAME and WGPU_POWER_PREF.
    GpuInfo {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run every kernel's GPU-vs-CPU self-test on this machine's adapter.
    Selftest {
        /// Only the small cases (skip the model-shape cases).
        #[arg(long)]
        quick: bool,
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Kernel throughput: matmul GFLOP/s at ViT shapes, pairwise_sqdist and min_dist_update GB/s, with the CPU
    /// twin's time on the same inputs beside each.
    Kernels {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write the JSON to this file.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Timed iterations per kernel (median reported).
        #[arg(long, default_value_t = 5)]
        iters: usize,
        /// Skip the CPU twins.
        #[arg(long)]
        no_cpu: bool,
        /// Smaller shapes (smoke test).
        #[arg(long)]
        quick: bool,
    },
}

fn open_gpu() -> Result<GpuContext> {
    pollster::block_on(GpuContext::new())
        .context("opening the GPU (set WGPU_BACKEND / WGPU_ADAPTER_NAME to choose)")
}

fn gpu_info(json: bool) -> Result<()> {
    let ctx = open_gpu()?;
    let r = ctx.report();
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("adapter      {}", r.name);
    println!("backend      {}", r.backend);
    println!("device type  {}", r.device_type);
    println!("driver       {} {}", r.driver, r.driver_info);
    println!("vendor/dev   {:#06x} / {:#06x}", r.vendor, r.device);
    println!();
    println!(
        "{:<42} {:>16} {:>16}",
        "limit (medpick relies on)", "granted", "adapter max"
    );
    for (name, granted, max) in &r.limits {
        println!("{name:<42} {granted:>16} {max:>16}");
    }
    println!();
    println!(
        "features     {}",
        if r.features.is_empty() {
            "(none)".to_string()
        } else {
            r.features.join(", ")
        }
    );
    Ok(())
}

fn run_selftest(quick: bool, json: bool) -> Result<bool> {
    let ctx = open_gpu()?;
    let reports = pollster::block_on(selftest::run_all(Some(&ctx), |c| {
        !quick || c.group == selftest::Group::Small
    }));
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        println!("adapter: {} ({:?})", ctx.info.name, ctx.info.backend);
        println!(
            "{:<16} {:<30} {:>6} {:>11} {:>10} {:>10}",
            "kernel", "case", "result", "max |err|", "gpu ms", "cpu ms"
        );
        for r in &reports {
            let res = match r.passed {
                Some(true) => "ok",
                Some(false) => "FAIL",
                None => "cpu",
            };
            println!(
                "{:<16} {:<30} {:>6} {:>11.2e} {:>10.2} {:>10.2}",
                r.kernel, r.case, res, r.max_abs_err, r.gpu_ms, r.cpu_ms
            );
            if r.passed == Some(false) {
                println!("    {}", r.detail);
            }
        }
    }
    let summary = selftest::summarize(&reports);
    let passed = summary.iter().filter(|(_, p, n)| p == n).count();
    eprintln!(
        "kernels: {passed} passed, {} failed",
        summary.len() - passed
    );
    Ok(passed == summary.len())
}

fn bench_kernels(
    json: bool,
    out: Option<std::path::PathBuf>,
    iters: usize,
    no_cpu: bool,
    quick: bool,
) -> Result<()> {
    let ctx = open_gpu()?;
    let opt = bench::BenchOptions {
        iters,
        cpu: !no_cpu,
        quick,
    };
    let rows = pollster::block_on(bench::kernels(&ctx, &opt))?;
    let doc = serde_json::json!({
        "adapter": ctx.report(),
        "options": { "iters": iters, "cpu": !no_cpu, "quick": quick },
        "results": rows,
    });
    if let Some(path) = &out {
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("adapter: {} ({:?})", ctx.info.name, ctx.info.backend);
    println!(
        "{:<16} {:<36} {:>10} {:>10} {:>9} {:>12} {:>9}",
        "kernel", "shape", "gpu ms", "GFLOP/s", "GB/s", "cpu twin ms", "gpu/cpu"
    );
    for r in &rows {
        println!(
            "{:<16} {:<36} {:>10.2} {:>10.1} {:>9.1} {:>12} {:>9}",
            r.kernel,
            r.shape,
            r.gpu_ms,
            r.gpu_gflops,
            r.gpu_gbps,
            r.cpu_ms
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "-".into()),
            r.speedup_vs_cpu
                .map(|s| format!("{s:.1}x"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::GpuInfo { json } => gpu_info(json).map(|_| true),
        Cmd::Selftest { quick, json } => run_selftest(quick, json),
        Cmd::Bench {
            what:
                BenchCmd::Kernels {
                    json,
                    out,
                    iters,
                    no_cpu,
                    quick,
                },
        } => bench_kernels(json, out, iters, no_cpu, quick).map(|_| true),
    };
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("medpick: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
