//! The strategies. MedCAL-Bench variants follow METHODS.md §3 line by line (f64 arithmetic, lowest index on
//! ties); the official variants are named separately (`typiclust-knn`, `repdiv-maxmin`, `kmeans-centroid`).

use std::collections::HashSet;

pub use super::coreset::{coreset, coreset_f16, coreset_scan, coreset_scan_pruned, kcenter_scan, kcenter_scan_pruned};
use super::kmeans::Clustering;
use super::scan::{self, Pool};
use super::{argmax, Matrix, SelectInput, Selection};
use crate::rng::Rng;
use crate::Result;

pub(super) fn empty() -> Selection {
    Selection { strategy: String::new(), seed: 0, picks: vec![], scores: vec![], notes: vec![] }
}

pub(super) fn norms2(x: Matrix) -> Vec<f64> {
    (0..x.n).map(|i| x.row(i).iter().map(|&v| v as f64 * v as f64).sum()).collect()
}

/// a·b in f64 over eight lanes (the CPU backend's `dot_f64`, which its bulk kernel reproduces bit for bit).
pub(super) fn dot(a: &[f32], b: &[f32]) -> f64 {
    crate::cpu::min_dist_update::dot_f64(a, b)
}

/// Euclidean distance by the norm expansion, clipped at 0 (as MedCAL computes its distance matrix).
pub(super) fn dist(x: Matrix, n2: &[f64], i: usize, j: usize) -> f64 {
    (n2[i] + n2[j] - 2.0 * dot(x.row(i), x.row(j))).max(0.0).sqrt()
}

pub(super) fn sqdist_center(a: &[f32], c: &[f64]) -> f64 {
    a.iter().zip(c).map(|(&x, &y)| (x as f64 - y).powi(2)).sum()
}

pub(crate) fn members(labels: &[usize], k: usize) -> Vec<Vec<usize>> {
    let mut m = vec![Vec::new(); k];
    for (i, &l) in labels.iter().enumerate() {
        if l < k {
            m[l].push(i);
        }
    }
    m
}

/// A strategy's features where its scans run, shared by all its passes.
pub(super) type Device<'a> = Pool<'a>;

/// The scans' pool of `x`, or None when the input has none or is weighted (weighted k-means runs on the CPU
/// backend, see [`kmeans_noted`]).
pub(super) fn device<'a>(input: &SelectInput<'a>, x: Matrix<'a>) -> Result<Option<Device<'a>>> {
    input.scans.filter(|_| input.weights.is_none()).map(|be| Pool::upload(be, x)).transpose()
}

/// k-means of `x` in the scans when given (the pool must hold `x`), else the plain reference (same algorithm
/// and RNG stream).
pub(super) async fn kmeans_on(
    dev: Option<&Device<'_>>,
    x: Matrix<'_>,
    k: usize,
    seed: u64,
    max_iter: usize,
) -> Result<Clustering> {
    Ok(kmeans_noted(dev, x, None, k, seed, max_iter).await?.0)
}

