//! `medpick bench protocol --task seg`: MedCAL's protocol for 2-D binary segmentation. Embed the training pool
//! and the test split once with `--pool grid` (cached), select on the spatial mean of each grid, train the
//! segmentation head (`core::train::seg`) on exactly the picked images and their masks, evaluate per image on
//! the test split at the masks' own resolution (Dice, IoU, HD95, ASD), and write results.json (resumable),
//! results.md and plots.

use anyhow::{bail, Context, Result};
use medpick_core::cpu::DiceMode;
use medpick_core::features::{Encoder, Features};
use medpick_core::manifest;
use medpick_core::protocol::{self, SegPool, SegTest};
use medpick_core::train::seg;

use crate::protocol::{
    open_results, parse_strategies, plot_metric, plot_pca, save_results, split_samples, todo_runs, ProtocolArgs,
};
use crate::train_seg::{embed_grids, embed_variant_grids, read_mask, SamSource};
use medpick_core::train::pseudo::{self as seg_pseudo, SamPseudo};

/// The two splits of a segmentation dataset, embedded: grids (channels-last), the training grids' spatial means
/// for selection, training masks at the head's output size, test masks at their own size; and the generalist
/// when pseudo-labels are on.
pub(crate) struct SegData {
    pub shape: seg::GridShape,
    pub r: usize,
    pub tr_ids: Vec<String>,
    pub tr_grids: Vec<Vec<f32>>,
    pub tr_pooled: Vec<f32>,
    pub tr_masks: Vec<Vec<u8>>,
    pub te_ids: Vec<String>,
    pub te_grids: Vec<Vec<f32>>,
    pub te_masks: Vec<(usize, usize, Vec<u8>)>,
    /// Where each test image sits in its volume (slices of volumes are scored per volume in 3-D).
    pub te_places: Vec<Option<protocol::SlicePlace>>,
    pub sam: Option<SamSource>,
    /// HERD's intensity histogram of every training image (grey = mean of RGB).
    pub tr_hist: Vec<[f32; 20]>,
    /// With `--val-every N`: the validation split's grids and masks at the head's output, and N.
    pub va_grids: Vec<Vec<f32>>,
    pub va_masks: Vec<Vec<u8>>,
    pub val_every: usize,
    /// With `--intensity-variants K`: K intensity variants of every training image's grid (seed 0: they are part
    /// of the data, shared by every run).
    pub tr_variants: Vec<Vec<Vec<f32>>>,
}

