//! `medpick bench select`: time and peak GPU memory of the selection engine on synthetic features at
//! N × D (10k–1M × 256–768, B = 1000), each cell in its own process (so a cell that runs past the time cap is
//! stopped and its peak host memory is its own), with scikit-activeml's time on the same features beside it
//! when Python with scikit-activeml is available.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use medpick_core::bench::{self, select_grid};

#[derive(clap::Args, Debug)]
pub struct SelectBenchArgs {
    /// Pool sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub n: Vec<usize>,
    /// Feature dimensions, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "256,384,768")]
    pub d: Vec<usize>,
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub budget: usize,
    /// Strategies, comma-separated (any name `medpick select` takes).
    #[arg(long, value_delimiter = ',', default_value = "coreset,typiclust-knn,probcover,repdiv")]
    pub strategies: Vec<String>,
    /// Seconds a cell may run before it is stopped (and reported as such), for medpick and scikit-activeml alike.
    #[arg(long, default_value_t = 600)]
    pub cap: u64,
    /// scikit-activeml comparison: auto (when `python3 -c "import skactiveml"` works), off.
    #[arg(long, default_value = "auto")]
    pub skactiveml: String,
    /// A checkout of github.com/HiLab-git/MedCAL-Bench: its own numpy code (FM-AL/select_samples.py, run
    /// unchanged by bench/medcal_select.py) is timed as a second peer on coreset, typiclust, probcover, repdiv,
    /// alps, fps and bal. Its dense N × N matrices stop it where they exceed the memory available: the table says so.
    #[arg(long)]
    pub medcal: Option<PathBuf>,
    /// Python interpreter for the comparisons.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Output folder for bench-select.json and bench-select.md.
    #[arg(long, default_value = "results/bench-select")]
    pub out: PathBuf,
}

/// One cell, run in a child process (hidden subcommand).
#[derive(clap::Args, Debug)]
pub struct CellArgs {
    #[arg(long)]
    pub n: usize,
    #[arg(long)]
    pub d: usize,
    #[arg(long)]
    pub strategy: String,
    #[arg(long, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub budget: usize,
    /// Also write the features here (.npy) for the scikit-activeml run.
    #[arg(long)]
    pub dump: Option<PathBuf>,
}

pub fn run_cell(a: CellArgs) -> Result<bool> {
    let x = bench::synthetic_features(a.n, a.d, 0);
    if let Some(p) = &a.dump {
        let arr = ndarray::ArrayView2::from_shape((a.n, a.d), &x)?;
        ndarray_npy::write_npy(p, &arr).with_context(|| format!("writing {}", p.display()))?;
    }
    let ctx = crate::open_device()?;
    let cell = pollster::block_on(bench::select_cell(ctx.as_ref(), &x, a.n, a.d, &a.strategy, a.budget))?;
    let mut v = serde_json::to_value(&cell)?;
    v["peak_host_kb"] = serde_json::json!(Some(bench::peak_host_bytes() / 1024).filter(|&k| k > 0));
    v["adapter"] = serde_json::json!(match &ctx {
        Some(c) => format!("{} ({:?})", c.info.name, c.info.backend),
        None => format!("CPU backend, {} threads", medpick_core::cpu::par::threads()),
    });
    println!("{}", serde_json::to_string(&v)?);
    Ok(true)
}

/// The grid, each cell in a child process of this binary (`bench select-cell`).
pub fn run(a: SelectBenchArgs) -> Result<bool> {
    let skactiveml = match a.skactiveml.as_str() {
        "off" => false,
        "auto" => true,
        other => anyhow::bail!("--skactiveml {other}: use auto or off"),
    };
    let g = select_grid::GridConfig {
        n: a.n,
        d: a.d,
        budget: a.budget,
        strategies: a.strategies,
        cap: a.cap,
        skactiveml,
        python: a.python,
        script: Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/skactiveml_select.py"),
        medcal: a.medcal,
        medcal_script: Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/medcal_select.py"),
        exe: std::env::current_exe()?,
        // The cells run in children: they get this run's backend and thread count.
        child_args: crate::backend_args(),
        threads: medpick_core::cpu::par::threads(),
        out: a.out.clone(),
    };
    let r = select_grid::run(&g)?;
    println!("{}", r.markdown);
    eprintln!("wrote {}/bench-select.json and bench-select.md", a.out.display());
    Ok(r.all_ran)
}

/// `bench composable`: the table, and the JSON at `out` (never over an existing file).
#[allow(clippy::too_many_arguments)] // the bench's options
pub fn run_composable(
    n: usize,
    d: usize,
    parts: usize,
    budget: usize,
    factor: usize,
    strategy: &str,
    skewed: bool,
    coreset: &str,
    out: Option<PathBuf>,
) -> Result<u8> {
    let kind = medpick_core::select::composable::LocalKind::parse(coreset)?;
    if let Some(o) = &out {
        medpick_core::manifest::refuse_existing(o, false)?;
    }
    let r = pollster::block_on(medpick_core::bench::composable::composable(
        n, d, parts, budget, factor, strategy, skewed, kind,
    ))?;
    print!("{}", r.table());
    if let Some(o) = out {
        std::fs::write(&o, serde_json::to_string_pretty(&r)?)?;
        println!("wrote {}", o.display());
    }
    Ok(0)
}