/// [`kmeans_on`], with a note of the work done against the plain algorithm's (distances on the CPU backend, rows
/// measured against every centre in the GPU's scans; no times, so a run's notes are as deterministic as its picks).
/// With row weights `w` it is the weighted k-means ([`super::kmeans::kmeans_weighted`]), always on the CPU backend
/// (the GPU's scans have no weighted centre update; weighted pools are unions of local coresets, small).
pub(super) async fn kmeans_noted(
    dev: Option<&Device<'_>>,
    x: Matrix<'_>,
    w: Option<&[f64]>,
    k: usize,
    seed: u64,
    max_iter: usize,
) -> Result<(Clustering, Option<String>)> {
    match dev {
        Some(pool) if pool.be.is_gpu() && w.is_none() => {
            let (c, st) = scan::kmeans_counted(pool, k, seed, max_iter, 1e-4).await?;
            if std::env::var_os("MEDPICK_SELECT_TRACE").is_some() {
                eprintln!(
                    "k-means k = {} in the scans: k-means++ {:.3} s, Lloyd {:.3} s ({} iterations)",
                    c.k, st.seconds_seed, st.seconds_lloyd, st.iterations
                );
            }
            let note = format!(
                "k-means k = {} in the scans: k-means++ read {} of the plain seeding's {} (row, centre) pairs; {} iterations measured {} rows against every centre (plain: {})",
                c.k, st.seed_pairs, st.seed_pairs_plain, st.iterations, st.rows_measured, st.rows_plain
            );
            Ok((c, Some(note)))
        }
        // The CPU backend: the plain algorithm's result, accelerated (pruned k-means++, Yinyang's Lloyd).
        _ => {
            let (c, st) = super::exact::kmeans_weighted(x, w, k, seed, max_iter, 1e-4);
            if std::env::var_os("MEDPICK_SELECT_TRACE").is_some() {
                eprintln!(
                    "k-means k = {}: k-means++ {:.3} s, Lloyd {:.3} s (GEMM assignments {:.3} s, centre updates {:.3} s summing {} of {} rows, bounds {:.3} s)",
                    c.k, st.seconds_init, st.seconds_lloyd, st.seconds_full, st.seconds_update, st.rows_summed, st.rows_summed_plain, st.seconds_bounds
                );
            }
            let note = format!(
                "{}k-means k = {}: {} iterations; {} exact and {} f32-estimated distances (plain: {})",
                if w.is_some() { "weighted " } else { "" },
                c.k,
                st.iterations,
                st.exact,
                st.filtered,
                st.plain
            );
            Ok((c, Some(note)))
        }
    }
}

/// k-means of the input's raw features (MedCAL's strategies).
pub(super) async fn cluster(
    input: &SelectInput<'_>,
    dev: Option<&Device<'_>>,
    k: usize,
    seed_salt: u64,
) -> Result<Clustering> {
    Ok(kmeans_noted(dev, input.x, input.weights, k, input.seed ^ seed_salt, 300).await?.0)
}

pub(super) fn l2_normalize(x: Matrix) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.data.len());
    for i in 0..x.n {
        let r = x.row(i);
        let n = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() + 1e-10;
        out.extend(r.iter().map(|&v| (v as f64 / n) as f32));
    }
    out
}

/// `random`: a seeded permutation.
pub fn random(input: &SelectInput) -> Selection {
    let labeled: HashSet<usize> = input.labeled.iter().copied().collect();
    let mut rows: Vec<usize> = (0..input.x.n).filter(|i| !labeled.contains(i)).collect();
    Rng::new(input.seed).shuffle(&mut rows);
    rows.truncate(input.budget);
    let scores = vec![0.0; rows.len()];
    Selection { picks: rows, scores, ..empty() }
}

/// ALPS (MedCAL image adaptation) given a clustering: per cluster in index order, the member nearest its centre.
pub fn alps_from(x: Matrix, c: &Clustering) -> Selection {
    let mut sel = empty();
    for (k, m) in members(&c.labels, c.k).iter().enumerate() {
        let center = &c.centers[k * x.d..(k + 1) * x.d];
        if let Some((j, dd)) = argmax(m.iter().map(|&i| -sqdist_center(x.row(i), center))) {
            sel.picks.push(m[j]);
            sel.scores.push(dd);
        }
    }
    sel
}

/// `alps`: k-means with k = budget on raw features, nearest member to each centre.
pub async fn alps(input: &SelectInput<'_>) -> Result<Selection> {
    let dev = device(input, input.x)?;
    Ok(alps_from(input.x, &cluster(input, dev.as_ref(), input.budget, 0xa1b5).await?))
}

