//! A dataset as a command sees it: the samples of a folder or file (ingested on the fly) or of a manifest, with
//! its split when one exists; the subset a command works on; the masks of its samples; the ids a CSV lists.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::ingest::{ingest, IngestOptions};
use super::manifest::{read_manifest, MaskLoader, Sample, Split};
use super::split::read_split;
use crate::{Context, Error, Result};

/// The samples of a dataset, where their files are, and the split when one was found.
pub struct Dataset {
    pub root: PathBuf,
    pub samples: Vec<Sample>,
    pub split: Option<HashMap<String, Split>>,
    /// Data files that failed while a folder was scanned (each reported as a note); 0 for a manifest.
    pub skipped: usize,
}

/// Samples of a dataset folder/file (ingested on the fly; skipped files are reported as notes) or of a manifest
/// (`.jsonl`), with the split: `split` when given (it must exist), else `<manifest>.split.csv` when present.
pub fn load(input: &Path, split: Option<&Path>) -> Result<Dataset> {
    let is_manifest = input.extension().is_some_and(|e| e == "jsonl");
    let (root, samples, skipped) = if is_manifest {
        let m = read_manifest(input)?;
        (m.root, m.samples, 0)
    } else {
        let mut samples = Vec::new();
        let pb = crate::progress::bar("scan");
        let report = ingest(
            input,
            &IngestOptions::default(),
            &mut |s| {
                samples.push(s.clone());
                Ok(())
            },
            &mut |done, total, _| {
                pb.set_length(total as u64);
                pb.set_position(done as u64);
            },
        )?;
        pb.finish_and_clear();
        for (p, why) in &report.skipped {
            note!("skipped {p}: {why}");
        }
        (PathBuf::from(&report.root), samples, report.failed())
    };
    let split_path = split.map(Path::to_path_buf).or_else(|| {
        is_manifest.then(|| {
            let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            input.with_file_name(format!("{stem}.split.csv"))
        })
    });
    let split = match split_path {
        Some(p) if p.exists() => Some(read_split(&p)?),
        Some(p) if split.is_some() => return Err(Error::io(&p, "split file not found")),
        _ => None,
    };
    Ok(Dataset { root, samples, split, skipped })
}

/// Which samples a command works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subset {
    All,
    Train,
    Val,
    Test,
    TrainVal,
}

impl Subset {
    pub fn parse(s: &str) -> Result<Subset> {
        Ok(match s {
            "all" => Subset::All,
            "train" => Subset::Train,
            "val" => Subset::Val,
            "test" => Subset::Test,
            "train+val" => Subset::TrainVal,
            other => bail!("subset {other}: use all, train, val, test or train+val"),
        })
    }

    /// A pool to select from: train, train+val or all. The validation and test splits are held out from
    /// selection (they score what the picks train), so `val` and `test` are refused here.
    pub fn parse_pool(s: &str) -> Result<Subset> {
        match Subset::parse(s)? {
            Subset::Val | Subset::Test => Err(Error::setting(
                "subset",
                s,
                "the validation and test splits are held out from selection; pick from train, train+val or all",
            )),
            pool => Ok(pool),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Subset::All => "all",
            Subset::Train => "train",
            Subset::Val => "val",
            Subset::Test => "test",
            Subset::TrainVal => "train+val",
        }
    }
}

/// The samples of `subset` (all of them for `Subset::All`; the others need a split).
pub fn filter_subset(
    samples: Vec<Sample>,
    split: Option<&HashMap<String, Split>>,
    subset: Subset,
) -> Result<Vec<Sample>> {
    let allowed: &[Split] = match subset {
        Subset::All => return Ok(samples),
        Subset::Train => &[Split::Train],
        Subset::Val => &[Split::Val],
        Subset::Test => &[Split::Test],
        Subset::TrainVal => &[Split::Train, Split::Val],
    };
    let Some(split) = split else {
        return Err(Error::setting(
            "subset",
            subset.name(),
            "needs a split file (run `medpick ingest` or pass ‹split›)",
        ));
    };
    Ok(samples.into_iter().filter(|s| split.get(&s.id).is_some_and(|sp| allowed.contains(sp))).collect())
}

/// The (height, width, mask) of a sample's first mask (`loader` keeps the last label volume).
pub fn read_mask(loader: &mut MaskLoader, s: &Sample) -> Result<(usize, usize, Vec<u8>)> {
    let (w, h, m) = loader.load(s, 0).with_context(|| format!("{}: reading its mask", s.id))?;
    Ok((h as usize, w as usize, m))
}

/// The samples of `dataset` that have a mask, restricted to the ids listed in `ids_csv` when given (ids it
/// lists without such an image are reported as a note), and all the others (unlabelled).
pub fn annotated(dataset: &Path, ids_csv: Option<&Path>) -> Result<(PathBuf, Vec<Sample>, Vec<Sample>)> {
    let d = load(dataset, None)?;
    let all = d.samples.clone();
    let mut keep: Vec<Sample> = d.samples.into_iter().filter(|s| !s.masks.is_empty()).collect();
    if let Some(p) = ids_csv {
        let ids: HashSet<String> = super::csv::read_ids(p)?.into_iter().collect();
        let before = keep.len();
        keep.retain(|s| ids.contains(&s.id));
        let missing = ids.iter().filter(|id| !keep.iter().any(|s| &s.id == *id)).count();
        if missing > 0 {
            note!("{missing} ids of {} have no image with a mask in {} (ignored)", p.display(), dataset.display());
        }
        note!("{} of {before} images with masks are listed in {}", keep.len(), p.display());
    }
    if keep.is_empty() {
        let among = if ids_csv.is_some() { " among the listed ids" } else { "" };
        return Err(Error::decode(dataset, format!("no images with masks{among}")));
    }
    let kept: HashSet<&str> = keep.iter().map(|s| s.id.as_str()).collect();
    let rest = all.into_iter().filter(|s| !kept.contains(s.id.as_str())).collect();
    Ok((d.root, keep, rest))
}
