//! `medpick bench protocol` and `medpick bench loop`: the arguments, turned into core's runners
//! (`medpick_core::protocol::run`), and the plots of what they return.

use std::path::PathBuf;

use anyhow::{Context, Result};
use medpick_core::protocol::run::{self, LoopConfig, ProtocolConfig};

use medpick_core::protocol::plots::{plot_lines, plot_pca, plot_protocol};

#[derive(clap::Args)]
pub struct ProtocolArgs {
    /// Dataset: a MedMNIST .npz (its own train/test split), a folder, or a manifest with its split.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Task: cls (classification, labels from the dataset) or seg (binary segmentation, masks from the
    /// dataset; the head trains on the encoder's feature grid).
    #[arg(long, default_value = "cls")]
    pub task: String,
    /// Strategies: all, or a comma list (random is always included as the reference).
    #[arg(long, default_value = "all")]
    pub strategies: String,
    #[arg(long, default_value = "27,54,81", value_delimiter = ',', allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub budgets: Vec<usize>,
    /// Seeds for every strategy (the seed drives its own randomness and the head's initialisation); each pairs
    /// with Random's run of the same seed in the paired comparison (results.md, paired.json).
    #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub seeds: usize,
    /// Head: linear (probe on standardised features) or dropquery.
    #[arg(long, default_value = "linear")]
    pub head: String,
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub epochs: usize,
    /// seg: training batch size (MedCAL: 8).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Keep the head of best validation accuracy (cls) or validation Dice (seg), evaluated every N epochs and
    /// after the last on the dataset's validation split (MedCAL: 5); 0 keeps the last epoch's head.
    #[arg(long, default_value_t = 0)]
    pub val_every: usize,
    #[command(flatten)]
    pub seg: crate::cmd::train::SegArgs,
    /// Use at most this many training / test samples (a seeded subset; 0 = all): for quick runs.
    #[arg(long, default_value_t = 0)]
    pub max_train: usize,
    #[arg(long, default_value_t = 0)]
    pub max_test: usize,
    /// Output folder (resumes the runs already in its results.json).
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Run selection and training on the CPU backend even when the encoder runs on the GPU.
    #[arg(long)]
    pub cpu: bool,
    #[command(flatten)]
    pub model: crate::ModelArgs,
}

#[derive(clap::Args)]
pub struct LoopArgs {
    /// Dataset, as for `bench protocol`.
    #[arg(long)]
    pub dataset: PathBuf,
    #[arg(long, default_value = "cls")]
    pub task: String,
    /// Cold-start strategy for round 0.
    #[arg(long, default_value = "typiclust")]
    pub start: String,
    /// Scores to compare between rounds. cls: random, entropy, lc, margin, bald, dropquery, coreset (default:
    /// all but lc). seg: random, lc, entropy, her, herd, margin, asd, coreset (default: all).
    #[arg(long)]
    pub scores: Option<String>,
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// Samples added per round (and picked at round 0).
    #[arg(long, default_value_t = 27)]
    pub batch: usize,
    /// seg: training batch size (MedCAL: 8).
    #[arg(long, default_value_t = 8)]
    pub train_batch: usize,
    #[command(flatten)]
    pub seg: crate::cmd::train::SegArgs,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    #[arg(long, default_value = "linear")]
    pub head: String,
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub epochs: usize,
    #[arg(long, default_value_t = 0)]
    pub max_train: usize,
    #[arg(long, default_value_t = 0)]
    pub max_test: usize,
    /// Output folder for loop.json, loop.md and the plot (files there are replaced).
    #[arg(long, default_value = "results/loop")]
    pub out: PathBuf,
    #[arg(long)]
    pub cpu: bool,
    #[command(flatten)]
    pub model: crate::ModelArgs,
}

/// The MedCAL protocol (classification or segmentation): results.json, results.md, and the plots.
pub fn run(a: ProtocolArgs) -> Result<bool> {
    let c = ProtocolConfig {
        dataset: a.dataset.clone(),
        strategies: a.strategies.clone(),
        budgets: a.budgets.clone(),
        seeds: a.seeds,
        head: a.head.clone(),
        epochs: a.epochs,
        batch: a.batch,
        val_every: a.val_every,
        seg: a.seg.settings(),
        max_train: a.max_train,
        max_test: a.max_test,
        out: a.out.clone(),
        cpu: a.cpu,
        model: a.model.config(),
    };
    c.check(&a.task)?;
    let gpu = crate::open_device()?;
    let r = match a.task.as_str() {
        "cls" => pollster::block_on(run::run_cls(gpu.as_ref(), &c))?,
        "seg" => pollster::block_on(run::run_seg(gpu.as_ref(), &c))?,
        other => anyhow::bail!("--task {other}: use cls or seg"),
    };
    let (shown, picks) = medpick_core::protocol::results::shown_picks(&r.strategies, &r.file.runs, r.max_budget);
    plot_protocol(&a.out, &r.file.runs, &r.strategies, &a.budgets, r.metric)?;
    for ext in ["svg", "png"] {
        plot_pca(&a.out.join(format!("pool_pca.{ext}")), &r.pool, &picks, shown, r.max_budget)?;
    }
    println!("{}", r.markdown);
    println!("wrote {}/results.md, results.json and plots", a.out.display());
    Ok(true)
}

/// The warm loop per score: loop.json, loop.md and the plot.
pub fn run_loop(a: LoopArgs) -> Result<bool> {
    let c = LoopConfig {
        dataset: a.dataset.clone(),
        task: a.task.clone(),
        start: a.start.clone(),
        scores: a.scores.clone(),
        rounds: a.rounds,
        batch: a.batch,
        train_batch: a.train_batch,
        seg: a.seg.settings(),
        seed: a.seed,
        head: a.head.clone(),
        epochs: a.epochs,
        max_train: a.max_train,
        max_test: a.max_test,
        cpu: a.cpu,
        model: a.model.config(),
    };
    c.checked_scores()?;
    let gpu = crate::open_device()?;
    let r = pollster::block_on(run::run_loop(gpu.as_ref(), &c))?;
    let metric = r.metric;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    std::fs::write(a.out.join("loop.json"), serde_json::to_string_pretty(&r.rounds)?)?;
    std::fs::write(a.out.join("loop.md"), &r.markdown)?;
    let series = r.series();
    for ext in ["svg", "png"] {
        let title = format!("warm loop from {}: {metric} per round", a.start);
        plot_lines(&a.out.join(format!("loop_{metric}.{ext}")), &title, "labelled images", metric, &series, &[])?;
    }
    println!("{}", r.markdown);
    println!("wrote {}/loop.md, loop.json and loop_{metric}.{{svg,png}}", a.out.display());
    Ok(true)
}
