//! Cold-start selection strategies (MedCAL-Bench's, specified in METHODS.md §3) behind one [`Strategy`]
//! registry. Every strategy is deterministic given its seed (medpick's own RNG), returns `budget` unique rows
//! in pick order with a per-pick score, and breaks ties by the lowest index. Where MedCAL's reference can
//! return duplicates or fewer than `budget` rows (ProbCover, FPS), the shortfall is filled deterministically
//! (documented per strategy) and reported in [`Selection::notes`].
//!
//! The post-clustering logic of every k-means-based strategy is a separate function taking the clustering, so
//! it can be checked exactly against MedCAL's picks given MedCAL's own k-means output.

pub mod check;
pub mod composable;
pub mod coreset;
pub mod evidence;
pub mod exact;
mod kcenter;
pub mod kmeans;
mod pairs;
pub mod pca;
pub mod pool;
pub mod probcover;
pub mod repdiv;
pub mod scan;
mod scan_kmeans;
pub mod strategies;
pub mod stratified;
pub mod typicality;

use serde::Serialize;

use crate::exec::Backend;
use crate::{Error, Result};

/// Rows of features [n, d] (row-major f32).
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub n: usize,
    pub d: usize,
}

impl<'a> Matrix<'a> {
    pub fn new(data: &'a [f32], n: usize, d: usize) -> Result<Self> {
        if data.len() != n * d || d == 0 {
            return Err(Error::Invalid(format!("feature matrix of {} values is not {n} x {d}", data.len())));
        }
        Ok(Matrix { data, n, d })
    }

    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

/// The outcome of a selection: row indices in pick order, one score per pick.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Selection {
    pub strategy: String,
    pub seed: u64,
    pub picks: Vec<usize>,
    pub scores: Vec<f64>,
    /// What the strategy had to do beyond the reference (fills, fallbacks), in words.
    pub notes: Vec<String>,
}

/// Inputs every cold-start strategy gets.
#[derive(Clone, Copy)]
pub struct SelectInput<'a> {
    pub x: Matrix<'a>,
    pub budget: usize,
    pub seed: u64,
    /// Rows already labelled (warm start): never picked again, and diversity strategies start from them.
    pub labeled: &'a [usize],
    /// Run the heavy parts as scans on this backend (the WGSL kernels or the CPU backend, through `Exec`); `None`
    /// runs the plain f64 reference code.
    pub scans: Option<Backend<'a>>,
    /// How many pool rows each row stands for (a union of local coresets, issue 26); `None`: one each. Only the
    /// strategies in [`WEIGHTED`] use them (their k-means counts each row `w` times; `typiclust-knn` also its
    /// clusters' sizes and typicality); the others pick from the rows as from a pool.
    pub weights: Option<&'a [f64]>,
}

/// The strategies that use [`SelectInput::weights`].
/// (Their k-means runs on the CPU backend when weighted; with weights of 1 their picks are the unweighted CPU
/// backend's bit for bit. BAL and FPS pick boundary and extreme rows, which a k-means coreset does not keep, so
/// they are not weighted.)
pub const WEIGHTED: &[&str] = &["alps", "typiclust", "typiclust-knn", "kmeans-centroid"];

/// Names of every cold-start strategy, in the order `--strategy all` runs them.
pub const COLD_START: &[&str] = &[
    "random",
    "coreset",
    "alps",
    "typiclust",
    "typiclust-knn",
    "probcover",
    "fps",
    "bal",
    "repdiv",
    "repdiv-maxmin",
    "kmeans-centroid",
    "usl",
    "usl-medcal",
    "probcover-delta",
    "typiclust-spread",
    "stratified",
];

/// Pools smaller than this run the plain f64 reference code whatever backend is given: there it is both fast
/// enough (no tiles, no transfers) and exact.
pub const SCAN_MIN_ROWS: usize = 2048;

/// Run a strategy by name; the scans' backend (when given) is used for pools of at least [`SCAN_MIN_ROWS`] rows.
pub async fn select(name: &str, input: &SelectInput<'_>) -> Result<Selection> {
    let scans = input.scans.filter(|_| input.x.n >= SCAN_MIN_ROWS);
    select_on(name, &SelectInput { scans, ..*input }).await
}