/// TypiClust (MedCAL variant) given a clustering: per cluster, the member with the highest cosine similarity
/// to the cluster's mean, chosen by MedCAL's typicality 1/(cosine distance + 1e-10). The score reported is that
/// cosine similarity (1 for a cluster of one): the typicality itself is 1e10 there, a sentinel, not a measure.
/// With row weights `w`, the cluster's mean is the weighted one (1.0 · v = v: weights of 1 change nothing).
pub fn typiclust_from(x: Matrix, w: Option<&[f64]>, labels: &[usize], k: usize) -> Selection {
    let ws = super::kmeans::Weights(w);
    let mut sel = empty();
    for m in members(labels, k).iter().filter(|m| !m.is_empty()) {
        let mut mean = vec![0f64; x.d];
        for &i in m {
            let wi = ws.of(i);
            for (s, &v) in mean.iter_mut().zip(x.row(i)) {
                *s += wi * v as f64;
            }
        }
        let total = ws.total(m.iter().copied());
        for s in &mut mean {
            *s /= total;
        }
        let mn = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
        let cos: Vec<f64> = m
            .iter()
            .map(|&i| {
                let r = x.row(i);
                let rn = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
                r.iter().zip(&mean).map(|(&a, &b)| a as f64 * b).sum::<f64>() / (rn * mn)
            })
            .collect();
        if let Some((j, _)) = argmax(cos.iter().map(|c| 1.0 / ((1.0 - c) + 1e-10))) {
            sel.picks.push(m[j]);
            sel.scores.push(if m.len() == 1 { 1.0 } else { cos[j] });
        }
    }
    sel
}

/// `typiclust` (MedCAL variant): k-means with k = budget.
pub async fn typiclust(input: &SelectInput<'_>) -> Result<Selection> {
    let dev = device(input, input.x)?;
    let c = cluster(input, dev.as_ref(), input.budget, 0x7c1).await?;
    Ok(typiclust_from(input.x, input.weights, &c.labels, c.k))
}

/// `typiclust-spread` (medpick's class-spreading variant): TypiClust's picks spread evenly over the pool's
/// coarse modes, so a dense majority cannot take them all. k-means with c = ⌈√B⌉ coarse clusters; the budget
/// divided equally among them (a cluster smaller than its share gives the rest to the others, larger clusters
/// first for the remainder); within each coarse cluster TypiClust (k-means with k = its share, the most typical
/// member of each). Typicality-driven picks crowd the majority class on imbalanced pools (docs/results/evidence.md);
/// equal shares per mode instead of shares by density are the hedge.
pub async fn typiclust_spread(input: &SelectInput<'_>) -> Result<Selection> {
    let dev = device(input, input.x)?;
    let c = ((input.budget as f64).sqrt().ceil() as usize).clamp(1, input.x.n.max(1));
    let coarse = cluster(input, dev.as_ref(), c, 0x5b7e).await?;
    let groups: Vec<Vec<usize>> = members(&coarse.labels, coarse.k).into_iter().filter(|g| !g.is_empty()).collect();
    let shares = equal_shares(&groups.iter().map(Vec::len).collect::<Vec<_>>(), input.budget);
    let mut sel = empty();
    for (gi, (g, &share)) in groups.iter().zip(&shares).enumerate() {
        if share == 0 {
            continue;
        }
        let rows: Vec<f32> = g.iter().flat_map(|&i| input.x.row(i).iter().copied()).collect();
        let sub = Matrix { data: &rows, n: g.len(), d: input.x.d };
        let sub_dev =
            input.scans.filter(|_| g.len() >= super::SCAN_MIN_ROWS).map(|be| Pool::upload(be, sub)).transpose()?;
        let cl = kmeans_on(sub_dev.as_ref(), sub, share, input.seed ^ 0x5b7f ^ gi as u64, 300).await?;
        let s = typiclust_from(sub, None, &cl.labels, cl.k);
        sel.picks.extend(s.picks.iter().map(|&p| g[p]));
        sel.scores.extend(s.scores);
    }
    Ok(sel)
}