impl SegData {
    /// Split (`need`: the most images a run labels), embed (cached) and read the masks.
    #[allow(clippy::too_many_arguments)] // the dataset, the encoder, the head's settings and the subset sizes
    pub fn prepare(
        gpu: &medpick_core::gpu::GpuContext,
        dataset: &std::path::Path,
        model: &crate::ModelArgs,
        seg_args: &crate::train_seg::SegArgs,
        cpu: bool,
        max_train: usize,
        max_test: usize,
        need: usize,
        val_every: usize,
    ) -> Result<SegData> {
        let (root, samples, split) = crate::load_samples(dataset, None)?;
        let (train_s, test_s, val_s) =
            split_samples(dataset, &samples, split, &|s| !s.masks.is_empty(), max_train, max_test, need)?;
        let val_s = if val_every > 0 { val_s } else { Vec::new() };
        if val_every > 0 && val_s.is_empty() {
            bail!("{}: --val-every needs images with masks in the validation split; there are none", dataset.display());
        }
        eprintln!(
            "segmentation: {} training, {} test{} images with masks",
            train_s.len(),
            test_s.len(),
            if val_every > 0 { format!(", {} validation", val_s.len()) } else { String::new() }
        );
        let (shape, chw) = Encoder::load_with(Some(gpu), &model.model, model.weights.as_deref(), model.precision)
            .with_context(|| format!("loading --model {}", model.model))?
            .grid_shape();
        let r = shape.default_scale();
        let (oh, ow) = (shape.h * r, shape.w * r);
        let by_id: std::collections::HashMap<&str, &manifest::Sample> =
            train_s.iter().chain(&test_s).chain(&val_s).map(|s| (s.id.as_str(), s)).collect();
        let mut mask_loader = manifest::MaskLoader::new(&root);
        let mut mask_of = |id: &str| read_mask(&mut mask_loader, by_id[id]);
        let (tr_ids, tr_grids) = embed_grids(gpu, model, &root, &train_s, shape, chw)?;
        let k = seg_args.intensity_variants;
        let tr_variants = embed_variant_grids(gpu, model, &root, &train_s, &tr_ids, shape, chw, k, 0)?;
        let tr_pooled: Vec<f32> = tr_grids.iter().flat_map(|g| shape.spatial_mean(g)).collect();
        let tr_masks: Vec<Vec<u8>> = tr_ids
            .iter()
            .map(|id| mask_of(id).map(|(h, w, m)| seg::resize_nearest_u8(&m, h, w, oh, ow)))
            .collect::<Result<_>>()?;
        let (te_ids, te_grids) = embed_grids(gpu, model, &root, &test_s, shape, chw)?;
        let te_masks: Vec<(usize, usize, Vec<u8>)> = te_ids.iter().map(|id| mask_of(id)).collect::<Result<_>>()?;
        let te_places: Vec<Option<protocol::SlicePlace>> =
            te_ids.iter().map(|id| protocol::SlicePlace::of(by_id[id.as_str()])).collect();
        report_test_volumes(&te_places);
        // The validation split is embedded only when --val-every asks for it (val_s is empty otherwise).
        let (va_ids, va_grids) = match val_s.is_empty() {
            true => (Vec::new(), Vec::new()),
            false => embed_grids(gpu, model, &root, &val_s, shape, chw)?,
        };
        let va_masks: Vec<Vec<u8>> = va_ids
            .iter()
            .map(|id| mask_of(id).map(|(h, w, m)| seg::resize_nearest_u8(&m, h, w, oh, ow)))
            .collect::<Result<_>>()?;
        if need > tr_ids.len() {
            bail!("{need} labelled images exceed the {} training images that could be embedded", tr_ids.len());
        }
        let sam = match seg_args.pseudo_labels {
            true => Some(SamSource::load(gpu, cpu, model, seg_args.sam_weights.as_deref(), &root, &train_s)?),
            false => None,
        };
        let window = medpick_core::io::Window::parse(&model.window)?;
        let mut loader = manifest::SampleLoader::new(&root, window);
        let tr_hist = tr_ids
            .iter()
            .map(|id| {
                let img = loader.load(by_id[id.as_str()]).with_context(|| format!("reading {id}"))?;
                let grey: Vec<f32> = img.to_rgb_f32_255().chunks(3).map(|p| (p[0] + p[1] + p[2]) / 3.0).collect();
                Ok(medpick_core::uncertainty::intensity_histogram(&grey))
            })
            .collect::<Result<_>>()?;
        Ok(SegData {
            shape,
            r,
            tr_ids,
            tr_grids,
            tr_pooled,
            tr_masks,
            te_ids,
            te_grids,
            te_masks,
            te_places,
            sam,
            tr_hist,
            va_grids,
            va_masks,
            val_every,
            tr_variants,
        })
    }

    /// The training pool for the runners, with the generalist when pseudo-labels are on.
    pub fn pool<'a>(&'a self, sam: Option<&'a SamPseudo<'a>>) -> SegPool<'a> {
        SegPool {
            ids: &self.tr_ids,
            x: &self.tr_pooled,
            dim: self.shape.c,
            grids: &self.tr_grids,
            masks: &self.tr_masks,
            sam,
            hist: Some(&self.tr_hist),
            val: (self.val_every > 0).then_some(seg::SegValidation {
                grids: &self.va_grids,
                masks: &self.va_masks,
                every: self.val_every,
            }),
            variants: &self.tr_variants,
        }
    }

    pub fn test(&self) -> SegTest<'_> {
        SegTest { grids: &self.te_grids, masks: &self.te_masks, places: &self.te_places }
    }

    /// The LiteMedSAM embedding of training image `i` (for the generalist's pseudo-labels).
    pub fn embedding(&self, i: usize) -> medpick_core::Result<Vec<f32>> {
        match &self.sam {
            Some(s) => s.embedding(&self.tr_ids[i], &self.tr_grids[i]),
            None => Err(medpick_core::Error::Invalid("no generalist loaded".into())),
        }
    }
}

/// Say how the test split is scored: per image in 2-D, or per volume in 3-D when its images are slices of volumes
/// that are all complete runs of slices.
fn report_test_volumes(places: &[Option<protocol::SlicePlace>]) {
    let (n, incomplete) = protocol::incomplete_volumes(places);
    if n == 0 {
        return;
    }
    match incomplete.first() {
        None => eprintln!(
            "test split: slices of {n} volumes, scored per volume in 3-D (predicted slices stacked, connected components \
             of at least a third of the largest kept, distances in mm)"
        ),
        Some((v, why)) => eprintln!(
            "test split: slices of {n} volumes, {} of them incomplete (e.g. {v}: {why}), so scored per slice in 2-D",
            incomplete.len()
        ),
    }
}

