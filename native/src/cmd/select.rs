//! `medpick embed` and `medpick select`: the main job, from a folder, a manifest or a feature file to the picks.

use anyhow::{Context, Result};
use medpick_core::data::dataset::{self, Subset};

use crate::{open_device, progress_bar, ModelArgs};

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// Dataset folder, single file, or manifest (.jsonl written by `medpick ingest`).
    pub input: std::path::PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Feature file to write.
    #[arg(long, short)]
    pub out: std::path::PathBuf,
    /// Which samples: all, train, val, test, train+val (needs a split file next to the manifest or --split).
    #[arg(long, default_value = "all")]
    pub subset: String,
    /// Split file (id,split); default: <manifest>.split.csv when it exists.
    #[arg(long)]
    pub split: Option<std::path::PathBuf>,
    #[arg(long)]
    pub force: bool,
    /// Embed only part I of N (from 0) of the samples, in the listing's order with a volume's slices kept
    /// together, into its own feature file (e.g. parts/part_I.safetensors); `select` opens the parts as one pool.
    /// `auto`: I and N from a Slurm job array ($SLURM_ARRAY_TASK_ID − $SLURM_ARRAY_TASK_MIN of
    /// $SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job ($JOB_COMPLETION_INDEX of --shard-count).
    #[arg(long)]
    pub shard: Option<String>,
    /// N for a Kubernetes Indexed Job (its completions) with --shard auto.
    #[arg(long, value_parser = crate::whole::<usize>)]
    pub shard_count: Option<usize>,
}

#[derive(clap::Args)]
pub struct SelectArgs {
    /// Dataset folder, single file, manifest (.jsonl) or feature file (.safetensors); or several feature files, or
    /// a folder of them (the parts of `embed --shard`, opened as one pool).
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<std::path::PathBuf>,
    /// How many samples to pick.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub budget: usize,
    /// Strategy (random, coreset, alps, typiclust, typiclust-knn, probcover, fps, bal, repdiv, repdiv-maxmin,
    /// kmeans-centroid, typiclust-spread, stratified, ...), `all`, or `auto`: the one docs/results/evidence.md
    /// supports for the pool's kind (labels: classification, masks: segmentation).
    #[arg(long, default_value = "auto")]
    pub strategy: String,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Ids already labelled (one per line, or a CSV with an `id` column such as an earlier picks.csv): never
    /// picked; diversity strategies start from them.
    #[arg(long)]
    pub exclude_labeled: Option<std::path::PathBuf>,
    /// Pool to pick from: train (default when a split file exists), train+val, or all.
    #[arg(long)]
    pub subset: Option<String>,
    /// Split file (id,split); default: <manifest>.split.csv when it exists.
    #[arg(long)]
    pub split: Option<std::path::PathBuf>,
    /// Where to write the picks (CSV). With --strategy all, one file per strategy: <stem>.<strategy>.csv.
    #[arg(long, short, required_unless_present = "coreset_out")]
    pub out: Option<std::path::PathBuf>,
    /// With --coreset-out: this task's part I of N (from 0) of the pool; `auto` reads a Slurm job array's or a
    /// Kubernetes Indexed Job's index as `embed --shard auto` does.
    #[arg(long, requires = "coreset_out")]
    pub shard: Option<String>,
    /// N for a Kubernetes Indexed Job (its completions) with --shard auto.
    #[arg(long, value_parser = crate::whole::<usize>)]
    pub shard_count: Option<usize>,
    /// Instead of picking, write this part's weighted local coreset here (--coreset-factor × --budget rows by
    /// --coreset-kind, each with the count of rows it stands for and their radius); `medpick select <the coresets>
    /// --budget B` then picks from their union (README, "More than one machine").
    #[arg(long)]
    pub coreset_out: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 4, value_parser = crate::whole::<usize>)]
    pub coreset_factor: usize,
    /// How --coreset-out summarises the part: k-center (spread-out rows: for coreset, probcover, diversity) or
    /// k-means (the row nearest each of --coreset-factor × --budget local k-means centres, weighted by its
    /// cluster: for alps, typiclust, typiclust-knn and kmeans-centroid, whose picks from the union then count
    /// each row by its weight; docs/results/composable-weighted-2026-12-07).
    #[arg(long, default_value = "k-center", requires = "coreset_out")]
    pub coreset_kind: String,
    /// Also write the picks as JSON next to the CSV.
    #[arg(long)]
    pub json: bool,
    /// Run the plain f64 reference code of each strategy (exact, slower) instead of its scans on the --device
    /// backend.
    #[arg(long)]
    pub cpu: bool,
    #[arg(long)]
    pub force: bool,
    /// Also run the label-free check: how the picks cover the pool's k-means clusters, how they skew its coarse
    /// modes and how stable they are over --check-seeds seeds, each beside Random's (docs/results/evidence.md).
    #[arg(long)]
    pub check: bool,
    #[arg(long, default_value_t = 5, value_parser = crate::whole::<usize>)]
    pub check_seeds: usize,
}