/// `budget` split as equally as the group sizes allow: each group gets the same share, capped at its size, the
/// rest going round again; a remainder goes to the larger groups first (ties: the earlier group).
pub(super) fn equal_shares(sizes: &[usize], budget: usize) -> Vec<usize> {
    let mut shares = vec![0usize; sizes.len()];
    let mut left = budget.min(sizes.iter().sum());
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    while left > 0 {
        let open: Vec<usize> = order.iter().copied().filter(|&g| shares[g] < sizes[g]).collect();
        let each = left / open.len();
        if each == 0 {
            for &g in open.iter().take(left) {
                shares[g] += 1;
            }
            break;
        }
        for &g in &open {
            let add = each.min(sizes[g] - shares[g]);
            shares[g] += add;
            left -= add;
        }
    }
    shares
}

/// `typiclust-knn` (official TypiClust): L2-normalised features, min(|L| + B, 500) clusters, clusters of ≤ 5
/// members dropped, visited by (labelled count ↑, size ↓); in each, the unselected member with the highest
/// typicality 1/(mean squared distance to its k = min(20, |C|/2) nearest cluster-mates + 1e-5).
/// With a scan backend, the k-means and each visited cluster's kNN (clusters of more than 256 members) run there.
pub async fn typiclust_knn(input: &SelectInput<'_>) -> Result<Selection> {
    let xn = l2_normalize(input.x);
    let x = Matrix { data: &xn, n: input.x.n, d: input.x.d };
    let k = (input.labeled.len() + input.budget).min(500).min(x.n);
    let tk = crate::Instant::now();
    let (c, note) = kmeans_noted(device(input, x)?.as_ref(), x, input.weights, k, input.seed ^ 0x7c2, 300).await?;
    let tk = tk.elapsed().as_secs_f64();
    let tt = crate::Instant::now();
    let labeled: HashSet<usize> = input.labeled.iter().copied().collect();
    let ws = super::kmeans::Weights(input.weights);
    // Each cluster's members in row order; labelled and picked rows leave them. A cluster's size is its members'
    // total weight (their count unweighted).
    let mut mem = members(&c.labels, c.k);
    let mut table: Vec<(usize, f64, usize)> = (0..c.k)
        .map(|j| (j, ws.total(mem[j].iter().copied()), mem[j].iter().filter(|i| labeled.contains(i)).count()))
        .filter(|&(_, size, _)| size > 5.0)
        .collect();
    if table.is_empty() {
        table = (0..c.k).map(|j| (j, ws.total(mem[j].iter().copied()), 0)).collect();
    }
    table.sort_by(|a, b| a.2.cmp(&b.2).then(b.1.total_cmp(&a.1)).then(a.0.cmp(&b.0)));
    for m in mem.iter_mut() {
        m.retain(|i| !labeled.contains(i));
    }
    let mut sel = empty();
    let mut t = 0;
    let mut misses = 0;
    // The CPU backend: the plain typicality, each member's nearest cluster-mates found once per cluster.
    let mut cached =
        input.scans.filter(|be| !be.is_gpu() && input.weights.is_none()).map(|_| super::typicality::Typicality::new(x));
    while sel.picks.len() < input.budget && misses < table.len() {
        let cl = table[t % table.len()].0;
        t += 1;
        let idx = &mem[cl];
        if idx.is_empty() {
            misses += 1;
            continue;
        }
        misses = 0;
        let kk = (idx.len() / 2).clamp(1, 20);
        if let Some(tc) = cached.as_mut() {
            if let Some((j, v)) = argmax(tc.of(cl, idx)) {
                sel.picks.push(idx[j]);
                sel.scores.push(v);
                mem[cl].remove(j);
            }
            continue;
        }
        if let (Some(be), true, None) = (input.scans, idx.len() > 256, input.weights) {
            let rows: Vec<f32> = idx.iter().flat_map(|&i| x.row(i).iter().copied()).collect();
            let members = Pool::upload(be, Matrix { data: &rows, n: idx.len(), d: x.d })?;
            let (vals, _, kk) = scan::knn(&members, kk).await?;
            let typ = (0..idx.len()).map(|r| {
                let m = vals[r * kk..(r + 1) * kk].iter().map(|&v| v as f64).sum::<f64>() / kk.max(1) as f64;
                1.0 / (m + 1e-5)
            });
            if let Some((j, v)) = argmax(typ) {
                sel.picks.push(idx[j]);
                sel.scores.push(v);
                mem[cl].remove(j);
            }
            continue;
        }
        // Each member's plain typicality (weighted when the rows are) on the CPU backend's threads.
        let typ = weighted_typicality(x, ws, idx);
        if let Some((j, v)) = argmax(typ) {
            sel.picks.push(idx[j]);
            sel.scores.push(v);
            mem[cl].remove(j);
        }
    }
    if std::env::var_os("MEDPICK_SELECT_TRACE").is_some() {
        eprintln!("typiclust-knn: k-means {tk:.3} s, typicality {:.3} s", tt.elapsed().as_secs_f64());
    }
    sel.notes.extend(note);
    if let Some(tc) = cached {
        sel.notes.push(format!("typicality: {} exact pair distances (plain: {})", tc.exact, tc.plain));
    }
    Ok(sel)
}

