//! `medpick bench protocol`: the MedCAL-style benchmark in one command (classification). Ingest the dataset,
//! embed its train and test splits (cached), run every strategy × budget (Random over several seeds), and write
//! results.json (resumable), results.md and plots (SVG and PNG, via plotters).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use medpick_core::protocol::{self, RunResult};
use medpick_core::train::cls::{self, ClsConfig, HeadKind};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

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
    #[arg(long, default_value = "27,54,81", value_delimiter = ',')]
    pub budgets: Vec<usize>,
    /// Seeds for Random (the other strategies run with seed 0).
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    /// Head: linear (probe on standardised features) or dropquery.
    #[arg(long, default_value = "linear")]
    pub head: String,
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// seg: training batch size (MedCAL: 8).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Keep the head of best validation accuracy (cls) or validation Dice (seg), evaluated every N epochs and
    /// after the last on the dataset's validation split (MedCAL: 5); 0 keeps the last epoch's head.
    #[arg(long, default_value_t = 0)]
    pub val_every: usize,
    #[command(flatten)]
    pub seg: crate::train_seg::SegArgs,
    /// Use at most this many training / test samples (a seeded subset; 0 = all): for quick runs.
    #[arg(long, default_value_t = 0)]
    pub max_train: usize,
    #[arg(long, default_value_t = 0)]
    pub max_test: usize,
    /// Output folder (resumes the runs already in its results.json).
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Run selection and training on the CPU twins.
    #[arg(long)]
    pub cpu: bool,
    #[command(flatten)]
    pub model: crate::ModelArgs,
}

/// The strategy whose picks the PCA map shows (TypiClust if it ran, else the first non-random one) and its
/// picks at `budget`.
pub(crate) fn shown_picks<'s>(strategies: &'s [String], runs: &[RunResult], budget: usize) -> (&'s str, Vec<String>) {
    let shown = strategies
        .iter()
        .find(|s| *s == "typiclust")
        .or_else(|| strategies.iter().find(|s| *s != "random"))
        .unwrap_or(&strategies[0]);
    let picks =
        runs.iter().find(|r| &r.strategy == shown && r.budget == budget).map(|r| r.picks.clone()).unwrap_or_default();
    (shown, picks)
}

/// What results.json holds: the settings (a resume must match them) and the runs so far.
#[derive(Serialize, Deserialize)]
pub(crate) struct ResultsFile {
    pub settings: serde_json::Value,
    pub classes: Vec<String>,
    pub runs: Vec<RunResult>,
    /// seg: the test metrics of an untrained head (seed 0), the floor every run should clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrained: Option<serde_json::Value>,
}

pub(crate) fn subset(idx: Vec<usize>, max: usize, seed: u64) -> Vec<usize> {
    if max == 0 || idx.len() <= max {
        return idx;
    }
    let mut v = idx;
    medpick_core::rng::Rng::new(seed).shuffle(&mut v);
    let mut keep = v[..max].to_vec();
    keep.sort_unstable();
    keep
}

/// `--strategies` (all, or a comma list; random always included) and a check of `--budgets`.
pub(crate) fn parse_strategies(list: &str, budgets: &[usize]) -> Result<Vec<String>> {
    if budgets.is_empty() || budgets.contains(&0) {
        bail!("--budgets: give positive budgets, e.g. 27,54,81");
    }
    let mut strategies: Vec<String> = if list == "all" {
        medpick_core::select::COLD_START.iter().map(|s| s.to_string()).collect()
    } else {
        list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    for s in &strategies {
        if !medpick_core::select::COLD_START.contains(&s.as_str()) {
            bail!("--strategies: unknown strategy {s} (known: {})", medpick_core::select::COLD_START.join(", "));
        }
    }
    if !strategies.iter().any(|s| s == "random") {
        strategies.insert(0, "random".into());
    }
    Ok(strategies)
}

/// Read results.json from `out` when its settings match, or start a new one.
pub(crate) fn open_results(out: &Path, settings: &serde_json::Value, classes: &[String]) -> Result<ResultsFile> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let results_path = out.join("results.json");
    if results_path.exists() {
        let text = std::fs::read_to_string(&results_path)?;
        let f: ResultsFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a medpick results file", results_path.display()))?;
        if &f.settings != settings {
            bail!("{} holds runs with other settings ({}); pass another --out", results_path.display(), f.settings);
        }
        eprintln!("resuming: {} runs already in {}", f.runs.len(), results_path.display());
        Ok(f)
    } else {
        Ok(ResultsFile { settings: settings.clone(), classes: classes.to_vec(), runs: Vec::new(), untrained: None })
    }
}