/// No output of this run may replace its input (a manifest, feature file or folder), nor the split file it reads;
/// a manifest's data folder is protected through the manifest's own root.
fn protect_inputs(input: &std::path::Path, split: Option<&std::path::Path>) {
    use medpick_core::manifest::protect_input;
    protect_input(input);
    split.iter().for_each(|p| protect_input(p));
    if input.is_file() && input.extension().is_some_and(|e| e == "jsonl") {
        if let Ok(m) = medpick_core::manifest::read_manifest(input) {
            protect_input(&m.root);
        }
    }
}

/// Exit status 3 (finished, but inputs were skipped) when fewer features than samples came out, else 0.
fn skipped_code(samples: usize, embedded: usize) -> u8 {
    if embedded < samples {
        3
    } else {
        0
    }
}

pub fn embed(a: EmbedArgs) -> Result<u8> {
    protect_inputs(&a.input, a.split.as_deref());
    medpick_core::manifest::refuse_existing(&a.out, a.force)?;
    let d = dataset::load(&a.input, a.split.as_deref())?;
    let scan_skipped = d.skipped;
    let samples = dataset::filter_subset(d.samples, d.split.as_ref(), Subset::parse(&a.subset)?)?;
    let root = d.root;
    if samples.is_empty() {
        anyhow::bail!("no samples to embed in {}", a.input.display());
    }
    use medpick_core::embed::parts::{self, Shard};
    let shard = a.shard.as_deref().map(|v| Shard::resolve(v, a.shard_count)).transpose()?;
    let (mine, extra) = match &shard {
        Some((s, why)) => {
            why.iter().for_each(|w| eprintln!("shard {}/{} ({w})", s.index, s.count));
            let mine = s.take(&samples);
            eprintln!("part {}/{}: {} of {} samples", s.index, s.count, mine.len(), samples.len());
            (mine, parts::part_metadata(*s, &samples))
        }
        None => (samples, Vec::new()),
    };
    let f = if mine.is_empty() {
        // Fewer source files than parts: this part is empty, and says so in a file the merge counts.
        let m = a.model.config();
        medpick_core::features::Features::empty(&m.model, &m.pool)
    } else {
        embed_features(open_device()?.as_ref(), &a.model, &root, &mine)?
    };
    f.write_with(&a.out, a.force, &extra)?;
    println!("wrote {} ({} x {}, model {}, pool {})", a.out.display(), f.ids.len(), f.dim, f.model, f.pool);
    // Files the scan could not read belong to no part: part 0 (or an unsharded run) reports them in its status.
    let scan = if shard.as_ref().is_none_or(|(s, _)| s.index == 0) { scan_skipped } else { 0 };
    Ok(skipped_code(mine.len() + scan, f.ids.len()))
}