/// TypiClust's typicality of each of `idx` (a cluster's members still open) with each row counted `w` times:
/// 1/(mean squared distance to its k = min(20, ⌊W/2⌋) nearest other members + 1e-5), where W is the members' total
/// weight and another member j counts as w[j] rows at its distance (a member's own other rows are not counted: where they lie is not
/// known). Unweighted (or with weights of 1) it is the plain typicality: k = min(20, ⌊|C|/2⌋) nearest members.
pub(super) fn weighted_typicality(x: Matrix, w: super::kmeans::Weights, idx: &[usize]) -> Vec<f64> {
    let kk = ((w.total(idx.iter().copied()) / 2.0).floor()).clamp(1.0, 20.0);
    crate::cpu::par::map(idx.len(), |r| {
        let i = idx[r];
        let mut ds: Vec<(f64, f64)> = idx
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| (crate::cpu::min_dist_update::sqdist_f64(x.row(i), x.row(j)), w.of(j)))
            .collect();
        ds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut left, mut sum, mut count) = (kk, 0.0, 0.0);
        for (d, wj) in ds {
            if left <= 0.0 {
                break;
            }
            let take = wj.min(left);
            sum += take * d;
            count += take;
            left -= take;
        }
        1.0 / (if count > 0.0 { sum / count } else { 0.0 } + 1e-5)
    })
}

/// BAL (MedCAL): cluster distance difference d₂ − d₁ to 100 centres; the `budget` largest.
pub fn bal_from(x: Matrix, c: &Clustering, budget: usize) -> Selection {
    let cdd: Vec<(usize, f64)> = (0..x.n)
        .map(|i| {
            let mut ds: Vec<f64> =
                (0..c.k).map(|j| sqdist_center(x.row(i), &c.centers[j * x.d..(j + 1) * x.d]).sqrt()).collect();
            ds.sort_by(|a, b| a.total_cmp(b));
            (i, if ds.len() > 1 { ds[1] - ds[0] } else { 0.0 })
        })
        .collect();
    largest_cdd(cdd, budget)
}

/// The `budget` rows of largest cluster distance difference (lower row first on equal values).
pub(super) fn largest_cdd(mut cdd: Vec<(usize, f64)>, budget: usize) -> Selection {
    cdd.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    cdd.truncate(budget);
    Selection { picks: cdd.iter().map(|p| p.0).collect(), scores: cdd.iter().map(|p| p.1).collect(), ..empty() }
}

/// With a scan backend, the k-means and the two nearest centres of every row are computed there.
pub async fn bal(input: &SelectInput<'_>) -> Result<Selection> {
    let dev = device(input, input.x)?;
    let c = cluster(input, dev.as_ref(), 100.min(input.x.n), 0xba1).await?;
    match dev {
        Some(pool) if c.k > 1 => {
            let centers: Vec<f32> = c.centers.iter().map(|&v| v as f32).collect();
            let (vals, _) = scan::nearest_k(&pool, Matrix { data: &centers, n: c.k, d: input.x.d }, 2).await?;
            let cdd = (0..input.x.n)
                .map(|i| (i, (vals[2 * i + 1].max(0.0) as f64).sqrt() - (vals[2 * i].max(0.0) as f64).sqrt()))
                .collect();
            Ok(largest_cdd(cdd, input.budget))
        }
        _ => Ok(bal_from(input.x, &c, input.budget)),
    }
}

