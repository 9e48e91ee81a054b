//! Selection beyond one machine (issue 26): composable coresets. Each part of a pool (one array task) keeps a
//! weighted local coreset of m·B rows — greedy k-center from a seeded random first row, each centre with the
//! count of part rows it covers (its weight) and their largest distance to it (its radius) — and one process
//! selects from the union of the parts' coresets.
//!
//! What is exact and what is not:
//! - `coreset` on the union is greedy k-center on the centres. Every pool row lies within its local radius r_p
//!   of a centre, and every centre within the union run's radius R of a pick, so the picks cover the whole pool
//!   within R + max r_p ([`covering_bound`]); Malkomes et al. (NeurIPS 2015) bound this by a constant factor of the
//!   best radius. It is not the single-machine run's pick list; its radius is measured against it
//!   (`docs/results/composable-coreset-*`).
//! - The k-means strategies ([`super::WEIGHTED`]: alps, typiclust, typiclust-knn, kmeans-centroid) count
//!   each union row as the pool rows it stands for (weighted k-means; typiclust-knn also weighs its clusters' sizes
//!   and its typicality), the others run on the union's rows as on a pool: approximations of the single-machine run
//!   whose loss is not bounded (measured in `docs/results/composable-weighted-*`).

use super::exact::{kcenter_cover, Cover};
use super::Matrix;
use crate::rng::Rng;

/// One part's coreset: the chosen rows of the part (in pick order), their weights and radii.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalCoreset {
    pub rows: Vec<usize>,
    pub weights: Vec<usize>,
    pub radii: Vec<f64>,
}

impl LocalCoreset {
    /// The largest radius: every row of the part is this close to one of the coreset's rows.
    pub fn radius(&self) -> f64 {
        self.radii.iter().copied().fold(0.0, f64::max)
    }
}

/// The local coreset of `size` rows of the part `x` (fewer when every row is already at distance 0 from one, as
/// with repeated rows): greedy k-center from the row `Rng::new(seed).below(n)` (the first centre of `coreset`),
/// then each centre's cover.
pub fn local_coreset(x: Matrix, size: usize, seed: u64) -> LocalCoreset {
    if x.n == 0 || size == 0 {
        return LocalCoreset { rows: Vec::new(), weights: Vec::new(), radii: Vec::new() };
    }
    let first = Rng::new(seed).below(x.n as u32) as usize;
    let (_, Cover { centres, counts, radii }) = kcenter_cover(x, &[first], size.min(x.n) - 1);
    LocalCoreset { rows: centres, weights: counts, radii }
}

/// How a part's rows are summarised: greedy k-center (spread-out rows, a covering radius per row) or k-means (the
/// row nearest each of the part's k-means centres, standing for that cluster's rows: dense regions keep rows in
/// proportion to their mass, which the typicality- and k-means-driven strategies need).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    KCenter,
    KMeans,
}

