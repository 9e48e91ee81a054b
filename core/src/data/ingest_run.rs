//! `medpick ingest` from end to end: the options as a user gives them, the manifest and its split written side by
//! side (nothing overwritten without force), and the summary of what was found and skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ingest::{ingest, IngestOptions, IngestReport, LabelSource};
use super::manifest::Split;
use crate::data::io::nifti::View;
use crate::{Error, Result};

impl LabelSource {
    /// `auto`, `none`, `folders` or `csv:FILE`.
    pub fn parse(s: &str) -> Result<LabelSource> {
        Ok(match s {
            "auto" => LabelSource::Auto,
            "none" => LabelSource::None,
            "folders" => LabelSource::Folders,
            other => match other.strip_prefix("csv:") {
                Some(f) => LabelSource::Csv(f.into()),
                None => return Err(Error::setting("labels", other, "use auto, none, folders or csv:FILE")),
            },
        })
    }
}

/// The volume slicing views: one of axial, coronal, sagittal, or all three.
pub fn parse_views(s: &str) -> Result<Vec<View>> {
    match s {
        "all" => Ok(View::ALL.to_vec()),
        other => match View::parse(other) {
            Some(v) => Ok(vec![v]),
            None => Err(Error::setting("axis", other, "use axial, coronal, sagittal or all")),
        },
    }
}

/// A manifest written from a dataset, with its split.
#[derive(Serialize)]
pub struct IngestRun {
    pub report: IngestReport,
    pub manifest: PathBuf,
    pub split: PathBuf,
    /// Samples in train, val and test.
    pub split_counts: BTreeMap<&'static str, usize>,
    #[serde(skip)]
    pub seed: u64,
}

/// Ingest `path` into the manifest `out` and its seeded split (`split_out`, or `<out stem>.split.csv`); nothing
/// existing is overwritten without `force` (the split file is checked before any work).
#[allow(clippy::too_many_arguments)] // the dataset, the two outputs, the options and the split's settings
pub fn ingest_to_manifest(
    path: &Path,
    out: &Path,
    split_out: Option<&Path>,
    opts: &IngestOptions,
    seed: u64,
    val: f64,
    test: f64,
    force: bool,
) -> Result<IngestRun> {
    use super::manifest::ManifestWriter;
    use super::split::{make_split, write_split};
    let split_path = split_out.map(Path::to_path_buf).unwrap_or_else(|| {
        let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "manifest".into());
        out.with_file_name(format!("{stem}.split.csv"))
    });
    super::manifest::refuse_existing(&split_path, force)?;
    let root =
        if path.is_file() { path.parent().map(Path::to_path_buf).unwrap_or_default() } else { path.to_path_buf() };
    let mut writer = ManifestWriter::create(out, &root, force)?;
    let mut samples = Vec::new();
    let pb = crate::progress::bar("ingest");
    let report = ingest(
        path,
        opts,
        &mut |s| {
            writer.write(s)?;
            samples.push(s.clone());
            Ok(())
        },
        &mut |done, total, p| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
            pb.set_message(p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        },
    )?;
    pb.finish_and_clear();
    writer.finish()?;
    let split = make_split(&samples, seed, val, test)?;
    write_split(&split_path, &split, force)?;
    let count = |sp| split.iter().filter(|(_, s)| *s == sp).count();
    let split_counts =
        BTreeMap::from([("train", count(Split::Train)), ("val", count(Split::Val)), ("test", count(Split::Test))]);
    Ok(IngestRun { report, manifest: out.to_path_buf(), split: split_path, split_counts, seed })
}

impl IngestRun {
    /// What `medpick ingest` prints: counts per kind, masks, labels, the split, what was skipped and why.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let (r, mut out) = (&self.report, String::new());
        let _ = writeln!(out, "dataset   {}", r.root);
        let _ =
            writeln!(out, "files     {} seen, {} samples written to {}", r.files, r.samples, self.manifest.display());
        for (k, n) in &r.per_kind {
            let _ = writeln!(out, "  {k:<8} {n:>8} samples");
        }
        if r.with_mask > 0 {
            let _ = writeln!(out, "masks     {} samples with a segmentation mask", r.with_mask);
        }
        if r.instances_total > 0 {
            let _ = writeln!(out, "instances {} objects in the instance masks", r.instances_total);
        }
        if !r.per_label.is_empty() {
            let _ = writeln!(out, "labels    {} classes", r.per_label.len());
            for (l, n) in r.per_label.iter().take(30) {
                let _ = writeln!(out, "  {l:<20} {n:>8}");
            }
        }
        let c = |k: &str| self.split_counts.get(k).copied().unwrap_or(0);
        let (tr, va, te) = (c("train"), c("val"), c("test"));
        let _ =
            writeln!(out, "split     train {tr}, val {va}, test {te} (seed {}) -> {}", self.seed, self.split.display());
        if r.hidden_skipped > 0 {
            let _ = writeln!(out, "hidden    {} hidden files/folders skipped", r.hidden_skipped);
        }
        if !r.skipped.is_empty() {
            let _ = writeln!(out, "skipped   {} files:", r.skipped.len());
            for (p, why) in &r.skipped {
                if why.contains(p.as_str()) {
                    let _ = writeln!(out, "  {why}");
                } else {
                    let _ = writeln!(out, "  {p}: {why}");
                }
            }
        }
        out
    }
}
