//! `medpick`: cold-start active learning for medical images on any GPU. A thin CLI over `medpick-core`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use medpick_core::gpu::GpuContext;
use medpick_core::{bench, selftest};

#[derive(Parser)]
#[command(name = "medpick", version, about = "Pick which medical images to annotate first — on any GPU, in WGSL.")]
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
    /// Read a dataset (folder of images, NIfTI volumes, DICOM files/series, MedMNIST .npz) into a manifest of
    /// samples with stable ids, plus a deterministic seeded train/val/test split. Bad files are listed and
    /// skipped; the inputs are never modified.
    Ingest(IngestArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(clap::Args)]
struct IngestArgs {
    /// Dataset folder or a single file.
    path: std::path::PathBuf,
    /// Manifest to write (JSON Lines; the first line records the dataset root).
    #[arg(long, short)]
    out: std::path::PathBuf,
    /// Volume slicing: axial, coronal, sagittal, or all three.
    #[arg(long, default_value = "axial")]
    axis: String,
    /// Intensity window for DICOM/NIfTI: soft-tissue (40/400), lung (-600/1500), bone (400/1800), file (the
    /// file's VOI window), auto (0.5-99.5 percentiles), CENTER/WIDTH, or pLOW-HIGH.
    #[arg(long, default_value = "file")]
    window: String,
    /// Classification labels: auto, none, folders (class/img.png) or csv:FILE (id,label).
    #[arg(long, default_value = "auto")]
    labels: String,
    /// Masks stored next to their images as <stem><suffix>.<ext>, comma-separated (e.g. _1stHO,_2ndHO).
    #[arg(long, value_delimiter = ',')]
    mask_suffix: Vec<String>,
    /// Seed of the train/val/test split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of groups (images, volumes, series) for validation.
    #[arg(long, default_value_t = 0.1)]
    val: f64,
    /// Fraction of groups for the held-out test split (selection never sees it).
    #[arg(long, default_value_t = 0.1)]
    test: f64,
    /// Where to write the split (default: next to the manifest, <name>.split.csv).
    #[arg(long)]
    split_out: Option<std::path::PathBuf>,
    /// Which volume of 4-D NIfTI files to slice (0 = the first).
    #[arg(long, default_value_t = 0)]
    volume: usize,
    /// Refuse images (and volume slices) with more pixels than this.
    #[arg(long, default_value_t = medpick_core::io::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Exit with status 3 if any file was skipped.
    #[arg(long)]
    strict: bool,
    /// Overwrite existing output files.
    #[arg(long)]
    force: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
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
    pollster::block_on(GpuContext::new()).context("opening the GPU (set WGPU_BACKEND / WGPU_ADAPTER_NAME to choose)")
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
    println!("{:<42} {:>16} {:>16}", "limit (medpick relies on)", "granted", "adapter max");
    for (name, granted, max) in &r.limits {
        println!("{name:<42} {granted:>16} {max:>16}");
    }
    println!();
    println!("features     {}", if r.features.is_empty() { "(none)".to_string() } else { r.features.join(", ") });
    Ok(())
}

fn run_selftest(quick: bool, json: bool) -> Result<bool> {
    let ctx = open_gpu()?;
    let reports = pollster::block_on(selftest::run_all(Some(&ctx), |c| !quick || c.group == selftest::Group::Small));
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
    eprintln!("kernels: {passed} passed, {} failed", summary.len() - passed);
    Ok(passed == summary.len())
}

fn bench_kernels(json: bool, out: Option<std::path::PathBuf>, iters: usize, no_cpu: bool, quick: bool) -> Result<()> {
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
            r.cpu_ms.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into()),
            r.speedup_vs_cpu.map(|s| format!("{s:.1}x")).unwrap_or_else(|| "-".into()),
        );
    }
    Ok(())
}

