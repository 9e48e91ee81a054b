//! The protocol and the warm loop from a dataset to their reports: prepare the data, run what `results.json`
//! does not hold yet (saving after every run), write `results.md` (or `loop.json` and `loop.md`). The front end
//! draws the plots from what these return.

use std::path::PathBuf;

use super::labelfree;
use super::prepare::prepare;
use super::results::{open_results, parse_strategies, save_results, todo_runs, ResultsFile};
use super::seg_data::SegData;
use super::{RoundResult, RunResult};
use crate::cpu::DiceMode;
use crate::embed::features::Features;
use crate::embed::EmbedConfig;
use crate::gpu::GpuContext;
use crate::protocol;
use crate::select::Matrix;
use crate::train::cls::{self, ClsConfig, HeadKind};
use crate::train::pseudo::{PseudoRound, SamPseudo};
use crate::train::seg::{SegHead, SegSettings};
use crate::{Context, Result};

/// What `medpick bench protocol` asks for.
#[derive(Clone, Debug)]
pub struct ProtocolConfig {
    /// A MedMNIST .npz, a folder, or a manifest with its split.
    pub dataset: PathBuf,
    /// "all" or a comma list (Random is always added).
    pub strategies: String,
    pub budgets: Vec<usize>,
    /// Seeds for Random (the other strategies run with seed 0).
    pub seeds: usize,
    /// Classification head: linear or dropquery.
    pub head: String,
    pub epochs: usize,
    /// Segmentation: training batch size.
    pub batch: usize,
    /// Keep the head of best validation score, evaluated every N epochs (0: the last epoch's head).
    pub val_every: usize,
    /// Segmentation head settings.
    pub seg: SegSettings,
    /// Seeded subsets of the train / test splits (0 = all).
    pub max_train: usize,
    pub max_test: usize,
    /// Output folder (resumes the runs already in its results.json).
    pub out: PathBuf,
    /// Selection and training on the CPU kernels.
    pub cpu: bool,
    pub model: EmbedConfig,
}

impl ProtocolConfig {
    /// The settings checked before any work (the device, the data): strategies, budgets, the head and, for
    /// segmentation, the head's training settings. `task`: cls or seg.
    pub fn check(&self, task: &str) -> Result<()> {
        parse_strategies(&self.strategies, &self.budgets)?;
        match task {
            "cls" => HeadKind::parse(&self.head).map(|_| ()),
            "seg" if self.head != "linear" => {
                let why = "applies to ‹task› cls; the segmentation head is set with ‹hidden›";
                Err(crate::Error::setting("head", &self.head, why))
            }
            "seg" => self.seg.config(self.epochs, self.batch, 0, 1).map(|_| ()),
            t => Err(crate::Error::setting("task", t, "use cls or seg")),
        }
    }
}

/// A finished protocol: the results file, the strategies in table order, the report, and what the plots need.
pub struct ProtocolReport {
    pub file: ResultsFile,
    pub strategies: Vec<String>,
    pub markdown: String,
    /// The metric plotted against the budget (balanced_accuracy or dice).
    pub metric: &'static str,
    /// The training pool's features (spatial means of the grids for segmentation), for the PCA map.
    pub pool: Features,
    pub max_budget: usize,
}

fn max_budget(budgets: &[usize]) -> usize {
    budgets.iter().copied().max().unwrap_or(0)
}

