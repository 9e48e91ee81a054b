//! The device and kernel commands: `gpu-info`, `selftest`, `bench kernels` and `bench encoder`.

use std::path::PathBuf;

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
    print!("{}", r.table());
    Ok(())
}

/// `medpick device-info`: the backend `--device` gives this run, and why.
pub fn device_info(json: bool) -> Result<()> {
    let (doc, table) = pollster::block_on(crate::open_device_report()?.info());
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

pub fn run_selftest(quick: bool, json: bool) -> Result<bool> {
    let ctx = open_gpu()?;
    let reports = pollster::block_on(selftest::run_all(Some(&ctx), |c| !quick || c.group == selftest::Group::Small));
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        println!("adapter: {} ({:?})", ctx.info.name, ctx.info.backend);
        print!("{}", selftest::table(&reports));
    }
    let (line, ok) = selftest::verdict(&reports);
    eprintln!("{line}");
    Ok(ok)
}

pub fn bench_kernels(json: bool, out: Option<PathBuf>, iters: usize, no_cpu: bool, quick: bool) -> Result<()> {
    let dev = crate::open_device_report()?;
    let Some(ctx) = dev.gpu else {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/numpy_gemm.py");
        let (doc, table) = bench::cpu_gemm_vs_numpy(iters, quick, "python3", &script);
        if let Some(path) = &out {
            std::fs::write(path, serde_json::to_string_pretty(&doc)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        match json {
            true => println!("{}", serde_json::to_string_pretty(&doc)?),
            false => print!("backend: {}\n{table}", dev.reason),
        }
        return Ok(());
    };
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
    print!("{}", bench::kernels_table(&rows));
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
    let dev = crate::open_device_report()?;
    let ctx = dev.gpu.as_ref();
    let (rows, profiles) = pollster::block_on(bench::encoder_runs(ctx, model, weights, batches, profile, precisions))?;
    let by_precision: serde_json::Map<String, serde_json::Value> =
        profiles.iter().map(|(p, k)| Ok(((*p).to_string(), serde_json::to_value(k)?))).collect::<Result<_>>()?;
    let doc = serde_json::json!({"backend": dev.reason, "adapter": ctx.map(|c| c.report()), "results": rows,
        "profile": by_precision});
    if let Some(p) = &out {
        std::fs::write(p, serde_json::to_string_pretty(&doc)?).with_context(|| format!("writing {}", p.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("backend: {}", dev.reason);
    print!("{}", bench::encoder_table(&rows));
    for (p, kernels) in &profiles {
        print!("{}", bench::profile_table(p, kernels));
    }
    Ok(())
}

/// `bench encoder --vs-torch`: medpick and PyTorch's reference at 1, 2 and all threads, with the ratio.
pub fn bench_encoder_vs_torch(
    model: &str,
    weights: Option<&std::path::Path>,
    batches: &[usize],
    json: bool,
    out: Option<std::path::PathBuf>,
    precisions: &[medpick_core::model::Precision],
    python: &str,
) -> Result<()> {
    use medpick_core::bench::vs_torch;
    let dev = crate::open_device_report()?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/torch_encoder.py");
    let p = precisions.first().copied().unwrap_or_default();
    let (doc, table) = pollster::block_on(vs_torch::run(&dev, model, weights, batches, p, python, &script))?;
    if let Some(p) = &out {
        std::fs::write(p, serde_json::to_string_pretty(&doc)?).with_context(|| format!("writing {}", p.display()))?;
    }
    match json {
        true => println!("{}", serde_json::to_string_pretty(&doc)?),
        false => print!("backend: {}\n{table}", dev.reason),
    }
    Ok(())
}