/// Write results.json atomically (a temporary file, then a rename).
pub(crate) fn save_results(out: &Path, file: &ResultsFile) -> Result<()> {
    let path = out.join("results.json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(file)?)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// The (strategy, budget, seed) runs not yet in `done`.
pub(crate) fn todo_runs(
    strategies: &[String],
    budgets: &[usize],
    seeds: usize,
    done: &[RunResult],
) -> Vec<(String, usize, u64)> {
    strategies
        .iter()
        .flat_map(|s| {
            budgets
                .iter()
                .flat_map(move |&b| protocol::seeds_for(s, seeds).into_iter().map(move |sd| (s.clone(), b, sd)))
        })
        .filter(|(s, b, sd)| !done.iter().any(|r| &r.strategy == s && r.budget == *b && r.seed == *sd))
        .collect()
}

pub fn run(a: ProtocolArgs) -> Result<bool> {
    match a.task.as_str() {
        "cls" => {}
        "seg" => return crate::protocol_seg::run(a),
        other => bail!("--task {other}: use cls or seg"),
    }
    let strategies = parse_strategies(&a.strategies, &a.budgets)?;
    let head = HeadKind::parse(&a.head)?;

    let gpu = crate::open_gpu()?;
    let max_budget = *a.budgets.iter().max().unwrap_or(&0);
    let data = prepare(&gpu, &a.dataset, &a.model, a.max_train, a.max_test, max_budget, a.val_every > 0)?;
    let (classes, ftr, fte, ytr, yte) = (&data.classes, &data.train, &data.test, &data.ytr, &data.yte);
    let mut settings = serde_json::json!({
        "dataset": a.dataset.display().to_string(), "task": a.task, "model": a.model.model, "pool": a.model.pool,
        "head": a.head, "epochs": a.epochs, "max_train": a.max_train, "max_test": a.max_test,
    });
    if a.val_every > 0 {
        // Only when on, so results written before the flag existed still resume.
        settings["val_every"] = a.val_every.into();
    }
    let mut file = open_results(&a.out, &settings, classes)?;

    let ctx = if a.cpu { None } else { Some(&gpu) };
    let train = protocol::Split { ids: &ftr.ids, x: &ftr.data, dim: ftr.dim, labels: &ytr };
    let test = protocol::Split { ids: &fte.ids, x: &fte.data, dim: fte.dim, labels: &yte };
    let cfg = ClsConfig { kind: head, epochs: a.epochs, ..Default::default() };

    let todo = todo_runs(&strategies, &a.budgets, a.seeds, &file.runs);
    let pb = crate::progress_bar("protocol");
    pb.set_length(todo.len() as u64);
    for (s, b, sd) in todo {
        pb.set_message(format!("{s} budget {b} seed {sd}"));
        let val = data.val.as_ref().map(|(f, y)| cls::Validation { x: &f.data, labels: y, every: a.val_every });
        let r = pollster::block_on(protocol::run_one(ctx, &train, &test, classes.len(), &s, b, sd, &cfg, val))
            .with_context(|| format!("{s} at budget {b}, seed {sd}"))?;
        file.runs.push(r);
        save_results(&a.out, &file)?;
        pb.inc(1);
    }
    pb.finish_and_clear();

    // Report.
    let mut md = format!(
        "# medpick bench protocol\n\nDataset `{}` ({} training / {} test samples, classes {:?}), model `{}` ({} pool), \
         head `{}` ({} epochs, AdamW), Random over {} seeds. Generated by `medpick bench protocol`.\n",
        a.dataset.display(), ftr.ids.len(), fte.ids.len(), classes, a.model.model, a.model.pool, a.head, a.epochs, a.seeds
    );
    if let Some((f, _)) = &data.val {
        md.push_str(&format!(
            "\nModel selection: each run keeps the head of best validation accuracy, evaluated every {} epochs on the \
             {} samples of the validation split (MedCAL); `best_epoch` in results.json.\n",
            a.val_every,
            f.ids.len()
        ));
    }
    for m in protocol::METRICS {
        md.push_str(&format!("\n## {m}\n\n{}", protocol::markdown(&file.runs, &strategies, &a.budgets, m)));
    }
    let steps: usize = file.runs.iter().map(|r| r.train_steps).sum();
    let secs: f64 = file.runs.iter().map(|r| r.train_seconds).sum();
    md.push_str(&format!(
        "\nTraining: {} runs, {steps} steps in {secs:.1} s ({:.2} ms per step, batch 32).\n",
        file.runs.len(),
        1e3 * secs / steps.max(1) as f64
    ));
    md.push_str("\nPlots: `balanced_accuracy_vs_budget.{svg,png}`, `pool_pca.{svg,png}`.\n");
    std::fs::write(a.out.join("results.md"), &md)?;
    for ext in ["svg", "png"] {
        plot_metric(
            &a.out.join(format!("balanced_accuracy_vs_budget.{ext}")),
            &file.runs,
            &strategies,
            &a.budgets,
            "balanced_accuracy",
        )?;
        let (shown, picks) = shown_picks(&strategies, &file.runs, max_budget);
        plot_pca(&a.out.join(format!("pool_pca.{ext}")), ftr, &picks, shown, max_budget)?;
    }
    println!("{md}");
    println!("wrote {}/results.md, results.json and plots", a.out.display());
    Ok(true)
}

/// A labelled dataset's train and test features (and validation features when asked for).
pub struct Prepared {
    pub classes: Vec<String>,
    pub train: medpick_core::features::Features,
    pub test: medpick_core::features::Features,
    pub ytr: Vec<usize>,
    pub yte: Vec<usize>,
    pub val: Option<(medpick_core::features::Features, Vec<usize>)>,
}

/// Ingest `dataset`, take its train/test split (the file's own, or a seeded 70/10/20 one), subsample, embed.
pub fn prepare(
    gpu: &medpick_core::gpu::GpuContext,
    dataset: &Path,
    model: &crate::ModelArgs,
    max_train: usize,
    max_test: usize,
    max_budget: usize,
    with_val: bool,
) -> Result<Prepared> {
    // Samples and splits.
    let (root, samples, split) = crate::load_samples(dataset, None)?;
    let mut classes: Vec<String> = samples.iter().filter_map(|s| s.label.clone()).collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        bail!("{}: classification needs labels of at least 2 classes, found {:?}", dataset.display(), classes);
    }
    let (train_s, test_s, val_s) =
        split_samples(dataset, &samples, split, &|s| s.label.is_some(), max_train, max_test, max_budget)?;
    eprintln!("protocol: {} training, {} test samples, classes {:?}", train_s.len(), test_s.len(), classes);
    if with_val && val_s.is_empty() {
        bail!("{}: --val-every needs a validation split with labels; the dataset has none", dataset.display());
    }

    let ftr = crate::embed_features(gpu, model, &root, &train_s)?;
    let fte = crate::embed_features(gpu, model, &root, &test_s)?;
    let fva = if with_val { Some(crate::embed_features(gpu, model, &root, &val_s)?) } else { None };
    let label_of: std::collections::HashMap<&str, usize> = train_s
        .iter()
        .chain(&test_s)
        .chain(&val_s)
        .map(|s| (s.id.as_str(), classes.iter().position(|c| Some(c) == s.label.as_ref()).unwrap_or(0)))
        .collect();
    let labels =
        |f: &medpick_core::features::Features| -> Vec<usize> { f.ids.iter().map(|id| label_of[id.as_str()]).collect() };
    let (ytr, yte) = (labels(&ftr), labels(&fte));
    let val = fva.map(|f| {
        let y = labels(&f);
        (f, y)
    });
    Ok(Prepared { classes, train: ftr, test: fte, ytr, yte, val })
}

/// The training pool, test split and validation split of `samples` that pass `keep`: the dataset's own split
/// (the samples' or the split file's), or a seeded 70/10/20 one; train and test subsampled to `max_train` /
/// `max_test` (0 = all), validation whole.
pub(crate) fn split_samples(
    dataset: &Path,
    samples: &[medpick_core::manifest::Sample],
    split: Option<std::collections::HashMap<String, medpick_core::manifest::Split>>,
    keep: &dyn Fn(&medpick_core::manifest::Sample) -> bool,
    max_train: usize,
    max_test: usize,
    max_budget: usize,
) -> Result<(
    Vec<medpick_core::manifest::Sample>,
    Vec<medpick_core::manifest::Sample>,
    Vec<medpick_core::manifest::Sample>,
)> {
    use medpick_core::manifest::Split;
    let split_of = |s: &medpick_core::manifest::Sample| -> Option<Split> {
        s.given_split.or_else(|| split.as_ref().and_then(|m| m.get(&s.id).copied()))
    };
    let computed;
    let split_fn: Box<dyn Fn(&medpick_core::manifest::Sample) -> Option<Split>> =
        if samples.iter().any(|s| split_of(s).is_some()) {
            Box::new(split_of)
        } else {
            computed = medpick_core::manifest::make_split(&samples, 0, 0.1, 0.2)?
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>();
            eprintln!("{}: no split given; using a seeded 70/10/20 split (seed 0)", dataset.display());
            Box::new(move |s| computed.get(&s.id).copied())
        };
    let pick = |which: Split, max: usize, seed: u64| -> Vec<medpick_core::manifest::Sample> {
        let idx: Vec<usize> =
            (0..samples.len()).filter(|&i| split_fn(&samples[i]) == Some(which) && keep(&samples[i])).collect();
        subset(idx, max, seed).into_iter().map(|i| samples[i].clone()).collect()
    };
    let train_s = pick(Split::Train, max_train, 1);
    let test_s = pick(Split::Test, max_test, 2);
    if train_s.is_empty() || test_s.is_empty() {
        bail!(
            "{}: {} training and {} test samples with what the task needs (labels for cls, masks for seg)",
            dataset.display(),
            train_s.len(),
            test_s.len()
        );
    }
    if max_budget > train_s.len() {
        bail!("--budgets: {max_budget} exceeds the training pool of {}", train_s.len());
    }
    let val_s = pick(Split::Val, 0, 3);
    Ok((train_s, test_s, val_s))
}

/// Line colours: matplotlib's tab10, then six more dark, distinct ones, so that all 13 cold-start strategies and
/// Random (black) get a colour of their own.
const COLORS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 0, 0),
    RGBColor(0, 128, 128),
    RGBColor(204, 163, 0),
    RGBColor(85, 107, 47),
    RGBColor(199, 21, 133),
];