/// Run every (strategy, budget, seed) not yet in the results file, saving it after each.
async fn run_all<F, Fut>(c: &ProtocolConfig, strategies: &[String], file: &mut ResultsFile, mut one: F) -> Result<()>
where
    F: FnMut(String, usize, u64, std::rc::Rc<dyn crate::progress::Bar>) -> Fut,
    Fut: std::future::Future<Output = Result<RunResult>>,
{
    let todo = todo_runs(strategies, &c.budgets, c.seeds, &file.runs);
    let pb: std::rc::Rc<dyn crate::progress::Bar> = crate::progress::bar("protocol").into();
    pb.set_length(todo.len() as u64);
    for (s, b, sd) in todo {
        pb.set_message(format!("{s} budget {b} seed {sd}"));
        let r = one(s.clone(), b, sd, pb.clone()).await.with_context(|| format!("{s} at budget {b}, seed {sd}"))?;
        file.runs.push(r);
        save_results(&c.out, file)?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(())
}

/// The classification protocol.
pub async fn run_cls(gpu: Option<&GpuContext>, c: &ProtocolConfig) -> Result<ProtocolReport> {
    let strategies = parse_strategies(&c.strategies, &c.budgets)?;
    let head = HeadKind::parse(&c.head)?;
    let max_budget = max_budget(&c.budgets);
    let data = prepare(gpu, &c.dataset, &c.model, c.max_train, c.max_test, max_budget, c.val_every > 0).await?;
    let (classes, ftr, fte, ytr, yte) = (&data.classes, &data.train, &data.test, &data.ytr, &data.yte);
    let mut settings = serde_json::json!({
        "dataset": c.dataset.display().to_string(), "task": "cls", "model": c.model.model, "pool": c.model.pool,
        "head": c.head, "epochs": c.epochs, "max_train": c.max_train, "max_test": c.max_test,
    });
    if c.val_every > 0 {
        // Only when on, so results written before the setting existed still resume.
        settings["val_every"] = c.val_every.into();
    }
    let mut file = open_results(&c.out, &settings, classes)?;
    let ctx = if c.cpu { None } else { gpu };
    let train = protocol::Split { ids: &ftr.ids, x: &ftr.data, dim: ftr.dim, labels: ytr };
    let test = protocol::Split { ids: &fte.ids, x: &fte.data, dim: fte.dim, labels: yte };
    let cfg = ClsConfig { kind: head, epochs: c.epochs, ..Default::default() };
    let (train, test, cfg) = (&train, &test, &cfg);
    let val = data.val.as_ref().map(|(f, y)| cls::Validation { x: &f.data, labels: y, every: c.val_every });
    run_all(c, &strategies, &mut file, |s, b, sd, _| async move {
        protocol::run_one(ctx, train, test, classes.len(), &s, b, sd, cfg, val).await
    })
    .await?;

    let mut md = format!(
        "# medpick bench protocol\n\nDataset `{}` ({} training / {} test samples, classes {:?}), model `{}` ({} pool), \
         head `{}` ({} epochs, AdamW), every strategy over {} seeds (paired with Random's seed by seed; `paired.json`). \
         Generated by `medpick bench protocol`.\n",
        c.dataset.display(),
        ftr.ids.len(),
        fte.ids.len(),
        classes,
        c.model.model,
        c.model.pool,
        c.head,
        c.epochs,
        c.seeds
    );
    if let Some((f, _)) = &data.val {
        md.push_str(&format!(
            "\nModel selection: each run keeps the head of best validation accuracy, evaluated every {} epochs on the \
             {} samples of the validation split (MedCAL); `best_epoch` in results.json.\n",
            c.val_every,
            f.ids.len()
        ));
    }
    let (tables, pairs) = metric_tables(&c.out, &file.runs, &strategies, &c.budgets, protocol::METRICS)?;
    md.push_str(&tables);
    let mut pool_counts = vec![0usize; classes.len()];
    for &y in ytr.iter() {
        pool_counts[y] += 1;
    }
    md.push_str(&protocol::class_balance_markdown(&file.runs, &strategies, &c.budgets, classes, &pool_counts));
    let x = Matrix::new(&ftr.data, ftr.ids.len(), ftr.dim)?;
    let metric = "balanced_accuracy";
    let (runs, budgets) = (&file.runs, &c.budgets);
    md.push_str(&labelfree::label_free(&c.out, x, &ftr.ids, runs, &pairs, &strategies, budgets, metric).await?);
    let steps: usize = file.runs.iter().map(|r| r.train_steps).sum();
    let secs: f64 = file.runs.iter().map(|r| r.train_seconds).sum();
    md.push_str(&format!(
        "\nTraining: {} runs, {steps} steps in {secs:.1} s ({:.2} ms per step, batch 32).\n",
        file.runs.len(),
        1e3 * secs / steps.max(1) as f64
    ));
    md.push_str("\nPlots: `balanced_accuracy_vs_budget.{svg,png}`, `balanced_accuracy_vs_random.{svg,png}`, `pool_pca.{svg,png}`.\n");
    std::fs::write(c.out.join("results.md"), &md).with_context(|| format!("writing {}", c.out.display()))?;
    Ok(ProtocolReport { file, strategies, markdown: md, metric: "balanced_accuracy", pool: data.train, max_budget })
}

/// Per metric, the means table and the paired comparison with Random (Markdown); the paired rows of every metric
/// also go to `out/paired.json` ([`protocol::paired`]).
fn metric_tables(
    out: &std::path::Path,
    runs: &[protocol::RunResult],
    strategies: &[String],
    budgets: &[usize],
    metrics: &[&str],
) -> Result<(String, Vec<protocol::paired::Paired>)> {
    let mut md = String::new();
    let mut rows = Vec::new();
    for m in metrics {
        let paired = protocol::paired::compare(runs, strategies, budgets, m);
        md.push_str(&format!("\n## {m}\n\n{}", protocol::markdown(runs, strategies, budgets, m)));
        md.push_str(&format!("\n{}", protocol::paired::markdown(&paired, budgets)));
        rows.extend(paired);
    }
    let p = out.join("paired.json");
    std::fs::write(&p, serde_json::to_string_pretty(&rows)?).with_context(|| format!("writing {}", p.display()))?;
    Ok((md, rows))
}

/// The segmentation protocol.
pub async fn run_seg(gpu: Option<&GpuContext>, c: &ProtocolConfig) -> Result<ProtocolReport> {
    let strategies = parse_strategies(&c.strategies, &c.budgets)?;
    if c.head != "linear" {
        let why = "applies to ‹task› cls; the segmentation head is set with ‹hidden›";
        return Err(crate::Error::setting("head", &c.head, why));
    }
    let max_budget = max_budget(&c.budgets);
    let (m, ds) = (&c.model, &c.dataset);
    let d = SegData::prepare(gpu, ds, m, &c.seg, c.cpu, c.max_train, c.max_test, max_budget, c.val_every).await?;
    let (shape, r) = (d.shape, d.r);
    let (oh, ow) = (shape.h * r, shape.w * r);
    let cfg = c.seg.config(c.epochs, c.batch, 0, r)?;
    let mut settings = serde_json::json!({
        "dataset": c.dataset.display().to_string(), "task": "seg", "model": c.model.model, "epochs": c.epochs,
        "batch": cfg.batch, "hidden": cfg.hidden, "optimizer": c.seg.optimizer, "lr": cfg.lr,
        "seg_loss": c.seg.seg_loss, "augment": cfg.augment, "mean_teacher": cfg.mean_teacher.is_some(),
        "pseudo_labels": cfg.pseudo,
        "max_train": c.max_train, "max_test": c.max_test,
    });
    // Only when on, so results written before these settings existed still resume.
    if c.val_every > 0 {
        settings["val_every"] = c.val_every.into();
    }
    if cfg.intensity_variants > 0 {
        settings["intensity_variants"] = cfg.intensity_variants.into();
    }
    let mut file = open_results(&c.out, &settings, &[])?;
    let ctx = if c.cpu { None } else { gpu };
    let embedding = |i: usize| d.embedding(i);
    let sam = d.sam.as_ref().map(|s| SamPseudo { decoder: &s.decoder, embedding: &embedding });
    let (pool, test) = (d.pool(sam.as_ref()), d.test());
    // The floor: an untrained head with the initialisation of seed 0.
    let untrained = SegHead::init(shape, cfg.hidden, r, &mut crate::rng::Rng::new(0))?;
    let floor = protocol::eval_seg(ctx, &untrained, &test).await?;
    file.untrained = Some(serde_json::to_value(floor)?);
    let (pool_r, test_r, cfg_r) = (&pool, &test, &cfg);
    run_all(c, &strategies, &mut file, |s, b, sd, pb| async move {
        let mut step = |k: usize, n: usize| pb.set_message(format!("{s} budget {b} seed {sd}: training step {k}/{n}"));
        protocol::run_one_seg(ctx, pool_r, test_r, shape, &s, b, sd, cfg_r, &mut step).await
    })
    .await?;

    let extras: String = [
        (cfg.augment, ", flips/rotations".to_string()),
        (
            cfg.intensity_variants > 0,
            format!(", {} intensity variants per image (brightness, contrast, gamma)", cfg.intensity_variants),
        ),
        (cfg.mean_teacher.is_some(), ", mean teacher on the unpicked pool".to_string()),
        (cfg.pseudo.is_some(), ", LiteMedSAM pseudo-labels on the unpicked pool (ASSFT-like filter)".to_string()),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, t)| t)
    .collect();
    let scoring = match protocol::incomplete_volumes(&d.te_places) {
        (n, bad) if n > 0 && bad.is_empty() => format!(
            "Test metrics per volume in 3-D ({n} test volumes): each volume's predicted slices (resized back to \
             the mask's size, nearest) stacked, connected components under a third of the largest dropped \
             (MedCAL), Dice and IoU over voxels, HD95 and ASD in mm; mean over volumes (HD95 and ASD over the \
             volumes where both are non-empty)."
        ),
        _ => "Test metrics per image at the mask's own size (prediction resized back, nearest), mean over \
              images; HD95 and ASD in pixels over the images where both masks are non-empty."
            .to_string(),
    };
    let mut md = format!(
        "# medpick bench protocol (segmentation)\n\nDataset `{}` ({} training / {} test images), model `{}` \
         (feature grid {}×{}×{}), head: 3×3 conv → LayerNorm → GELU → 1×1 conv → pixel shuffle ×{r} to {oh}×{ow}, \
         {} hidden channels; loss 0.5·CE + 0.5·{}; {} (lr {}), batch {}, {} epochs{extras}. Every strategy over {} \
         seeds (paired with Random's seed by seed; `paired.json`). \
         {scoring} Generated by `medpick bench protocol --task seg`.\n",
        c.dataset.display(),
        d.tr_ids.len(),
        d.te_ids.len(),
        c.model.model,
        shape.c,
        shape.h,
        shape.w,
        cfg.hidden,
        if cfg.dice == DiceMode::Soft { "soft Dice (MedCAL)" } else { "noise-robust Dice (γ 1.5)" },
        c.seg.optimizer,
        cfg.lr,
        cfg.batch,
        c.epochs,
        c.seeds,
    );
    md.push_str(&format!(
        "\nAn untrained head (seed 0's initialisation) scores Dice {:.3}, IoU {:.3} on the same test images.\n",
        floor.dice, floor.iou
    ));
    if d.val_every > 0 {
        md.push_str(&format!(
            "\nModel selection: each run keeps the head of best validation Dice (prediction > 0.5 at the head's \
             output), evaluated every {} epochs and after the last on the {} images of the validation split \
             (MedCAL); `best_epoch` and `val_dice` in results.json.\n",
            d.val_every,
            d.va_grids.len()
        ));
    }
    let (tables, pairs) = metric_tables(&c.out, &file.runs, &strategies, &c.budgets, protocol::SEG_METRICS)?;
    md.push_str(&tables);
    let fg: std::collections::HashMap<String, f64> = d
        .tr_ids
        .iter()
        .zip(&d.tr_masks)
        .map(|(id, m)| (id.clone(), m.iter().filter(|&&v| v != 0).count() as f64 / m.len().max(1) as f64))
        .collect();
    md.push_str(&protocol::foreground_balance_markdown(&file.runs, &strategies, &c.budgets, &fg));
    let x = Matrix::new(&d.tr_pooled, d.tr_ids.len(), shape.c)?;
    let (runs, budgets) = (&file.runs, &c.budgets);
    md.push_str(&labelfree::label_free(&c.out, x, &d.tr_ids, runs, &pairs, &strategies, budgets, "dice").await?);
    let steps: usize = file.runs.iter().map(|r| r.train_steps).sum();
    let secs: f64 = file.runs.iter().map(|r| r.train_seconds).sum();
    let per_step = secs / steps.max(1) as f64;
    md.push_str(&format!(
        "\nTraining ({}): {} runs, {steps} steps in {secs:.1} s: {:.3} s per step at batch {}, {:.1} s per epoch at \
         budget {max_budget} ({} steps).\n",
        ctx.map_or("the CPU backend", |g| g.info.name.as_str()),
        file.runs.len(),
        per_step,
        cfg.batch,
        per_step * max_budget.div_ceil(cfg.batch) as f64,
        max_budget.div_ceil(cfg.batch)
    ));
    let rounds: Vec<&PseudoRound> = file.runs.iter().flat_map(|r| &r.pseudo).collect();
    if !rounds.is_empty() {
        let mean =
            |f: &dyn Fn(&PseudoRound) -> usize| rounds.iter().map(|p| f(p) as f64).sum::<f64>() / rounds.len() as f64;
        md.push_str(&format!(
            "\nPseudo-labels: {} refreshes over the runs; on average {:.1} of {:.1} unpicked images kept per \
             refresh ({:.1} with foreground).\n",
            rounds.len(),
            mean(&|p| p.kept),
            mean(&|p| p.unlabeled),
            mean(&|p| p.with_foreground)
        ));
    }
    md.push_str("\nPlots: `dice_vs_budget.{svg,png}`, `dice_vs_random.{svg,png}`, `pool_pca.{svg,png}`.\n");
    std::fs::write(c.out.join("results.md"), &md).with_context(|| format!("writing {}", c.out.display()))?;
    let pool = Features {
        ids: d.tr_ids.clone(),
        dim: shape.c,
        data: d.tr_pooled.clone(),
        model: c.model.model.clone(),
        pool: "mean".into(),
        preprocess: String::new(),
    };
    Ok(ProtocolReport { file, strategies, markdown: md, metric: "dice", pool, max_budget })
}