pub fn select(a: SelectArgs) -> Result<u8> {
    let input = &a.inputs[0];
    a.inputs.iter().for_each(|p| protect_inputs(p, a.split.as_deref()));
    if let Some(co) = &a.coreset_out {
        let (shard, why) =
            medpick_core::embed::parts::Shard::resolve(a.shard.as_deref().unwrap_or("auto"), a.shard_count)?;
        why.iter().for_each(|w| eprintln!("shard {}/{} ({w})", shard.index, shard.count));
        let size = a.coreset_factor.max(1) * a.budget;
        let kind = medpick_core::select::composable::LocalKind::parse(&a.coreset_kind)?;
        println!(
            "{}",
            medpick_core::select::composable::write_local_coreset(&a.inputs, shard, size, a.seed, kind, co, a.force)?
        );
        return Ok(0);
    }
    let a_out = a.out.clone().context("--out is required")?;
    a.exclude_labeled.iter().for_each(|p| medpick_core::manifest::protect_input(p));
    use medpick_core::embed::parts;
    use medpick_core::select::{self, Matrix, SelectInput};
    let is_features = parts::is_feature_input(&a.inputs);
    let ctx = if is_features && a.cpu { None } else { open_device()? };
    let mut code = 0;
    let mut union = None;
    let (feats, kind) = if is_features {
        let (feats, files) = parts::open_pool(&a.inputs)?;
        union = select::composable::coreset_union(&parts::part_files(&a.inputs)?)?;
        match &union {
            Some(u) => eprintln!(
                "pool: the union of {files} local {} coresets, {} rows standing for {} (every row within {:.6} of one)",
                u.kind,
                feats.ids.len(),
                u.pool_rows,
                u.local_radius
            ),
            None if files > 1 => eprintln!("pool: {} samples from {files} feature files", feats.ids.len()),
            None => {}
        }
        (feats, None)
    } else {
        let d = dataset::load(input, a.split.as_deref())?;
        let subset = a.subset.clone().unwrap_or_else(|| if d.split.is_some() { "train".into() } else { "all".into() });
        let samples = dataset::filter_subset(d.samples, d.split.as_ref(), Subset::parse_pool(&subset)?)?;
        eprintln!("pool: {} samples ({subset})", samples.len());
        if samples.is_empty() {
            anyhow::bail!("no samples to select from in {}", input.display());
        }
        let f = embed_features(ctx.as_ref(), &a.model, &d.root, &samples)?;
        code = skipped_code(samples.len() + d.skipped, f.ids.len());
        (f, select::evidence::task_kind(&samples))
    };
    let labeled: Vec<usize> = match &a.exclude_labeled {
        Some(p) => {
            let (rows, missing) = select::rows_of(&feats.ids, &medpick_core::csv::read_id_list(p)?);
            for id in missing {
                eprintln!("{}: id '{id}' is not in the pool (ignored)", p.display());
            }
            rows
        }
        None => Vec::new(),
    };
    let x = Matrix::new(&feats.data, feats.ids.len(), feats.dim)?;
    let strategy = select::evidence::resolve(&a.strategy, kind);
    let names: Vec<&str> = if strategy == "all" { select::COLD_START.to_vec() } else { vec![strategy.as_str()] };
    // A union of local coresets: each row counts as the pool rows it stands for (where the strategy can use it).
    let weights: Option<Vec<f64>> = union.as_ref().map(|u| u.weights.iter().map(|&w| w as f64).collect());
    let input = SelectInput {
        x,
        budget: a.budget,
        seed: a.seed,
        labeled: &labeled,
        scans: if a.cpu { None } else { Some(medpick_core::exec::Backend::on(ctx.as_ref())) },
        weights: weights.as_deref(),
    };
    let pb = progress_bar("select");
    pb.set_length(names.len() as u64);
    let mut reference = None;
    let mut summary = Vec::new();
    for (i, name) in names.iter().enumerate() {
        pb.set_message(name.to_string());
        let t0 = std::time::Instant::now();
        let mut sel = pollster::block_on(select::select(name, &input))?;
        let secs = t0.elapsed().as_secs_f64();
        if let Some(u) = &union {
            sel.notes.push(select::composable::union_note(name, x, &labeled, &sel.picks, u));
        }
        // The check's reference clusterings once, after the first selection (which validates the budget).
        if a.check && reference.is_none() {
            reference = Some(pollster::block_on(select::check::Reference::new(x, a.budget, input.scans))?);
        }
        let check = match &reference {
            Some(r) => {
                Some(pollster::block_on(select::check::check_strategy(r, name, &input, a.check_seeds, Some(&sel)))?)
            }
            None => None,
        };
        let out = if names.len() == 1 {
            a_out.clone()
        } else {
            let stem = a_out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "picks".into());
            a_out.with_file_name(format!("{stem}.{name}.csv"))
        };
        sel.write(&out, &feats.ids, a.force, a.json)?;
        summary.push((name.to_string(), out, secs, sel, check));
        pb.set_position(i as u64 + 1);
    }
    pb.finish_and_clear();
    for (name, out, secs, sel, check) in &summary {
        println!("{name}: {} picks in {:.2} s -> {}", sel.picks.len(), secs, out.display());
        for note in &sel.notes {
            println!("  note: {note}");
        }
        select::evidence::pointer(name, kind).iter().for_each(|l| println!("  {l}"));
        if let Some(c) = check {
            println!("  label-free check: {}", c.line());
            select::evidence::check_pointer(kind, c.skewed()).iter().for_each(|l| println!("    {l}"));
        }
    }
    if let [(_, _, _, sel, _)] = &summary[..] {
        print!("\n{}", sel.table(&feats.ids));
    }
    Ok(code)
}

/// Features of `samples` with the model the arguments name (core's embedding, with its progress bar).
pub fn embed_features(
    ctx: Option<&medpick_core::gpu::GpuContext>,
    m: &ModelArgs,
    root: &std::path::Path,
    samples: &[medpick_core::manifest::Sample],
) -> Result<medpick_core::features::Features> {
    Ok(pollster::block_on(medpick_core::embed::embed_features(ctx, &m.config(), root, samples))?)
}
