//! The device and kernel commands: `gpu-info`, `selftest`, `bench kernels` and `bench encoder`.

use anyhow::{Context, Result};
use medpick_core::{bench, selftest};

use crate::open_gpu;

pub fn gpu_info(json: bool) -> Result<()> {
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
    println!("f32 GEMM     {} (MEDPICK_GEMM=matmul|matmul_regs|matmul_regs4 to choose)", r.gemm_kernel);
    println!();
    println!("{:<42} {:>16} {:>16}", "limit (medpick relies on)", "granted", "adapter max");
    for (name, granted, max) in &r.limits {
        println!("{name:<42} {granted:>16} {max:>16}");
    }
    println!();
    println!("features     {}", if r.features.is_empty() { "(none)".to_string() } else { r.features.join(", ") });
    Ok(())
}

pub fn run_selftest(quick: bool, json: bool) -> Result<bool> {
    let ctx = open_gpu()?;
    let reports = pollster::block_on(selftest::run_all(Some(&ctx), |c| !quick || c.group == selftest::Group::Small));
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        println!("adapter: {} ({:?})", ctx.info.name, ctx.info.backend);
        println!(
            "{:<21} {:<30} {:>6} {:>11} {:>10} {:>10}",
            "kernel", "case", "result", "max |err|", "gpu ms", "cpu ms"
        );
        for r in &reports {
            let res = match r.passed {
                Some(true) => "ok",
                Some(false) => "FAIL",
                None if r.skipped => "skip",
                None => "cpu",
            };
            println!(
                "{:<21} {:<30} {:>6} {:>11.2e} {:>10.2} {:>10.2}",
                r.kernel, r.case, res, r.max_abs_err, r.gpu_ms, r.cpu_ms
            );
            if r.passed == Some(false) {
                println!("    {}", r.detail);
            }
        }
    }
    let summary = selftest::summarize(&reports);
    let skipped: Vec<&str> = summary.iter().filter(|(_, _, n, s)| *n == 0 && *s > 0).map(|e| e.0).collect();
    let passed = summary.iter().filter(|(_, p, n, _)| p == n && *n > 0).count();
    let failed = summary.len() - passed - skipped.len();
    if skipped.is_empty() {
        eprintln!("kernels: {passed} passed, {failed} failed");
    } else {
        eprintln!(
            "kernels: {passed} passed, {failed} failed, {} skipped ({}: the adapter lacks a feature they need)",
            skipped.len(),
            skipped.join(", ")
        );
    }
    Ok(failed == 0)
}

pub fn bench_kernels(json: bool, out: Option<std::path::PathBuf>, iters: usize, no_cpu: bool, quick: bool) -> Result<()> {
    let ctx = open_gpu()?;
    let opt = bench::BenchOptions { iters, cpu: !no_cpu, quick };
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
        "{:<21} {:<36} {:>10} {:>10} {:>9} {:>12} {:>9}",
        "kernel", "shape", "gpu ms", "GFLOP/s", "GB/s", "cpu twin ms", "gpu/cpu"
    );
    for r in &rows {
        println!(
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
    Ok(())
}


pub fn bench_encoder(
    model: &str,
    weights: Option<&std::path::Path>,
    batches: &[usize],
    json: bool,
    out: Option<std::path::PathBuf>,
    profile: bool,
    precisions: &[medpick_core::model::Precision],
) -> Result<()> {
    let ctx = open_gpu()?;
    let size = model.strip_prefix("dinov2-").and_then(|s| s.strip_suffix("-shape"));
    if model != "litemedsam" && size.is_none() {
        anyhow::bail!("bench encoder: --model {model}: use litemedsam or dinov2-{{small,base,large,giant}}-shape");
    }
    let tiny = match model {
        "litemedsam" => {
            let path = match weights {
                Some(p) => p.to_path_buf(),
                None => medpick_core::io::weights::default_litemedsam_path()?,
            };
            Some(medpick_core::model::tinyvit::TinyVit::load(&medpick_core::io::weights::read_weights(&path)?)?)
        }
        _ => None,
    };
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    for &p in precisions {
        let report = match (&tiny, size) {
            (Some(t), _) => {
                let m = t.load_on(Some(&ctx), p)?;
                pollster::block_on(bench::encoder_litemedsam(&ctx, &m, batches, profile))?
            }
            (None, Some(size)) => pollster::block_on(bench::encoder_dinov2_shape(&ctx, size, batches, profile, p))?,
            (None, None) => unreachable!("checked above"),
        };
        rows.extend(report.rows);
        if profile {
            profiles.push((p.name(), report.profile));
        }
    }
    let by_precision: serde_json::Map<String, serde_json::Value> =
        profiles.iter().map(|(p, k)| Ok(((*p).to_string(), serde_json::to_value(k)?))).collect::<Result<_>>()?;
    let doc = serde_json::json!({"adapter": ctx.report(), "results": rows, "profile": by_precision});
    if let Some(p) = &out {
        std::fs::write(p, serde_json::to_string_pretty(&doc)?).with_context(|| format!("writing {}", p.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("adapter: {} ({:?})", ctx.info.name, ctx.info.backend);
    println!(
        "{:<20} {:>5} {:>6} {:>8} {:>10} {:>10} {:>12} {:>10} {:>12} {:>11} {:>12}",
        "model",
        "prec",
        "batch",
        "per pass",
        "images/s",
        "ms/image",
        "GFLOP/image",
        "GFLOP/s",
        "peak GPU MB",
        "weights MB",
        "vs f32 speed"
    );
    for r in &rows {
        let peak = if r.peak_gpu_bytes > 0 { format!("{:.1}", r.peak_gpu_bytes as f64 / 1e6) } else { "n/a".into() };
        // The same batch in f32 in this run, when there is one: f32 ms/image ÷ this row's (above 1: faster).
        let base = rows.iter().find(|b| b.batch == r.batch && b.precision == medpick_core::model::Precision::F32);
        let ratio = match base {
            Some(b) if b.precision != r.precision => format!("{:.2}x", b.ms_per_image / r.ms_per_image),
            _ => "-".into(),
        };
        println!(
            "{:<20} {:>5} {:>6} {:>8} {:>10.3} {:>10.1} {:>12.2} {:>10.2} {:>12} {:>11.1} {:>12}",
            r.model,
            r.precision.name(),
            r.batch,
            r.images_per_pass,
            r.images_per_s,
            r.ms_per_image,
            r.gflop_per_image,
            r.gflops,
            peak,
            r.weight_bytes as f64 / 1e6,
            ratio
        );
    }
    println!(
        "(per pass: images in one forward pass — DINOv2 batches a run's images, LiteMedSAM encodes one at a time; \
         peak GPU memory = live device buffers, weights included)"
    );
    for (p, kernels) in &profiles {
        let total: f64 = kernels.iter().map(|k| k.seconds).sum();
        println!(
            "\nprofile of one image, {p} weights ({:.1} ms in kernels, each submitted and waited for alone):",
            total * 1e3
        );
        println!("{:<21} {:>6} {:>10} {:>7}", "kernel", "calls", "ms", "share");
        for k in kernels {
            println!(
                "{:<21} {:>6} {:>10.1} {:>6.1}%",
                k.kernel,
                k.calls,
                k.seconds * 1e3,
                100.0 * k.seconds / total.max(1e-12)
            );
        }
    }
    Ok(())
}