/// What `medpick bench loop` asks for.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub dataset: PathBuf,
    /// cls or seg.
    pub task: String,
    /// Cold-start strategy of round 0.
    pub start: String,
    /// Scores to compare (None: the task's default list).
    pub scores: Option<String>,
    pub rounds: usize,
    /// Samples added per round (and picked at round 0).
    pub batch: usize,
    /// Segmentation: training batch size.
    pub train_batch: usize,
    pub seg: SegSettings,
    pub seed: u64,
    pub head: String,
    pub epochs: usize,
    pub max_train: usize,
    pub max_test: usize,
    pub cpu: bool,
    pub model: EmbedConfig,
}

/// A finished warm loop: every round of every score, the scores in order, and the metric reported.
pub struct LoopReport {
    pub rounds: Vec<RoundResult>,
    pub scores: Vec<String>,
    pub metric: &'static str,
    pub markdown: String,
}

impl LoopReport {
    /// One (labelled images, metric) line per score, for the plot.
    pub fn series(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        let line = |s: &String| -> Vec<(f64, f64)> {
            self.rounds.iter().filter(|x| &x.score == s).map(|x| (x.labeled as f64, self.value(x))).collect()
        };
        self.scores.iter().map(|s| (s.clone(), line(s))).collect()
    }