impl LocalKind {
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "k-center" | "kcenter" => Ok(LocalKind::KCenter),
            "k-means" | "kmeans" => Ok(LocalKind::KMeans),
            other => Err(crate::Error::Invalid(format!("coreset kind '{other}': use k-center or k-means"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LocalKind::KCenter => "k-center",
            LocalKind::KMeans => "k-means",
        }
    }
}

/// The local coreset of `size` rows of the part `x` by `kind`: [`local_coreset`], or the k-means one: k-means
/// with k = size (medpick's exact k-means, seeded by `seed`), each cluster's member nearest its centre (the lowest
/// row on ties) with the cluster's row count as its weight and the largest distance of the cluster's rows to it
/// as its radius (so every row of the part is within the largest radius of a kept row, as with k-center).
pub fn local_coreset_of(x: Matrix, size: usize, seed: u64, kind: LocalKind) -> LocalCoreset {
    if kind == LocalKind::KCenter || x.n == 0 || size == 0 {
        return local_coreset(x, size, seed);
    }
    let (c, _) = super::exact::kmeans(x, size.min(x.n), seed, 300, 1e-4);
    let d = x.d;
    let members = super::strategies::members(&c.labels, c.k);
    let per: Vec<Option<(usize, usize, f64)>> = crate::cpu::par::map(c.k, |j| {
        let m = &members[j];
        let centre = &c.centers[j * d..(j + 1) * d];
        let (mut best, mut bd) = (*m.first()?, f64::INFINITY);
        for &i in m {
            let v = crate::cpu::min_dist_update::sqdist_f64c(x.row(i), centre);
            if v < bd {
                (best, bd) = (i, v);
            }
        }
        let r = m.iter().map(|&i| crate::cpu::min_dist_update::sqdist_f64(x.row(i), x.row(best))).fold(0.0, f64::max);
        // Widened past the rounding of the f64 sums (and of a later f32 storage of distances).
        Some((best, m.len(), r.sqrt() * (1.0 + 1e-6)))
    });
    let mut out = LocalCoreset { rows: Vec::new(), weights: Vec::new(), radii: Vec::new() };
    for (row, w, r) in per.into_iter().flatten() {
        out.rows.push(row);
        out.weights.push(w);
        out.radii.push(r);
    }
    out
}

/// The radius within which `picks` (rows of the union) cover the whole pool: the union's own covering radius
/// of its rows by the picks (f64 distances) plus the largest local radius.
pub fn covering_bound(union: Matrix, picks: &[usize], local_radius: f64) -> f64 {
    covering_radius(union, picks) + local_radius
}

/// max over rows of the distance to the nearest of `picks` (the k-center scan's distances: f64 sums kept in
/// f32, pruned by the triangle inequality; 0 with no rows, ∞ with no picks).
pub fn covering_radius(x: Matrix, picks: &[usize]) -> f64 {
    if picks.is_empty() {
        return if x.n == 0 { 0.0 } else { f64::INFINITY };
    }
    let (_, cover) = kcenter_cover(x, picks, 0);
    cover.radii.into_iter().fold(0.0, f64::max)
}

/// The rows of a pool of `n` that part `shard` of `select --shard` covers: row r is in part ⌊r·N/n⌋.
pub fn part_rows(n: usize, shard: crate::embed::parts::Shard) -> std::ops::Range<usize> {
    let at = |i: usize| (i * n).div_ceil(shard.count.max(1));
    at(shard.index)..at(shard.index + 1).min(n)
}

/// A digest of a pool's ids in order (as `embed --shard` records for its listing).
pub fn ids_digest(ids: &[String]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The metadata a local coreset file records: its part (`shard`, `shard_of`: the pool's digest, so coresets of
/// different pools never merge), `coreset` (its [`LocalKind`]: "k-center" or "k-means"), each row's weight and radius, and the part's row count.
pub fn coreset_metadata(
    shard: crate::embed::parts::Shard,
    of: &str,
    c: &LocalCoreset,
    part_rows: usize,
    kind: LocalKind,
) -> Vec<(String, String)> {
    let join = |v: Vec<String>| v.join(",");
    vec![
        ("shard".into(), format!("{}/{}", shard.index, shard.count)),
        ("shard_of".into(), of.to_string()),
        ("coreset".into(), kind.name().into()),
        ("coreset_weights".into(), join(c.weights.iter().map(|w| w.to_string()).collect())),
        ("coreset_radii".into(), join(c.radii.iter().map(|r| format!("{r:?}")).collect())),
        ("coreset_part_rows".into(), part_rows.to_string()),
    ]
}

/// What the union of local coresets stands for: each row's weight (rows of the pool it covers), the largest
/// local radius and the pool's row count.
#[derive(Clone, Debug)]
pub struct CoresetUnion {
    /// How the local coresets were made ("k-center" or "k-means"; every part the same).
    pub kind: String,
    pub weights: Vec<usize>,
    pub local_radius: f64,
    pub pool_rows: usize,
}

/// When the feature files are local coresets (`select --shard --coreset-out`), their weights and radii in the
/// order [`crate::embed::parts::read_parts`] opens them (by part); None when none is a coreset. A file whose
/// weights do not match its rows, or whose weights do not add up to its part's rows, is refused by name, as is a
/// mix of coresets and other feature files.
pub fn coreset_union(files: &[std::path::PathBuf]) -> crate::Result<Option<CoresetUnion>> {
    use crate::Error;
    let mut parts = Vec::new();
    for f in files {
        let (feats, meta) = crate::embed::features::Features::read_with_metadata(f)?;
        parts.push((f.clone(), feats.ids.len(), meta));
    }
    let is = |m: &std::collections::HashMap<String, String>| m.contains_key("coreset");
    let Some(one) = parts.iter().find(|p| is(&p.2)) else { return Ok(None) };
    if let Some(other) = parts.iter().find(|p| !is(&p.2)) {
        return Err(Error::Invalid(format!(
            "{} is a local coreset (`select --shard --coreset-out`) but {} is not: give the coresets of one run only",
            one.0.display(),
            other.0.display()
        )));
    }
    if let Some(other) = parts.iter().find(|p| p.2.get("coreset") != one.2.get("coreset")) {
        return Err(Error::Invalid(format!(
            "{} is a {} coreset but {} a {} one: give the coresets of one run only",
            one.0.display(),
            one.2["coreset"],
            other.0.display(),
            other.2["coreset"]
        )));
    }
    let kind = one.2["coreset"].clone();
    LocalKind::parse(&kind).map_err(|e| Error::decode(&one.0, format!("metadata 'coreset': {e}")))?;
    let index = |m: &std::collections::HashMap<String, String>| {
        m.get("shard").and_then(|s| crate::embed::parts::Shard::parse(s).ok()).map_or(0, |s| s.index)
    };
    parts.sort_by_key(|p| index(&p.2));
    let mut out = CoresetUnion { kind, weights: Vec::new(), local_radius: 0.0, pool_rows: 0 };
    for (f, rows, meta) in parts {
        let field = |key: &str| meta.get(key).map_or("", String::as_str);
        let split = |key: &str| -> Vec<&str> {
            let raw = field(key);
            if raw.is_empty() {
                Vec::new()
            } else {
                raw.split(',').collect()
            }
        };
        let bad = |key: &str, n: usize| Error::decode(&f, format!("metadata '{key}' holds {n} values for {rows} rows"));
        let w: Vec<u64> = split("coreset_weights")
            .iter()
            .map(|t| t.parse::<u64>().map_err(|_| Error::decode(&f, format!("metadata 'coreset_weights': {t:?}"))))
            .collect::<crate::Result<_>>()?;
        let r: Vec<f64> = split("coreset_radii")
            .iter()
            .map(|t| match t.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                _ => Err(Error::decode(&f, format!("metadata 'coreset_radii': {t:?}"))),
            })
            .collect::<crate::Result<_>>()?;
        if w.len() != rows {
            return Err(bad("coreset_weights", w.len()));
        }
        if r.len() != rows {
            return Err(bad("coreset_radii", r.len()));
        }
        let part: u64 = field("coreset_part_rows")
            .parse()
            .map_err(|_| Error::decode(&f, "metadata 'coreset_part_rows' is missing or not a count"))?;
        let total = w.iter().try_fold(0u64, |a, &b| a.checked_add(b));
        if total != Some(part) {
            return Err(Error::decode(&f, format!("coreset weights do not add up to the part's {part} rows")));
        }
        out.weights.extend(w.iter().map(|&x| x as usize));
        out.local_radius = r.iter().copied().fold(out.local_radius, f64::max);
        out.pool_rows += part as usize;
    }
    Ok(Some(out))
}

/// `select --shard I/N --coreset-out FILE`: the local coreset of `size` rows of part I of the pool, written as a
/// feature file with [`coreset_metadata`]. The pool is one part file of `embed --shard` (that part is used whole;
/// its shard must be I/N) — what an array task gives so it reads only its own part — or any pool of feature files,
/// split into N parts of consecutive rows. Returns a line for the user.
pub fn write_local_coreset(
    inputs: &[std::path::PathBuf],
    shard: crate::embed::parts::Shard,
    size: usize,
    seed: u64,
    kind: LocalKind,
    out: &std::path::Path,
    force: bool,
) -> crate::Result<String> {
    use crate::embed::features::Features;
    use crate::embed::parts;
    let files = parts::part_files(inputs)?;
    let single = match &files[..] {
        [one] => {
            let (feats, meta) = Features::read_with_metadata(one)?;
            if meta.contains_key("coreset") {
                return Err(crate::Error::Invalid(format!(
                    "{} is already a local coreset: give the pool's features (or this task's part of `embed --shard`)",
                    one.display()
                )));
            }
            match meta.get("shard") {
                Some(s) => {
                    let own = parts::Shard::parse(s)
                        .map_err(|e| crate::Error::decode(one, format!("metadata 'shard': {e}")))?;
                    if own != shard {
                        return Err(crate::Error::Invalid(format!(
                            "{} is part {}/{} of `embed --shard`, not part {}/{}: give this task's own part",
                            one.display(),
                            own.index,
                            own.count,
                            shard.index,
                            shard.count
                        )));
                    }
                    let of = meta.get("shard_of").cloned().unwrap_or_default();
                    Some((feats, of))
                }
                None => {
                    let of = ids_digest(&feats.ids);
                    Some((take_part(feats, shard), of))
                }
            }
        }
        _ => None,
    };
    let (part, of) = match single {
        Some(p) => p,
        None => {
            let pool = parts::read_parts(&files)?;
            let of = ids_digest(&pool.ids);
            (take_part(pool, shard), of)
        }
    };
    // An empty part (fewer samples than parts) keeps an empty coreset, so its array task still succeeds.
    let c = if part.ids.is_empty() {
        LocalCoreset { rows: Vec::new(), weights: Vec::new(), radii: Vec::new() }
    } else {
        local_coreset_of(Matrix::new(&part.data, part.ids.len(), part.dim)?, size, seed ^ shard.index as u64, kind)
    };
    let kept = Features {
        ids: c.rows.iter().map(|&r| part.ids[r].clone()).collect(),
        dim: part.dim,
        data: c.rows.iter().flat_map(|&r| part.row(r).iter().copied()).collect(),
        model: part.model.clone(),
        pool: part.pool.clone(),
        preprocess: part.preprocess.clone(),
    };
    kept.write_with(out, force, &coreset_metadata(shard, &of, &c, part.ids.len(), kind))?;
    Ok(format!(
        "part {}/{}: {} rows -> local {} coreset of {} rows (every row within {:.6} of one) -> {}",
        shard.index,
        shard.count,
        part.ids.len(),
        kind.name(),
        c.rows.len(),
        c.radius(),
        out.display()
    ))
}

/// Rows [`part_rows`] of a pool.
fn take_part(
    f: crate::embed::features::Features,
    shard: crate::embed::parts::Shard,
) -> crate::embed::features::Features {
    let r = part_rows(f.ids.len(), shard);
    crate::embed::features::Features {
        ids: f.ids[r.clone()].to_vec(),
        data: f.data[r.start * f.dim..r.end * f.dim].to_vec(),
        ..f
    }
}

/// The note `select` adds to picks made from a union of local coresets: for `coreset`, the radius within which
/// they (and the labelled rows) cover the whole pool; otherwise, that the weights were not used.
pub fn union_note(name: &str, union: Matrix, labeled: &[usize], picks: &[usize], u: &CoresetUnion) -> String {
    if name == "coreset" {
        let centres: Vec<usize> = labeled.iter().chain(picks).copied().collect();
        let r = covering_radius(union, &centres);
        format!(
            "picked from the union of local coresets: every one of the pool's {} rows is within {:.6} of a pick \
             ({r:.6} over the union + the largest local radius {:.6})",
            u.pool_rows,
            r + u.local_radius,
            u.local_radius
        )
    } else if name.starts_with("probcover") {
        format!(
            "picked from the union of local coresets ({} rows standing for {}) as from a pool: max coverage has no \
             small composable coreset, and the k-center coresets keep spread-out rows rather than dense balls (at \
             100k × 384 synthetic rows the picks from 4 or 16 parts covered 1.00 % of the pool within one machine's \
             δ, against its 1.62 %: docs/results/composable-probcover-2026-12-06)",
            union.n, u.pool_rows
        )
    } else if super::WEIGHTED.contains(&name) {
        format!(
            "picked from the union of local coresets ({} rows standing for {}) with each row counted as the pool rows \
             it stands for ({}): the picks approximate the single-machine ones without a bound (measured at 100k: \
             docs/results/composable-weighted-2026-12-07)",
            union.n,
            u.pool_rows,
            if name == "typiclust-knn" { "weighted k-means, cluster sizes and typicality" } else { "weighted k-means" }
        )
    } else {
        format!(
            "picked from the union of local coresets ({} rows standing for {}) as from a pool: their weights are not \
             used by {name}, so the picks approximate the single-machine ones without a bound",
            union.n, u.pool_rows
        )
    }
}
