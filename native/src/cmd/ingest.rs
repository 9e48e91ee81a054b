//! `medpick ingest`: a dataset into a manifest and its split; prints what was found and what was skipped.

use anyhow::{Context, Result};

use crate::progress_bar;

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Dataset folder or a single file.
    pub path: std::path::PathBuf,
    /// Manifest to write (JSON Lines; the first line records the dataset root).
    #[arg(long, short)]
    pub out: std::path::PathBuf,
    /// Volume slicing: axial, coronal, sagittal, or all three.
    #[arg(long, default_value = "axial")]
    pub axis: String,
    /// Intensity window for DICOM/NIfTI: soft-tissue (40/400), lung (-600/1500), bone (400/1800), file (the
    /// file's VOI window), auto (0.5-99.5 percentiles), CENTER/WIDTH, or pLOW-HIGH.
    #[arg(long, default_value = "file")]
    pub window: String,
    /// Classification labels: auto, none, folders (class/img.png) or csv:FILE (id,label).
    #[arg(long, default_value = "auto")]
    pub labels: String,
    /// Masks stored next to their images as <stem><suffix>.<ext>, comma-separated (e.g. _1stHO,_2ndHO).
    #[arg(long, value_delimiter = ',')]
    pub mask_suffix: Vec<String>,
    /// Seed of the train/val/test split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of groups (images, volumes, series) for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val: f64,
    /// Fraction of groups for the held-out test split (selection never sees it).
    #[arg(long, default_value_t = 0.1)]
    pub test: f64,
    /// Where to write the split (default: next to the manifest, <name>.split.csv).
    #[arg(long)]
    pub split_out: Option<std::path::PathBuf>,
    /// Which volume of 4-D NIfTI files to slice (0 = the first).
    #[arg(long, default_value_t = 0)]
    pub volume: usize,
    /// Refuse images (and volume slices) with more pixels than this.
    #[arg(long, default_value_t = medpick_core::io::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Exit with status 3 if any file was skipped.
    #[arg(long)]
    pub strict: bool,
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn ingest(a: IngestArgs) -> Result<bool> {
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