/// One line per strategy: mean metric vs budget, with Random's mean ± sd as a band.
pub(crate) fn plot_metric(
    path: &Path,
    runs: &[RunResult],
    strategies: &[String],
    budgets: &[usize],
    metric: &str,
) -> Result<()> {
    let mut bs = budgets.to_vec();
    bs.sort_unstable();
    let band: Vec<(f64, f64, f64)> = bs
        .iter()
        .filter_map(|&b| protocol::cell(runs, "random", b, metric).map(|c| (b as f64, c.mean - c.sd, c.mean + c.sd)))
        .collect();
    let series: Vec<(String, Vec<(f64, f64)>)> = strategies
        .iter()
        .map(|s| {
            (
                s.clone(),
                bs.iter().filter_map(|&b| protocol::cell(runs, s, b, metric).map(|c| (b as f64, c.mean))).collect(),
            )
        })
        .collect();
    let title = format!("{metric} vs budget (Random: mean ± sd band)");
    plot_lines(path, &title, "budget (labelled images)", metric, &series, &band)
}

/// Lines (first series named "random" in black) over an optional band, SVG or PNG by the file's extension.
pub fn plot_lines(
    path: &Path,
    title: &str,
    xdesc: &str,
    ydesc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    band: &[(f64, f64, f64)],
) -> Result<()> {
    let is_svg = path.extension().is_some_and(|e| e == "svg");
    if is_svg {
        draw_lines(SVGBackend::new(path, (900, 560)).into_drawing_area(), title, xdesc, ydesc, series, band)
    } else {
        draw_lines(BitMapBackend::new(path, (900, 560)).into_drawing_area(), title, xdesc, ydesc, series, band)
    }
    .with_context(|| format!("plotting {}", path.display()))
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    xdesc: &str,
    ydesc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    band: &[(f64, f64, f64)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("{e:?}");
    root.fill(&WHITE).map_err(e)?;
    let ys: Vec<f64> =
        series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).chain(band.iter().flat_map(|b| [b.1, b.2])).collect();
    let xs: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).collect();
    let (lo, hi) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo <= hi { (lo - 0.03, hi + 0.03) } else { (0.0, 1.0) };
    let (x0, x1) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (x0, x1) = if x0 <= x1 { (x0, x1) } else { (0.0, 1.0) };
    let pad = ((x1 - x0) * 0.05).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), lo..hi)
        .map_err(e)?;
    chart.configure_mesh().x_desc(xdesc).y_desc(ydesc).draw().map_err(e)?;
    if band.len() > 1 {
        let poly: Vec<(f64, f64)> =
            band.iter().map(|&(b, l, _)| (b, l)).chain(band.iter().rev().map(|&(b, _, h)| (b, h))).collect();
        chart.draw_series(std::iter::once(Polygon::new(poly, BLACK.mix(0.12)))).map_err(e)?;
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = if name == "random" { BLACK } else { COLORS[i % COLORS.len()] };
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(e)?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

pub(crate) fn plot_pca(
    path: &Path,
    f: &medpick_core::features::Features,
    picks: &[String],
    strategy: &str,
    budget: usize,
) -> Result<()> {
    let x = medpick_core::select::Matrix::new(&f.data, f.ids.len(), f.dim)?;
    let pts = medpick_core::select::pca::pca2(x);
    let picked: std::collections::HashSet<&str> = picks.iter().map(String::as_str).collect();
    let is_svg = path.extension().is_some_and(|e| e == "svg");
    let title = format!("training pool, PCA of the features; {strategy} picks at budget {budget}");
    if is_svg {
        draw_pca(SVGBackend::new(path, (760, 600)).into_drawing_area(), &pts, &f.ids, &picked, &title)
    } else {
        draw_pca(BitMapBackend::new(path, (760, 600)).into_drawing_area(), &pts, &f.ids, &picked, &title)
    }
    .with_context(|| format!("plotting {}", path.display()))
}

fn draw_pca<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    pts: &[[f32; 2]],
    ids: &[String],
    picked: &std::collections::HashSet<&str>,
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for p in pts {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    let (dx, dy) = (((x1 - x0) * 0.05).max(1e-3), ((y1 - y0) * 0.05).max(1e-3));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d((x0 - dx)..(x1 + dx), (y0 - dy)..(y1 + dy))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    chart.configure_mesh().x_desc("PC 1").y_desc("PC 2").draw().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    chart
        .draw_series(
            pts.iter()
                .zip(ids)
                .filter(|(_, id)| !picked.contains(id.as_str()))
                .map(|(p, _)| Circle::new((p[0], p[1]), 2, RGBColor(140, 149, 159).filled())),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    chart
        .draw_series(
            pts.iter()
                .zip(ids)
                .filter(|(_, id)| picked.contains(id.as_str()))
                .map(|(p, _)| Circle::new((p[0], p[1]), 5, RGBColor(207, 34, 46).filled())),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
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
    pub seg: crate::train_seg::SegArgs,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "linear")]
    pub head: String,
    #[arg(long, default_value_t = 100)]
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

/// `medpick bench loop`: the warm loop per score, one table row each.
pub fn run_loop(a: LoopArgs) -> Result<bool> {
    let (known, default) = match a.task.as_str() {
        "cls" => (protocol::LOOP_SCORES, "random,entropy,margin,bald,dropquery,coreset"),
        "seg" => (protocol::SEG_LOOP_SCORES, "random,lc,entropy,her,herd,margin,asd,coreset"),
        t => bail!("--task {t}: use cls or seg"),
    };
    let scores: Vec<String> = a
        .scores
        .as_deref()
        .unwrap_or(default)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for s in &scores {
        if !known.contains(&s.as_str()) {
            bail!("--scores: unknown score {s} for --task {} (known: {})", a.task, known.join(", "));
        }
    }
    if !medpick_core::select::COLD_START.contains(&a.start.as_str()) {
        bail!("--start: unknown strategy {} (known: {})", a.start, medpick_core::select::COLD_START.join(", "));
    }
    let seg = a.task == "seg";
    let all = if seg { crate::protocol_seg::run_loop(&a, &scores)? } else { cls_loop(&a, &scores)? };
    let (metric, value): (&str, fn(&protocol::RoundResult) -> f64) = match seg {
        true => ("dice", |r| r.dice.unwrap_or(f64::NAN)),
        false => ("balanced_accuracy", |r| r.balanced_accuracy),
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    std::fs::write(a.out.join("loop.json"), serde_json::to_string_pretty(&all)?)?;
    let counts: Vec<usize> = (0..a.rounds).map(|r| (r + 1) * a.batch).collect();
    let mut md = format!(
        "# medpick bench loop\n\nDataset `{}`, task {}, model `{}`, start `{}`, {} rounds of {}, {}, seed {}.\n\n\
         {} on the test split by labelled-set size:\n\n| score | {} |\n|---|{}\n",
        a.dataset.display(),
        a.task,
        a.model.model,
        a.start,
        a.rounds,
        a.batch,
        if seg { format!("segmentation head, {} epochs", a.epochs) } else { format!("head `{}`", a.head) },
        a.seed,
        if seg { "Mean per-image Dice" } else { "Balanced accuracy" },
        counts.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(counts.len())
    );
    for s in &scores {
        let row: Vec<String> = all.iter().filter(|r| &r.score == s).map(|r| format!("{:.3}", value(r))).collect();
        md.push_str(&format!("| {s} | {} |\n", row.join(" | ")));
    }
    std::fs::write(a.out.join("loop.md"), &md)?;
    let series: Vec<(String, Vec<(f64, f64)>)> = scores
        .iter()
        .map(|s| (s.clone(), all.iter().filter(|r| &r.score == s).map(|r| (r.labeled as f64, value(r))).collect()))
        .collect();
    for ext in ["svg", "png"] {
        plot_lines(
            &a.out.join(format!("loop_{metric}.{ext}")),
            &format!("warm loop from {}: {metric} per round", a.start),
            "labelled images",
            metric,
            &series,
            &[],
        )?;
    }
    println!("{md}");
    println!("wrote {}/loop.md, loop.json and loop_{metric}.{{svg,png}}", a.out.display());
    Ok(true)
}

/// The classification warm loop per score.
fn cls_loop(a: &LoopArgs, scores: &[String]) -> Result<Vec<protocol::RoundResult>> {
    let gpu = crate::open_gpu()?;
    let data = prepare(&gpu, &a.dataset, &a.model, a.max_train, a.max_test, a.batch * a.rounds, false)?;
    let ctx = if a.cpu { None } else { Some(&gpu) };
    let train = protocol::Split { ids: &data.train.ids, x: &data.train.data, dim: data.train.dim, labels: &data.ytr };
    let test = protocol::Split { ids: &data.test.ids, x: &data.test.data, dim: data.test.dim, labels: &data.yte };
    let cfg = ClsConfig { kind: HeadKind::parse(&a.head)?, epochs: a.epochs, ..Default::default() };
    each_score(scores, &mut |s, _| {
        pollster::block_on(protocol::warm_loop(
            ctx,
            &train,
            &test,
            data.classes.len(),
            &a.start,
            s,
            a.rounds,
            a.batch,
            a.seed,
            &cfg,
        ))
        .map_err(Into::into)
    })
}

/// Run the warm loop once per score under one progress bar (the bar is passed on for finer messages).
pub(crate) fn each_score(
    scores: &[String],
    run: &mut dyn FnMut(&str, &indicatif::ProgressBar) -> Result<Vec<protocol::RoundResult>>,
) -> Result<Vec<protocol::RoundResult>> {
    let pb = crate::progress_bar("loop");
    pb.set_length(scores.len() as u64);
    let mut all = Vec::new();
    for s in scores {
        pb.set_message(s.clone());
        all.extend(run(s, &pb).with_context(|| format!("score {s}"))?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(all)
}
