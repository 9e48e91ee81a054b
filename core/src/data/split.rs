//! The deterministic, seeded, group-aware train/val/test split of a dataset, and its CSV file (`id,split`).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::manifest::{create_new, Sample, Split};
use crate::rng::Rng;
use crate::{Error, Result};

/// Assign every sample to train/val/test, deterministically from `seed`. Samples of one group stay together;
/// a split given by the dataset (`.npz`) is kept. Fractions are of groups.
pub fn make_split(samples: &[Sample], seed: u64, val: f64, test: f64) -> Result<Vec<(String, Split)>> {
    if !(0.0..1.0).contains(&val) || !(0.0..1.0).contains(&test) || val + test >= 1.0 {
        return Err(Error::Invalid(format!("split fractions val={val} test={test} must be in [0,1) and sum below 1")));
    }
    let mut groups: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in samples.iter().filter(|s| s.given_split.is_none()) {
        if seen.insert(s.group.clone()) {
            groups.push(s.group.clone());
        }
    }
    groups.sort();
    let mut rng = Rng::new(seed);
    rng.shuffle(&mut groups);
    let n = groups.len();
    let n_test = (test * n as f64).round() as usize;
    let n_val = (val * n as f64).round() as usize;
    let mut assign: HashMap<&str, Split> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        let s = if i < n_test {
            Split::Test
        } else if i < n_test + n_val {
            Split::Val
        } else {
            Split::Train
        };
        assign.insert(g.as_str(), s);
    }
    Ok(samples
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                s.given_split.unwrap_or_else(|| assign.get(s.group.as_str()).copied().unwrap_or(Split::Train)),
            )
        })
        .collect())
}

/// Write a split as CSV `id,split`.
pub fn write_split(path: &Path, split: &[(String, Split)], force: bool) -> Result<()> {
    let mut w = crate::data::csv::Writer::new(create_new(path, force)?, path);
    w.row(["id", "split"])?;
    for (id, s) in split {
        w.row([id.as_str(), s.name()])?;
    }
    w.finish()?.flush().map_err(|e| Error::io(path, e))
}

/// Read a split CSV written by [`write_split`] (header `id,split`).
pub fn read_split(path: &Path) -> Result<HashMap<String, Split>> {
    let mut m = HashMap::new();
    let mut raw: Option<String> = None;
    for (line, cells) in crate::data::csv::read_rows(path)?.into_iter().skip(1) {
        // The split is the last cell. A hand-written file may leave commas in an id unquoted: the id is then the
        // line up to its last comma, as written.
        let (id, s) = match &cells[..] {
            [id, s] => (id.clone(), s.as_str()),
            [.., s] if cells.len() > 2 => {
                let raw = raw.get_or_insert_with(|| std::fs::read_to_string(path).unwrap_or_default());
                let row = raw.lines().nth(line.saturating_sub(1) as usize).unwrap_or("");
                (row.rsplit_once(',').map(|(id, _)| id.trim().to_string()).unwrap_or_default(), s.as_str())
            }
            _ => return Err(Error::decode(path, format!("line {line}: expected id,split"))),
        };
        let split = Split::parse(s).ok_or_else(|| Error::decode(path, format!("line {line}: unknown split '{s}'")))?;
        m.insert(id, split);
    }
    Ok(m)
}