    /// The reported metric of a round.
    pub fn value(&self, r: &RoundResult) -> f64 {
        match self.metric {
            "dice" => r.dice.unwrap_or(f64::NAN),
            _ => r.balanced_accuracy,
        }
    }
}

impl LoopConfig {
    /// The scores to compare (the task's default list when none are given), with every setting checked before
    /// any work: task, scores, start strategy, head.
    pub fn checked_scores(&self) -> Result<Vec<String>> {
        let a = self;
        let (known, default) = match a.task.as_str() {
            "cls" => (protocol::LOOP_SCORES, "random,entropy,margin,bald,dropquery,coreset"),
            "seg" => (protocol::SEG_LOOP_SCORES, "random,lc,entropy,her,herd,margin,asd,coreset"),
            t => return Err(crate::Error::setting("task", t, "use cls or seg")),
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
                let why = format!("unknown score {s} for ‹task› {} (known: {})", a.task, known.join(", "));
                return Err(crate::Error::setting("scores", scores.join(","), why));
            }
        }
        if !crate::select::COLD_START.contains(&a.start.as_str()) {
            let why = format!("unknown strategy (known: {})", crate::select::COLD_START.join(", "));
            return Err(crate::Error::setting("start", &a.start, why));
        }
        if a.task == "seg" && a.head != "linear" {
            let why = "applies to ‹task› cls; the segmentation head is set with ‹hidden›";
            return Err(crate::Error::setting("head", &a.head, why));
        }
        if a.task == "cls" {
            HeadKind::parse(&a.head)?;
        }
        Ok(scores)
    }
}

