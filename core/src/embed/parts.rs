//! Features in parts (issue 26): `medpick embed --shard I/N` embeds the I-th of N deterministic parts of a
//! dataset into its own feature file, so N processes (a Slurm job array, a Kubernetes Indexed Job) can embed side
//! by side; [`read_parts`] opens the parts as one pool and refuses parts that do not belong together.
//!
//! A part's file records `shard` ("I/N"), `shard_of` (a digest of the whole dataset's sample ids in order, so
//! parts of different listings never merge) and `shard_samples` (the dataset's sample count) in its metadata.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::features::Features;
use crate::data::manifest::Sample;
use crate::{Error, Result};

/// The I-th (from 0) of N parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// "I/N" with 0 ≤ I < N.
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = |why: &str| Error::setting("shard", s, why);
        let (i, n) = s.split_once('/').ok_or_else(|| bad("give I/N, e.g. 0/4 (the first of four parts), or auto"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("I is not a whole number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a whole number"))?;
        if count == 0 || index >= count {
            return Err(bad("needs 0 ≤ I < N (parts are numbered from 0)"));
        }
        Ok(Shard { index, count })
    }

    /// The part a job-array task runs, from its environment (`get` reads a variable): Slurm's
    /// SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT, or a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX of `count` (the Job's `completions`, which Kubernetes does not put in the environment).
    /// Returns the part and where it came from, in words.
    pub fn from_env(get: impl Fn(&str) -> Option<String>, count: Option<usize>) -> Result<(Shard, String)> {
        let num = |name: &str| -> Result<Option<usize>> {
            match get(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| Error::setting("shard", "auto", format!("${name} is {v:?}, not a whole number"))),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let n = match (num("SLURM_ARRAY_TASK_COUNT")?, count) {
                (Some(n), _) | (None, Some(n)) => n,
                (None, None) => {
                    return Err(Error::setting("shard", "auto", "$SLURM_ARRAY_TASK_COUNT is not set; give --shard I/N"))
                }
            };
            let i = id.checked_sub(min).filter(|&i| i < n).ok_or_else(|| {
                Error::setting("shard", "auto", format!("task {id} (first {min}) is not one of {n} parts"))
            })?;
            let why = format!("SLURM_ARRAY_TASK_ID={id} − SLURM_ARRAY_TASK_MIN={min} of SLURM_ARRAY_TASK_COUNT={n}");
            return Ok((Shard { index: i, count: n }, why));
        }
        if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            let n = count.ok_or_else(|| {
                Error::setting("shard", "auto", "a Kubernetes Indexed Job needs --shard-count (its completions)")
            })?;
            let s = Shard::parse(&format!("{i}/{n}"))?;
            return Ok((s, format!("JOB_COMPLETION_INDEX={i} of --shard-count {n}")));
        }
        Err(Error::setting(
            "shard",
            "auto",
            "neither $SLURM_ARRAY_TASK_ID nor $JOB_COMPLETION_INDEX is set (not a job-array task): give --shard I/N",
        ))
    }

    /// `--shard` as given: "I/N", or "auto" for the job-array task's own part from the process environment
    /// ([`Shard::from_env`]; `count` is `--shard-count`). Returns the part and, for "auto", where it came from.
    pub fn resolve(arg: &str, count: Option<usize>) -> Result<(Shard, Option<String>)> {
        if arg == "auto" {
            Shard::from_env(|k| std::env::var(k).ok(), count).map(|(s, why)| (s, Some(why)))
        } else {
            Shard::parse(arg).map(|s| (s, None))
        }
    }

    /// This part's samples. The samples, in their order, are grouped by source file (a volume's slices, a DICOM
    /// series, an .npz stay together); a group goes to part ⌊start · N / total⌋, where `start` is the number of
    /// samples before it. Every part is a contiguous run of whole groups, the parts are as even as the groups
    /// allow, and the same listing always gives the same parts. A part may be empty when there are fewer groups
    /// than parts.
    pub fn take(&self, samples: &[Sample]) -> Vec<Sample> {
        let total = samples.len();
        let mut out = Vec::new();
        let mut start = 0;
        while start < total {
            let mut end = start + 1;
            while end < total && samples[end].source == samples[start].source {
                end += 1;
            }
            if start * self.count / total == self.index {
                out.extend_from_slice(&samples[start..end]);
            }
            start = end;
        }
        out
    }
}

