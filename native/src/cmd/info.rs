//! The device and kernel commands: `gpu-info`, `selftest`, `bench kernels` and `bench encoder`.

use std::path::{Path, PathBuf};

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

/// Print `doc` as JSON (`json`) or `table`, and write the JSON to `out` when given.
fn emit(doc: &serde_json::Value, table: &str, json: bool, out: Option<&Path>) -> Result<()> {
    if let Some(p) = out {
        std::fs::write(p, serde_json::to_string_pretty(doc)?).with_context(|| format!("writing {}", p.display()))?;
    }
    match json {
        true => println!("{}", serde_json::to_string_pretty(doc)?),
        false => print!("{table}"),
    }
    Ok(())
}

/// `medpick selftest`: every kernel on the GPU against its CPU implementation (whatever `--device auto` would
/// pick, since this is the GPU's test); with `--device cpu`, the CPU implementations alone.
pub fn run_selftest(quick: bool, json: bool) -> Result<bool> {
    let ctx = match crate::DEVICE.get() {
        Some(medpick_core::device::DeviceChoice::Cpu) => None,
        _ => Some(open_gpu()?),
    };
    let reports = pollster::block_on(selftest::run_all(ctx.as_ref(), |c| !quick || c.group == selftest::Group::Small));
    let adapter = match &ctx {
        Some(c) => format!("adapter: {} ({:?})\n", c.info.name, c.info.backend),
        None => "CPU implementations only (--device cpu)\n".into(),
    };
    emit(&serde_json::to_value(&reports)?, &(adapter + &selftest::table(&reports)), json, None)?;
    let (line, ok) = selftest::verdict(&reports);
    eprintln!("{line}");
    Ok(ok)
}

pub fn bench_kernels(json: bool, out: Option<PathBuf>, iters: usize, no_cpu: bool, quick: bool) -> Result<()> {
    let dev = crate::open_device_report()?;
    let Some(ctx) = dev.gpu else {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/numpy_gemm.py");
        let (doc, table) = bench::cpu_gemm_vs_numpy(iters, quick, "python3", &script);
        return emit(&doc, &format!("backend: {}\n{table}", dev.reason), json, out.as_deref());
    };
    let opt = bench::BenchOptions { iters, cpu: !no_cpu, quick };
    let rows = pollster::block_on(bench::kernels(&ctx, &opt))?;
    let doc = serde_json::json!({
        "adapter": ctx.report(),
        "options": { "iters": iters, "cpu": !no_cpu, "quick": quick },
        "results": rows,
    });
    let table = format!("adapter: {} ({:?})\n{}", ctx.info.name, ctx.info.backend, bench::kernels_table(&rows));
    emit(&doc, &table, json, out.as_deref())
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
    let mut table = format!("backend: {}\n{}", dev.reason, bench::encoder_table(&rows));
    for (p, kernels) in &profiles {
        table.push_str(&bench::profile_table(p, kernels));
    }
    emit(&doc, &table, json, out.as_deref())
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
    emit(&doc, &format!("backend: {}\n{table}", dev.reason), json, out.as_deref())
}
