//! `medpick ingest`: a dataset into a manifest and its split; prints what was found and what was skipped.

use anyhow::Result;

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
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
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
    /// Exit with status 3 if any data file was skipped (now the default; kept for scripts that pass it).
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
    use medpick_core::manifest::{self, IngestOptions, LabelSource};
    manifest::protect_input(&a.path);
    let opts = IngestOptions {
        views: manifest::parse_views(&a.axis)?,
        window: medpick_core::io::Window::parse(&a.window)?,
        max_pixels: a.max_pixels,
        labels: LabelSource::parse(&a.labels)?,
        mask_suffixes: a.mask_suffix.clone(),
        time: a.volume,
    };
    let (split, (seed, val, test)) = (a.split_out.as_deref(), (a.seed, a.val, a.test));
    let run = manifest::ingest_to_manifest(&a.path, &a.out, split, &opts, seed, val, test, a.force)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        print!("{}", run.summary());
        if run.report.over_size_cap > 0 {
            println!("  ({} over the size cap: raise it with --max-pixels)", run.report.over_size_cap);
        }
    }
    let _ = a.strict;
    if run.report.samples == 0 && run.report.failed() > 0 {
        // Every data file failed: an error (exit 2), not an empty manifest a later step would read as a dataset.
        let _ = std::fs::remove_file(&run.manifest);
        let _ = std::fs::remove_file(&run.split);
        anyhow::bail!(
            "no sample could be read from {}: all {} data files failed (listed above); nothing written",
            a.path.display(),
            run.report.failed()
        );
    }
    Ok(run.report.failed() == 0)
}