/// A digest of the whole listing's sample ids in order: parts made from different listings never merge.
pub fn listing_digest(samples: &[Sample]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for s in samples {
        h.update(s.id.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The metadata a part records.
pub fn part_metadata(shard: Shard, all: &[Sample]) -> Vec<(String, String)> {
    vec![
        ("shard".into(), format!("{}/{}", shard.index, shard.count)),
        ("shard_of".into(), listing_digest(all)),
        ("shard_samples".into(), all.len().to_string()),
    ]
}

/// The feature files `inputs` names: the files themselves, or every `*.safetensors` in a folder (sorted).
pub fn part_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut here: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|e| e == "safetensors"))
                .collect();
            if here.is_empty() {
                return Err(Error::Invalid(format!("{}: no .safetensors feature files in this folder", p.display())));
            }
            here.sort();
            files.extend(here);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// Whether `inputs` name feature files rather than a dataset: several inputs, a `.safetensors` file, or a folder
/// holding only feature files.
pub fn is_feature_input(inputs: &[PathBuf]) -> bool {
    match inputs {
        [one] => one.extension().is_some_and(|e| e == "safetensors") || (one.is_dir() && is_parts_folder(one)),
        _ => !inputs.is_empty(),
    }
}

/// The pool `inputs` name as feature files (see [`is_feature_input`]), opened by [`read_parts`] (so one part of
/// a sharded run alone is refused, its missing parts named), and how many files it came from.
pub fn open_pool(inputs: &[PathBuf]) -> Result<(Features, usize)> {
    let files = part_files(inputs)?;
    if let Some(f) = files.iter().find(|f| f.extension().is_none_or(|e| e != "safetensors")) {
        return Err(Error::Invalid(format!(
            "{}: several inputs must all be feature files (.safetensors)",
            f.display()
        )));
    }
    Ok((read_parts(&files)?, files.len()))
}

/// Whether `dir` holds feature parts (only `.safetensors` files, hidden files aside), not a dataset.
pub fn is_parts_folder(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else { return false };
    let names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    !names.is_empty() && names.iter().all(|n| n.ends_with(".safetensors"))
}

/// Open feature files as one pool: the same model, pooling, preprocessing and dimension in every file (else the
/// two files that differ are named), ids unique across files (a repeated id names both files), and, when the files
/// are parts of `embed --shard`, every part of the same listing present exactly once (a missing part is named by
/// its number). Rows come in part order (sharded) or in the order given.
pub fn read_parts(files: &[PathBuf]) -> Result<Features> {
    if files.is_empty() {
        return Err(Error::Invalid("no feature files given".into()));
    }
    let mut parts = Vec::with_capacity(files.len());
    for f in files {
        let (feats, meta) = Features::read_with_metadata(f)?;
        parts.push((f.clone(), feats, meta));
    }
    // An empty part (fewer source files than parts) records no settings worth comparing.
    let first_nonempty = parts.iter().find(|p| !p.1.ids.is_empty()).map(|p| (p.0.clone(), p.1.dim));
    let (f0, a, _) = parts.iter().find(|p| !p.1.ids.is_empty()).unwrap_or(&parts[0]);
    for (f, b, _) in parts.iter().filter(|p| !p.1.ids.is_empty()) {
        for (what, x, y) in
            [("model", &a.model, &b.model), ("pool", &a.pool, &b.pool), ("preprocess", &a.preprocess, &b.preprocess)]
        {
            if x != y {
                return Err(Error::Invalid(format!(
                    "{} and {} do not belong together: {what} {x:?} against {y:?} (embed every part with the same \
                     settings)",
                    f0.display(),
                    f.display()
                )));
            }
        }
        if let Some((fd, d)) = &first_nonempty {
            if !b.ids.is_empty() && b.dim != *d {
                return Err(Error::Invalid(format!(
                    "{} and {} do not belong together: {d}-d against {}-d features",
                    fd.display(),
                    f.display(),
                    b.dim
                )));
            }
        }
    }
    let sharded: Vec<bool> = parts.iter().map(|p| p.2.contains_key("shard")).collect();
    // Local coresets (`select --shard --coreset-out`) are parts too; a missing one is re-made by `select`.
    let rerun = if parts.iter().any(|p| p.2.contains_key("coreset")) { "select" } else { "embed" };
    if sharded.iter().any(|&s| s) {
        if let Some(i) = sharded.iter().position(|&s| !s) {
            return Err(Error::Invalid(format!(
                "{} is not a part of `medpick embed --shard` but {} is: give the parts of one run only",
                parts[i].0.display(),
                parts[sharded.iter().position(|&s| s).unwrap_or(0)].0.display()
            )));
        }
        let mut keyed = Vec::with_capacity(parts.len());
        for (f, feats, meta) in parts {
            let s = Shard::parse(meta.get("shard").map_or("", String::as_str))
                .map_err(|e| Error::decode(&f, format!("metadata 'shard': {e}")))?;
            let of = meta.get("shard_of").cloned().unwrap_or_default();
            keyed.push((s, of, f, feats));
        }
        keyed.sort_by_key(|k| k.0.index);
        let (n, of) = (keyed[0].0.count, keyed[0].1.clone());
        for (s, o, f, _) in &keyed {
            if s.count != n || *o != of {
                return Err(Error::Invalid(format!(
                    "{} and {} are parts of different runs (part {}/{} of listing {of}, part {}/{} of listing {o}): \
                     give the parts of one run only",
                    keyed[0].2.display(),
                    f.display(),
                    keyed[0].0.index,
                    n,
                    s.index,
                    s.count
                )));
            }
        }
        for w in keyed.windows(2) {
            if w[0].0.index == w[1].0.index {
                return Err(Error::Invalid(format!(
                    "{} and {} are both part {}/{n}",
                    w[0].2.display(),
                    w[1].2.display(),
                    w[0].0.index
                )));
            }
        }
        let have: std::collections::HashSet<usize> = keyed.iter().map(|k| k.0.index).collect();
        let missing: Vec<String> = (0..n).filter(|i| !have.contains(i)).map(|i| i.to_string()).collect();
        if !missing.is_empty() {
            return Err(Error::Invalid(format!(
                "part{} {} of {n} missing (given: {}): run those array tasks again (`medpick {rerun} --shard I/{n}`)",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        parts = keyed.into_iter().map(|(_, _, f, feats)| (f, feats, HashMap::new())).collect();
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let dim = first_nonempty.map_or(0, |(_, d)| d);
    let like = parts.iter().find(|p| !p.1.ids.is_empty()).unwrap_or(&parts[0]);
    let mut out = Features {
        ids: Vec::new(),
        dim,
        data: Vec::new(),
        model: like.1.model.clone(),
        pool: like.1.pool.clone(),
        preprocess: like.1.preprocess.clone(),
    };
    for (k, (f, feats, _)) in parts.iter().enumerate() {
        for id in &feats.ids {
            if let Some(j) = seen.insert(id.clone(), k) {
                return Err(Error::Invalid(format!(
                    "id {id:?} is in both {} and {}: parts must not overlap",
                    parts[j].0.display(),
                    f.display()
                )));
            }
        }
        out.ids.extend(feats.ids.iter().cloned());
        out.data.extend_from_slice(&feats.data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shards_parse_and_come_from_job_arrays() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
        assert_eq!(Shard::from_env(slurm, None).unwrap().0, Shard { index: 2, count: 4 });
        let k8s = env(&[("JOB_COMPLETION_INDEX", "5")]);
        assert_eq!(Shard::from_env(k8s, Some(8)).unwrap().0, Shard { index: 5, count: 8 });
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "5")]), None).is_err());
        assert!(Shard::from_env(env(&[]), Some(3)).is_err());
        assert!(Shard::from_env(env(&[("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_COUNT", "4")]), None).is_err());
    }
}