pub fn run(a: ProtocolArgs) -> Result<bool> {
    let strategies = parse_strategies(&a.strategies, &a.budgets)?;
    if a.head != "linear" {
        bail!("--head {}: applies to --task cls; the segmentation head is set with --hidden", a.head);
    }
    let max_budget = *a.budgets.iter().max().unwrap_or(&0);

    let gpu = crate::open_gpu()?;
    let d =
        SegData::prepare(&gpu, &a.dataset, &a.model, &a.seg, a.cpu, a.max_train, a.max_test, max_budget, a.val_every)?;
    let (shape, r) = (d.shape, d.r);
    let (oh, ow) = (shape.h * r, shape.w * r);
    let cfg = a.seg.config(a.epochs, a.batch, 0, r)?;
    let (tr_ids, te_ids, tr_pooled) = (&d.tr_ids, &d.te_ids, &d.tr_pooled);

    let mut settings = serde_json::json!({
        "dataset": a.dataset.display().to_string(), "task": "seg", "model": a.model.model, "epochs": a.epochs,
        "batch": cfg.batch, "hidden": cfg.hidden, "optimizer": a.seg.optimizer, "lr": cfg.lr,
        "seg_loss": a.seg.seg_loss, "augment": cfg.augment, "mean_teacher": cfg.mean_teacher.is_some(),
        "pseudo_labels": cfg.pseudo,
        "max_train": a.max_train, "max_test": a.max_test,
    });
    // Only when on, so results written before these flags existed still resume.
    if a.val_every > 0 {
        settings["val_every"] = a.val_every.into();
    }
    if cfg.intensity_variants > 0 {
        settings["intensity_variants"] = cfg.intensity_variants.into();
    }
    let mut file = open_results(&a.out, &settings, &[])?;
    let ctx = if a.cpu { None } else { Some(&gpu) };
    let embedding = |i: usize| d.embedding(i);
    let sam = d.sam.as_ref().map(|s| SamPseudo { decoder: &s.decoder, embedding: &embedding });
    let (pool, test) = (d.pool(sam.as_ref()), d.test());
    // The floor: an untrained head with the initialisation of seed 0.
    let untrained = seg::SegHead::init(shape, cfg.hidden, r, &mut medpick_core::rng::Rng::new(0))?;
    let floor = pollster::block_on(protocol::eval_seg(ctx, &untrained, &test))?;
    file.untrained = Some(serde_json::to_value(floor)?);
    let todo = todo_runs(&strategies, &a.budgets, a.seeds, &file.runs);
    let pb = crate::progress_bar("protocol");
    pb.set_length(todo.len() as u64);
    for (s, b, sd) in todo {
        pb.set_message(format!("{s} budget {b} seed {sd}"));
        let r = pollster::block_on(protocol::run_one_seg(ctx, &pool, &test, shape, &s, b, sd, &cfg, &mut |k, n| {
            pb.set_message(format!("{s} budget {b} seed {sd}: training step {k}/{n}"))
        }))
        .with_context(|| format!("{s} at budget {b}, seed {sd}"))?;
        file.runs.push(r);
        save_results(&a.out, &file)?;
        pb.inc(1);
    }
    pb.finish_and_clear();

    // Report.
    let mut md = format!(
        "# medpick bench protocol (segmentation)\n\nDataset `{}` ({} training / {} test images), model `{}` \
         (feature grid {}×{}×{}), head: 3×3 conv → LayerNorm → GELU → 1×1 conv → pixel shuffle ×{r} to {oh}×{ow}, \
         {} hidden channels; loss 0.5·CE + 0.5·{}; {} (lr {}), batch {}, {} epochs{}. Random over {} seeds. {} \
         Generated by `medpick bench protocol --task seg`.\n",
        a.dataset.display(),
        tr_ids.len(),
        te_ids.len(),
        a.model.model,
        shape.c,
        shape.h,
        shape.w,
        cfg.hidden,
        if cfg.dice == DiceMode::Soft { "soft Dice (MedCAL)" } else { "noise-robust Dice (γ 1.5)" },
        a.seg.optimizer,
        cfg.lr,
        cfg.batch,
        a.epochs,
        [
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
        .collect::<String>(),
        a.seeds,
        match protocol::incomplete_volumes(&d.te_places) {
            (n, bad) if n > 0 && bad.is_empty() => format!(
                "Test metrics per volume in 3-D ({n} test volumes): each volume's predicted slices (resized back to \
                 the mask's size, nearest) stacked, connected components under a third of the largest dropped \
                 (MedCAL), Dice and IoU over voxels, HD95 and ASD in mm; mean over volumes (HD95 and ASD over the \
                 volumes where both are non-empty)."
            ),
            _ => "Test metrics per image at the mask's own size (prediction resized back, nearest), mean over \
                  images; HD95 and ASD in pixels over the images where both masks are non-empty."
                .to_string(),
        }
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
    for m in protocol::SEG_METRICS {
        md.push_str(&format!("\n## {m}\n\n{}", protocol::markdown(&file.runs, &strategies, &a.budgets, m)));
    }
    let steps: usize = file.runs.iter().map(|r| r.train_steps).sum();
    let secs: f64 = file.runs.iter().map(|r| r.train_seconds).sum();
    let per_step = secs / steps.max(1) as f64;
    md.push_str(&format!(
        "\nTraining ({}): {} runs, {steps} steps in {secs:.1} s: {:.3} s per step at batch {}, {:.1} s per epoch at \
         budget {max_budget} ({} steps).\n",
        if ctx.is_some() { gpu.info.name.as_str() } else { "CPU twins" },
        file.runs.len(),
        per_step,
        cfg.batch,
        per_step * max_budget.div_ceil(cfg.batch) as f64,
        max_budget.div_ceil(cfg.batch)
    ));
    let rounds: Vec<&seg_pseudo::PseudoRound> = file.runs.iter().flat_map(|r| &r.pseudo).collect();
    if !rounds.is_empty() {
        let mean = |f: &dyn Fn(&seg_pseudo::PseudoRound) -> usize| {
            rounds.iter().map(|p| f(p) as f64).sum::<f64>() / rounds.len() as f64
        };
        md.push_str(&format!(
            "\nPseudo-labels: {} refreshes over the runs; on average {:.1} of {:.1} unpicked images kept per \
             refresh ({:.1} with foreground).\n",
            rounds.len(),
            mean(&|p| p.kept),
            mean(&|p| p.unlabeled),
            mean(&|p| p.with_foreground)
        ));
    }
    md.push_str("\nPlots: `dice_vs_budget.{svg,png}`, `pool_pca.{svg,png}`.\n");
    std::fs::write(a.out.join("results.md"), &md)?;
    let pooled = Features {
        ids: tr_ids.clone(),
        dim: shape.c,
        data: tr_pooled.clone(),
        model: a.model.model.clone(),
        pool: "mean".into(),
        preprocess: String::new(),
    };
    let (shown, picks) = crate::protocol::shown_picks(&strategies, &file.runs, max_budget);
    for ext in ["svg", "png"] {
        plot_metric(&a.out.join(format!("dice_vs_budget.{ext}")), &file.runs, &strategies, &a.budgets, "dice")?;
        plot_pca(&a.out.join(format!("pool_pca.{ext}")), &pooled, &picks, shown, max_budget)?;
    }
    println!("{md}");
    println!("wrote {}/results.md, results.json and plots", a.out.display());
    Ok(true)
}

/// `medpick bench loop --task seg`: the warm loop per score on a segmentation dataset.
pub fn run_loop(a: &crate::protocol::LoopArgs, scores: &[String]) -> Result<Vec<protocol::RoundResult>> {
    if a.head != "linear" {
        bail!("--head {}: applies to --task cls; the segmentation head is set with --hidden", a.head);
    }
    let gpu = crate::open_gpu()?;
    let need = a.batch * a.rounds;
    let d = SegData::prepare(&gpu, &a.dataset, &a.model, &a.seg, a.cpu, a.max_train, a.max_test, need, 0)?;
    let cfg = a.seg.config(a.epochs, a.train_batch, a.seed, d.r)?;
    let embedding = |i: usize| d.embedding(i);
    let sam = d.sam.as_ref().map(|s| SamPseudo { decoder: &s.decoder, embedding: &embedding });
    let (pool, test) = (d.pool(sam.as_ref()), d.test());
    let ctx = if a.cpu { None } else { Some(&gpu) };
    crate::protocol::each_score(scores, &mut |s, pb| {
        pollster::block_on(protocol::warm_loop_seg(
            ctx,
            &pool,
            &test,
            d.shape,
            &a.start,
            s,
            a.rounds,
            a.batch,
            a.seed,
            &cfg,
            &mut |k, n| pb.set_message(format!("{s}: training step {k}/{n}")),
        ))
        .map_err(Into::into)
    })
}