/// The warm loop once per score; writes nothing (the front end writes loop.json, loop.md and the plot).
pub async fn run_loop(gpu: Option<&GpuContext>, a: &LoopConfig) -> Result<LoopReport> {
    let scores = a.checked_scores()?;
    let seg = a.task == "seg";
    let ctx = if a.cpu { None } else { gpu };
    // The bar is made once the data is ready, so it does not overlap the scan and embedding bars.
    let bar = || {
        let pb = crate::progress::bar("loop");
        pb.set_length(scores.len() as u64);
        pb
    };
    let mut all = Vec::new();
    if seg {
        if a.head != "linear" {
            let why = "applies to ‹task› cls; the segmentation head is set with ‹hidden›";
            return Err(crate::Error::setting("head", &a.head, why));
        }
        let need = a.batch * a.rounds;
        let d = SegData::prepare(gpu, &a.dataset, &a.model, &a.seg, a.cpu, a.max_train, a.max_test, need, 0).await?;
        let cfg = a.seg.config(a.epochs, a.train_batch, a.seed, d.r)?;
        let embedding = |i: usize| d.embedding(i);
        let sam = d.sam.as_ref().map(|s| SamPseudo { decoder: &s.decoder, embedding: &embedding });
        let (pool, test) = (d.pool(sam.as_ref()), d.test());
        let pb = bar();
        for s in &scores {
            pb.set_message(s.clone());
            let mut step = |k: usize, n: usize| pb.set_message(format!("{s}: training step {k}/{n}"));
            let (st, r) = (&a.start, a.rounds);
            let rounds =
                protocol::warm_loop_seg(ctx, &pool, &test, d.shape, st, s, r, a.batch, a.seed, &cfg, &mut step)
                    .await
                    .with_context(|| format!("score {s}"))?;
            all.extend(rounds);
            pb.inc(1);
        }
        pb.finish_and_clear();
    } else {
        let data = prepare(gpu, &a.dataset, &a.model, a.max_train, a.max_test, a.batch * a.rounds, false).await?;
        let train =
            protocol::Split { ids: &data.train.ids, x: &data.train.data, dim: data.train.dim, labels: &data.ytr };
        let test = protocol::Split { ids: &data.test.ids, x: &data.test.data, dim: data.test.dim, labels: &data.yte };
        let cfg = ClsConfig { kind: HeadKind::parse(&a.head)?, epochs: a.epochs, ..Default::default() };
        let k = data.classes.len();
        let pb = bar();
        for s in &scores {
            pb.set_message(s.clone());
            let rounds = protocol::warm_loop(ctx, &train, &test, k, &a.start, s, a.rounds, a.batch, a.seed, &cfg)
                .await
                .with_context(|| format!("score {s}"))?;
            all.extend(rounds);
            pb.inc(1);
        }
        pb.finish_and_clear();
    }
    let metric = if seg { "dice" } else { "balanced_accuracy" };
    let mut report = LoopReport { rounds: all, scores, metric, markdown: String::new() };
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
    for s in &report.scores {
        let row: Vec<String> =
            report.rounds.iter().filter(|r| &r.score == s).map(|r| format!("{:.3}", report.value(r))).collect();
        md.push_str(&format!("| {s} | {} |\n", row.join(" | ")));
    }
    report.markdown = md;
    Ok(report)
}