/// FPS (MedCAL's cluster-diameter variant) given a clustering with k = ⌊B/2⌋: per cluster the farthest pair
/// (first maximum in row-major order of the intra-cluster distance matrix), both appended; for odd B the first
/// member of the last cluster; truncated to B. May contain duplicates (filled later, see [`finish`]).
pub fn fps_from(x: Matrix, labels: &[usize], k: usize, budget: usize) -> Selection {
    let n2 = norms2(x);
    let mut sel = empty();
    let ms = members(labels, k);
    for m in &ms {
        if m.is_empty() {
            continue;
        }
        let (mut ba, mut bb, mut bd) = (0, 0, f64::NEG_INFINITY);
        for a in 0..m.len() {
            for b in 0..m.len() {
                let dd = dist(x, &n2, m[a], m[b]);
                if dd > bd {
                    (ba, bb, bd) = (a, b, dd);
                }
            }
        }
        sel.picks.extend([m[ba], m[bb]]);
        sel.scores.extend([bd, bd]);
    }
    if budget % 2 == 1 {
        if let Some(&f) = ms.last().and_then(|m| m.first()) {
            sel.picks.push(f);
            sel.scores.push(0.0);
        }
    }
    sel.picks.truncate(budget);
    sel.scores.truncate(budget);
    sel
}

pub async fn fps(input: &SelectInput<'_>) -> Result<Selection> {
    let k = (input.budget / 2).max(1);
    let dev = device(input, input.x)?;
    let c = cluster(input, dev.as_ref(), k, 0xf95).await?;
    Ok(fps_from(input.x, &c.labels, c.k, input.budget))
}

/// `kmeans-centroid` (DropQuery's initial pool): L2-normalised features, k-means with k = B, nearest member.
pub async fn kmeans_centroid(input: &SelectInput<'_>) -> Result<Selection> {
    let xn = l2_normalize(input.x);
    let x = Matrix { data: &xn, n: input.x.n, d: input.x.d };
    let c = kmeans_noted(device(input, x)?.as_ref(), x, input.weights, input.budget, input.seed ^ 0xd90, 100).await?.0;
    Ok(alps_from(x, &c))
}

/// Drop duplicates and labelled rows (keeping the first occurrence), then fill up to the budget by k-center
/// greedy from everything picked or labelled so far (lowest index on ties), noting how many were filled.
pub fn finish(sel: &mut Selection, input: &SelectInput) {
    let labeled: HashSet<usize> = input.labeled.iter().copied().collect();
    let mut seen = HashSet::new();
    let (mut picks, mut scores) = (Vec::new(), Vec::new());
    for (p, s) in sel.picks.iter().zip(&sel.scores) {
        if !labeled.contains(p) && seen.insert(*p) {
            picks.push(*p);
            scores.push(*s);
        }
    }
    let dropped = sel.picks.len() - picks.len();
    if dropped > 0 {
        sel.notes.push(format!("{dropped} duplicate or already-labelled picks removed"));
    }
    picks.truncate(input.budget);
    scores.truncate(input.budget);
    let missing = input.budget - picks.len();
    if missing > 0 {
        let x = input.x;
        let n2 = norms2(x);
        let mut mind = vec![f64::INFINITY; x.n];
        let anchors: Vec<usize> = picks.iter().chain(input.labeled.iter()).copied().collect();
        for &a in &anchors {
            for (i, m) in mind.iter_mut().enumerate() {
                *m = m.min(dist(x, &n2, i, a));
            }
        }
        for &a in &anchors {
            mind[a] = f64::NEG_INFINITY;
        }
        for _ in 0..missing {
            let Some((j, v)) = argmax(mind.iter().copied()) else { break };
            picks.push(j);
            scores.push(v);
            for (i, m) in mind.iter_mut().enumerate() {
                if *m != f64::NEG_INFINITY {
                    *m = m.min(dist(x, &n2, i, j));
                }
            }
            mind[j] = f64::NEG_INFINITY;
        }
        sel.notes.push(format!("{missing} picks filled by k-center greedy from the selection"));
    }
    sel.picks = picks;
    sel.scores = scores;
}