fn progress_bar(prefix: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {per_sec} ETA {eta} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

fn ingest(a: IngestArgs) -> Result<bool> {
    use medpick_core::io::nifti::View;
    use medpick_core::io::Window;
    use medpick_core::manifest::{self, IngestOptions, LabelSource, ManifestWriter};
    let views = match a.axis.as_str() {
        "all" => View::ALL.to_vec(),
        other => {
            vec![View::parse(other).with_context(|| format!("--axis {other}: use axial, coronal, sagittal or all"))?]
        }
    };
    let labels = match a.labels.as_str() {
        "auto" => LabelSource::Auto,
        "none" => LabelSource::None,
        "folders" => LabelSource::Folders,
        other => match other.strip_prefix("csv:") {
            Some(f) => LabelSource::Csv(f.into()),
            None => anyhow::bail!("--labels {other}: use auto, none, folders or csv:FILE"),
        },
    };
    let opts = IngestOptions {
        views,
        window: Window::parse(&a.window)?,
        max_pixels: a.max_pixels,
        labels,
        mask_suffixes: a.mask_suffix.clone(),
        time: a.volume,
    };
    let split_path = a.split_out.clone().unwrap_or_else(|| {
        let stem = a.out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "manifest".into());
        a.out.with_file_name(format!("{stem}.split.csv"))
    });
    if split_path.exists() && !a.force {
        anyhow::bail!("{} already exists (pass --force to overwrite)", split_path.display());
    }
    let root =
        if a.path.is_file() { a.path.parent().map(|p| p.to_path_buf()).unwrap_or_default() } else { a.path.clone() };
    let mut writer = ManifestWriter::create(&a.out, &root, a.force)?;
    let mut samples = Vec::new();
    let pb = progress_bar("ingest");
    let report = manifest::ingest(
        &a.path,
        &opts,
        &mut |s| {
            writer.write(s)?;
            samples.push(s.clone());
            Ok(())
        },
        &mut |done, total, path| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
            pb.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        },
    )?;
    pb.finish_and_clear();
    writer.finish()?;
    let split = manifest::make_split(&samples, a.seed, a.val, a.test)?;
    manifest::write_split(&split_path, &split, a.force)?;
    let count = |sp| split.iter().filter(|(_, s)| *s == sp).count();
    let (tr, va, te) = (count(manifest::Split::Train), count(manifest::Split::Val), count(manifest::Split::Test));
    if a.json {
        let doc = serde_json::json!({
            "report": report, "manifest": a.out, "split": split_path,
            "split_counts": {"train": tr, "val": va, "test": te},
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("dataset   {}", report.root);
        println!("files     {} seen, {} samples written to {}", report.files, report.samples, a.out.display());
        for (k, n) in &report.per_kind {
            println!("  {k:<8} {n:>8} samples");
        }
        if report.with_mask > 0 {
            println!("masks     {} samples with a segmentation mask", report.with_mask);
        }
        if report.instances_total > 0 {
            println!("instances {} objects in the instance masks", report.instances_total);
        }
        if !report.per_label.is_empty() {
            println!("labels    {} classes", report.per_label.len());
            for (l, n) in report.per_label.iter().take(30) {
                println!("  {l:<20} {n:>8}");
            }
        }
        println!("split     train {tr}, val {va}, test {te} (seed {}) -> {}", a.seed, split_path.display());
        if report.hidden_skipped > 0 {
            println!("hidden    {} hidden files/folders skipped", report.hidden_skipped);
        }
        if !report.skipped.is_empty() {
            println!("skipped   {} files:", report.skipped.len());
            for (p, why) in &report.skipped {
                if why.contains(p.as_str()) {
                    println!("  {why}");
                } else {
                    println!("  {p}: {why}");
                }
            }
        }
    }
    Ok(!(a.strict && !report.skipped.is_empty()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::GpuInfo { json } => gpu_info(json).map(|_| true),
        Cmd::Selftest { quick, json } => run_selftest(quick, json),
        Cmd::Ingest(a) => ingest(a).map(|ok| if ok { true } else { std::process::exit(3) }),
        Cmd::Bench { what: BenchCmd::Kernels { json, out, iters, no_cpu, quick } } => {
            bench_kernels(json, out, iters, no_cpu, quick).map(|_| true)
        }
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