/// Run a strategy by name on exactly the device the input names (GPU path whenever `input.gpu` is given).
pub async fn select_on(name: &str, input: &SelectInput<'_>) -> Result<Selection> {
    if input.budget == 0 {
        return Err(Error::Invalid("budget must be at least 1".into()));
    }
    let available = input.x.n - input.labeled.len().min(input.x.n);
    if input.budget > available {
        return Err(Error::Invalid(format!(
            "budget {} exceeds the {available} unlabelled samples in the pool",
            input.budget
        )));
    }
    if let Some(i) = (0..input.x.n).find(|&i| input.x.row(i).iter().any(|v| !v.is_finite())) {
        return Err(Error::Invalid(format!(
            "feature row {i} holds a non-finite value (NaN or ±Inf): no distance to it means anything, so no strategy \
             can rank it; re-embed that image or leave it out"
        )));
    }
    if let Some(&bad) = input.labeled.iter().find(|&&i| i >= input.x.n) {
        return Err(Error::Invalid(format!("labelled row {bad} is outside the pool of {}", input.x.n)));
    }
    if let Some(w) = input.weights {
        if w.len() != input.x.n {
            return Err(Error::Invalid(format!("{} row weights for a pool of {} rows", w.len(), input.x.n)));
        }
        if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(Error::Invalid(format!("row {i}'s weight {} is not a positive number", w[i])));
        }
    }
    let input = &SelectInput { weights: input.weights.filter(|_| WEIGHTED.contains(&name)), ..*input };
    let mut sel = match name {
        "random" => strategies::random(input),
        "coreset" => strategies::coreset(input, None).await?,
        "coreset-f16" => strategies::coreset_f16(input).await?,
        "alps" => strategies::alps(input).await?,
        "typiclust" => strategies::typiclust(input).await?,
        "typiclust-knn" => strategies::typiclust_knn(input).await?,
        "typiclust-spread" => strategies::typiclust_spread(input).await?,
        "stratified" => stratified::stratified(input).await?,
        "probcover" => probcover::probcover(input).await?,
        "fps" => strategies::fps(input).await?,
        "bal" => strategies::bal(input).await?,
        "repdiv" => repdiv::repdiv(input, false).await?,
        "repdiv-maxmin" => repdiv::repdiv(input, true).await?,
        "kmeans-centroid" => strategies::kmeans_centroid(input).await?,
        "usl" => strategies::usl(input),
        "usl-medcal" => strategies::usl_medcal(input).await?,
        "probcover-delta" => probcover::probcover_official(input, None).await?,
        other if other.starts_with("probcover-delta:") => {
            let v = &other["probcover-delta:".len()..];
            match v.parse::<f64>() {
                Ok(d) if d.is_finite() && d >= 0.0 => probcover::probcover_official(input, Some(d)).await?,
                _ => return Err(Error::Invalid(format!("strategy {other}: δ '{v}' is not a non-negative number"))),
            }
        }
        other => {
            let known = format!("{}, coreset-f16, probcover-delta:δ", COLD_START.join(", "));
            return Err(Error::Unknown { kind: "strategy", name: other.to_string(), known });
        }
    };
    if input.weights.is_some() {
        sel.notes.push(format!(
            "rows weighted by the pool rows each stands for: weighted k-means{}",
            if name == "typiclust-knn" { ", cluster sizes and typicality" } else { "" }
        ));
    }
    sel.strategy = name.to_string();
    sel.seed = input.seed;
    strategies::finish(&mut sel, input);
    Ok(sel)
}

impl Selection {
    /// The picks as CSV, the format `medpick select` writes: `rank,id,score,strategy,seed`.
    pub fn to_csv(&self, ids: &[String]) -> String {
        let header = ["rank", "id", "score", "strategy", "seed"].map(String::from).to_vec();
        let rows = self.picks.iter().zip(&self.scores).enumerate().map(|(r, (p, s))| {
            let id = ids.get(*p).map(String::as_str).unwrap_or("");
            vec![(r + 1).to_string(), id.to_string(), s.to_string(), self.strategy.clone(), self.seed.to_string()]
        });
        crate::data::csv::to_string(std::iter::once(header).chain(rows))
    }

    /// The picks as a table: rank, id, score.
    pub fn table(&self, ids: &[String]) -> String {
        let mut out = format!("{:>5}  {:<60} {:>12}\n", "rank", "id", "score");
        for (r, (p, s)) in self.picks.iter().zip(&self.scores).enumerate() {
            let id = ids.get(*p).map(String::as_str).unwrap_or("");
            out.push_str(&format!("{:>5}  {id:<60} {s:>12.5}\n", r + 1));
        }
        out
    }

    /// Write the picks as CSV to `path` (and as JSON next to it, `.json`, when `json`); nothing existing is
    /// overwritten without `force`.
    pub fn write(&self, path: &std::path::Path, ids: &[String], force: bool, json: bool) -> Result<()> {
        use std::io::Write;
        let mut out = crate::manifest::create_new(path, force)?;
        out.write_all(self.to_csv(ids).as_bytes()).and_then(|_| out.flush()).map_err(|e| Error::io(path, e))?;
        if json {
            let jp = path.with_extension("json");
            let mut jo = crate::manifest::create_new(&jp, force)?;
            writeln!(jo, "{}", serde_json::to_string_pretty(&self.to_json(ids))?).map_err(|e| Error::io(&jp, e))?;
        }
        Ok(())
    }

    /// The picks as the JSON document `medpick select --json` writes.
    pub fn to_json(&self, ids: &[String]) -> serde_json::Value {
        let picks: Vec<_> = self
            .picks
            .iter()
            .zip(&self.scores)
            .enumerate()
            .map(|(r, (p, s))| serde_json::json!({"rank": r + 1, "id": ids.get(*p), "row": p, "score": s}))
            .collect();
        serde_json::json!({"strategy": self.strategy, "seed": self.seed, "budget": self.picks.len(), "notes": self.notes, "picks": picks})
    }
}

/// Index of the first maximum (NaN never wins).
pub(crate) fn argmax(v: impl IntoIterator<Item = f64>) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (i, x) in v.into_iter().enumerate() {
        if !x.is_nan() && best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best
}

/// MedCAL's scan of `linspace(0, maxd, 100)`: the last δ before the first one at which fewer than 95 % of the
/// `n` balls are pure (`pure(δ)` counts them).
pub(crate) fn medcal_delta(maxd: f64, n: usize, pure: impl Fn(f64) -> usize) -> f64 {
    let mut best = 0.0;
    for s in 0..100 {
        let delta = maxd * s as f64 / 99.0;
        if pure(delta) as f64 / n as f64 >= 0.95 {
            best = delta;
        } else {
            break;
        }
    }
    best
}

/// The rows of `wanted` ids in `ids`, and the wanted ids that are not there.
pub fn rows_of(ids: &[String], wanted: &[String]) -> (Vec<usize>, Vec<String>) {
    let index: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let (mut rows, mut missing) = (Vec::new(), Vec::new());
    for id in wanted {
        match index.get(id.as_str()) {
            Some(&i) => rows.push(i),
            None => missing.push(id.clone()),
        }
    }
    (rows, missing)
}