/// Squared Euclidean distances from row `i` to every row (f64).
pub(super) fn sqdists_from(x: Matrix, i: usize) -> Vec<f64> {
    (0..x.n).map(|j| x.row(i).iter().zip(x.row(j)).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum()).collect()
}

/// Mean of the `k` smallest entries of `v` (all when fewer).
pub(super) fn mean_smallest(mut v: Vec<f64>, k: usize) -> f64 {
    let k = k.min(v.len());
    if k == 0 {
        return 0.0;
    }
    v.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
    v[..k].iter().sum::<f64>() / k as f64
}

/// `usl-medcal` (MedCAL's own USL, METHODS.md §3.9): density 1/(mean Euclidean distance to the 5 nearest other
/// points + 1e-6); 10 rounds of S ← the top-B rows by density − 0.5·Σ_{s∈S} 1/(max(‖x − x_s‖, 0.01)² + 1e-6)
/// (no regulariser in the first round; chosen rows penalise themselves, as coded). Picks in MedCAL's order
/// (ascending utility, as `argsort(utility)[-B:]` returns them).
pub async fn usl_medcal(input: &SelectInput<'_>) -> Result<Selection> {
    let x = input.x;
    let n = x.n;
    let density: Vec<f64> = match input.scans {
        Some(be) => {
            let (vals, _, k) = scan::knn(&Pool::upload(be, x)?, 5).await?;
            (0..n)
                .map(|i| {
                    let m = vals[i * k..(i + 1) * k].iter().map(|&v| (v.max(0.0) as f64).sqrt()).sum::<f64>();
                    1.0 / (m / k.max(1) as f64 + 1e-6)
                })
                .collect()
        }
        None => (0..n)
            .map(|i| {
                let mut d = sqdists_from(x, i);
                d.swap_remove(i);
                let d: Vec<f64> = d.into_iter().map(f64::sqrt).collect();
                1.0 / (mean_smallest(d, 5) + 1e-6)
            })
            .collect(),
    };
    let labeled: HashSet<usize> = input.labeled.iter().copied().collect();
    let mut chosen: Vec<usize> = Vec::new();
    let mut utility = density.clone();
    for _ in 0..10 {
        let mut reg = vec![0f64; n];
        for &s in &chosen {
            for (r, d2) in reg.iter_mut().zip(sqdists_from(x, s)) {
                *r += 1.0 / (d2.sqrt().max(0.01).powi(2) + 1e-6);
            }
        }
        utility = density.iter().zip(&reg).map(|(d, r)| d - 0.5 * r).collect();
        let mut order: Vec<usize> = (0..n).filter(|i| !labeled.contains(i)).collect();
        order.sort_by(|&a, &b| utility[b].total_cmp(&utility[a]).then(a.cmp(&b)));
        order.truncate(input.budget);
        chosen = order;
    }
    // MedCAL takes `argsort(utility)[-B:]`: the top B in ascending utility.
    chosen.reverse();
    let scores = chosen.iter().map(|&i| utility[i]).collect();
    Ok(Selection { picks: chosen, scores, ..empty() })
}

/// Lloyd k-means initialised by a seeded random permutation of the rows (the official USL's own k-means), run
/// until no label changes or `iters` rounds.
pub(super) fn lloyd_random_init(x: Matrix, k: usize, iters: usize, seed: u64) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..x.n).collect();
    Rng::new(seed ^ 0x051).shuffle(&mut rows);
    let mut centers: Vec<f64> = rows[..k].iter().flat_map(|&r| x.row(r).iter().map(|&v| v as f64)).collect();
    let mut labels = vec![usize::MAX; x.n];
    for _ in 0..iters.max(1) {
        let mut changed = false;
        for (i, l) in labels.iter_mut().enumerate() {
            let best = (0..k)
                .map(|c| (c, sqdist_center(x.row(i), &centers[c * x.d..(c + 1) * x.d])))
                .fold((0, f64::INFINITY), |b, (c, d)| if d < b.1 { (c, d) } else { b })
                .0;
            changed |= *l != best;
            *l = best;
        }
        if !changed {
            break;
        }
        let mut sums = vec![0f64; k * x.d];
        let mut counts = vec![0usize; k];
        for i in 0..x.n {
            counts[labels[i]] += 1;
            for (s, &v) in sums[labels[i] * x.d..(labels[i] + 1) * x.d].iter_mut().zip(x.row(i)) {
                *s += v as f64;
            }
        }
        for c in (0..k).filter(|&c| counts[c] > 0) {
            for t in 0..x.d {
                centers[c * x.d + t] = sums[c * x.d + t] / counts[c] as f64;
            }
        }
    }
    labels
}

/// `usl` (official USL, Wang et al. ECCV 2022, CIFAR defaults of `config.py`): L2-normalised features; density
/// 1/(mean of the K = 400 smallest squared distances, self included); k-means with B clusters from a seeded random
/// permutation (200 Lloyd rounds); then 10 rounds of: per cluster the member maximising density − 0.5·reg, and
/// reg ← 0.9·reg + 0.1·Σ_c (‖x − x_{s_c}‖²)^−0.5 over the selections s_c of other clusters within squared
/// distance 4. Picks are the last round's, in cluster order.
pub fn usl(input: &SelectInput) -> Selection {
    let xn = l2_normalize(input.x);
    let x = Matrix { data: &xn, n: input.x.n, d: input.x.d };
    let n = x.n;
    let density: Vec<f64> = (0..n).map(|i| 1.0 / mean_smallest(sqdists_from(x, i), 400).max(1e-12)).collect();
    let k = input.budget.min(n);
    let labels = lloyd_random_init(x, k, 200, input.seed);
    let labeled: HashSet<usize> = input.labeled.iter().copied().collect();
    let groups = members(&labels, k);
    let mut reg = vec![0f64; n];
    let mut picks: Vec<(usize, f64)> = Vec::new();
    for _ in 0..10 {
        picks = groups
            .iter()
            .filter_map(|m| {
                let cand: Vec<usize> = m.iter().copied().filter(|i| !labeled.contains(i)).collect();
                argmax(cand.iter().map(|&i| density[i] - 0.5 * reg[i])).map(|(j, v)| (cand[j], v))
            })
            .collect();
        let mut new_reg = vec![0f64; n];
        for &(s, _) in &picks {
            for (i, d2) in sqdists_from(x, s).into_iter().enumerate() {
                if labels[i] != labels[s] && d2 < 4.0 {
                    new_reg[i] += 1.0 / d2.max(1e-12).sqrt();
                }
            }
        }
        for (r, nr) in reg.iter_mut().zip(new_reg) {
            *r = 0.9 * *r + 0.1 * nr;
        }
    }
    Selection { picks: picks.iter().map(|p| p.0).collect(), scores: picks.iter().map(|p| p.1).collect(), ..empty() }
}

#[cfg(test)]
mod spread_tests {
    #[test]
    fn equal_shares_cap_at_sizes_and_hand_the_rest_round() {
        assert_eq!(super::equal_shares(&[100, 100, 100], 27), vec![9, 9, 9]);
        // A small mode takes all it has; the others share the rest, the larger first for the remainder.
        assert_eq!(super::equal_shares(&[3, 50, 80], 27), vec![3, 12, 12]);
        assert_eq!(super::equal_shares(&[3, 50, 80], 28), vec![3, 12, 13]);
        assert_eq!(super::equal_shares(&[2, 2], 10), vec![2, 2]);
        assert_eq!(super::equal_shares(&[5, 5, 5], 2), vec![1, 1, 0]);
    }
}
