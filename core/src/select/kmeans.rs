//! k-means (Lloyd) with greedy k-means++ seeding, as scikit-learn does it (`2 + ⌊ln k⌋` candidates per centre,
//! the one that lowers the potential most), in f64 on the CPU with medpick's own RNG. scikit-learn's random
//! stream cannot be reproduced, so clusterings differ from MedCAL's; quality (inertia) is comparable.

use super::Matrix;
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct Clustering {
    pub labels: Vec<usize>,
    /// [k, d]
    pub centers: Vec<f64>,
    pub k: usize,
    pub inertia: f64,
}

/// Σ (a − c)² in f64 over eight lanes (the CPU backend's distance, vectorised; [`super::exact`] evaluates the
/// same function, so its results equal these bit for bit).
fn sqdist(a: &[f32], c: &[f64]) -> f64 {
    crate::cpu::min_dist_update::sqdist_f64c(a, c)
}

/// The mean per-feature variance of the rows: Lloyd stops when the squared centre shift falls below `tol` times
/// it (scikit-learn's rule).
pub fn mean_variance(x: Matrix) -> f64 {
    mean_variance_w(x, None)
}

/// Row weights: each row stands for `w[i]` rows (a union of local coresets, issue 26); `None` counts each once.
/// Every weighted sum multiplies by the weight, and 1.0 · v = v exactly, so weights of 1 give the unweighted
/// results bit for bit.
#[derive(Clone, Copy)]
pub struct Weights<'a>(pub Option<&'a [f64]>);

impl Weights<'_> {
    #[inline]
    pub fn of(&self, i: usize) -> f64 {
        self.0.map_or(1.0, |w| w[i])
    }

    /// The total weight of `rows` (their count unweighted), summed in their order.
    pub fn total(&self, rows: impl Iterator<Item = usize>) -> f64 {
        match self.0 {
            None => rows.count() as f64,
            Some(w) => rows.fold(0.0, |a, i| a + w[i]),
        }
    }
}

/// [`mean_variance`] with each row counted `w` times: the weighted mean per-feature variance.
pub fn mean_variance_w(x: Matrix, w: Option<&[f64]>) -> f64 {
    let (n, d) = (x.n, x.d);
    let ws = Weights(w);
    let total = ws.total(0..n);
    let mut mean = vec![0f64; d];
    for i in 0..n {
        let wi = ws.of(i);
        for (m, &v) in mean.iter_mut().zip(x.row(i)) {
            *m += wi * v as f64 / total;
        }
    }
    (0..n).map(|i| ws.of(i) * sqdist(x.row(i), &mean)).sum::<f64>() / (total * d as f64)
}

/// Lloyd's centre update: each centre becomes the (weighted) mean of its rows, summed in f64 in row order (a
/// centre without rows keeps its value), the centres split across the CPU backend's threads, each thread streaming
/// the rows front to back for its centres, so the sums are the sequential ones bit for bit. Kept between iterations ([`super::exact::kmeans`]),
/// each centre's sum resumes from where its rows first changed. A centre's sum is
/// the fold of its rows in row order; every `CHECK` rows the running sum is kept, so when the rows change the
/// fold restarts from the last kept sum before the first changed row (the same rows in the same order before it
/// give the same bits), and a centre whose rows did not change keeps its value (shift exactly 0).
pub(super) struct CentreSums<'w> {
    /// Each row's weight (the sums are Σ w·x over Σ w).
    w: Weights<'w>,
    /// Each centre's rows in row order, as last averaged.
    rows: Vec<Vec<u32>>,
    /// Each centre's running sums after 0, CHECK, 2·CHECK, … of its rows ([count, d] each).
    kept: Vec<Vec<f64>>,
    first: bool,
    /// Rows summed, and what summing every centre afresh would have.
    pub(super) summed: u64,
    pub(super) plain: u64,
}

impl<'w> CentreSums<'w> {
    const CHECK: usize = 64;

    pub(super) fn new(k: usize, w: Weights<'w>) -> Self {
        CentreSums { w, rows: vec![Vec::new(); k], kept: vec![Vec::new(); k], first: true, summed: 0, plain: 0 }
    }

    /// Move each centre to the mean of its rows under `labels` (a centre without rows keeps its value); returns
    /// the squared shift of all centres (summed in centre order; an unchanged centre adds nothing, as its +0 would).
    ///
    /// The folds stream the rows in row order: the centres whose rows changed are split across the CPU backend's
    /// threads, and each thread reads the rows once, front to back, adding each of its centres' rows from where that
    /// centre's fold restarts. Every centre still folds its own rows in row order (the same bits), but the rows are
    /// read sequentially rather than cluster by cluster, which memory serves several times faster.
    pub(super) fn update(&mut self, x: Matrix, labels: &[usize], centers: &mut [f64]) -> f64 {
        let (n, d, k, check) = (x.n, x.d, self.rows.len(), Self::CHECK);
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); k];
        for (i, &l) in labels.iter().enumerate() {
            rows[l].push(i as u32);
        }
        let first = std::mem::replace(&mut self.first, false);
        // Where each centre's fold restarts (a multiple of CHECK into its rows: the last kept sum within the
        // unchanged prefix), None when its rows are unchanged.
        let restart: Vec<Option<usize>> = (0..k)
            .map(|j| {
                if first {
                    return Some(0);
                }
                let (new, old) = (&rows[j], &self.rows[j]);
                let same = new.iter().zip(old).take_while(|(a, b)| a == b).count();
                (same != new.len() || same != old.len()).then_some(same / check * check)
            })
            .collect();
        // The centres to fold, dealt to the threads largest first, each to the least loaded.
        let mut todo: Vec<usize> = (0..k).filter(|&j| restart[j].is_some()).collect();
        let work = |j: usize| rows[j].len() - restart[j].unwrap_or(0);
        todo.sort_by_key(|&j| std::cmp::Reverse(work(j)));
        let tasks = crate::cpu::par::threads().clamp(1, todo.len().max(1));
        let (mut owner, mut load) = (vec![usize::MAX; k], vec![0usize; tasks]);
        for &j in &todo {
            let t = (0..tasks).min_by_key(|&t| load[t]).unwrap_or(0);
            owner[j] = t;
            load[t] += work(j);
        }
        let (old_kept, ws, rows_ref) = (&self.kept, self.w, &rows);
        // Per task: (centre, its sum, its kept sums, rows folded).
        let folded: Vec<Vec<(usize, Vec<f64>, Vec<f64>, usize)>> = crate::cpu::par::map(tasks, |task| {
            let mine: Vec<usize> = todo.iter().copied().filter(|&j| owner[j] == task).collect();
            let mut slot = vec![usize::MAX; k];
            // (kept sums, running sum, rows folded so far, the row the fold restarts at)
            let mut state: Vec<(Vec<f64>, Vec<f64>, usize, usize)> = Vec::with_capacity(mine.len());
            for (s, &j) in mine.iter().enumerate() {
                slot[j] = s;
                let r = restart[j].unwrap_or(0);
                let t = r / check;
                let kept: Vec<f64> = if first { vec![0f64; d] } else { old_kept[j][..(t + 1) * d].to_vec() };
                let sum = kept[t * d..(t + 1) * d].to_vec();
                let from = rows_ref[j].get(r).map_or(n, |&i| i as usize);
                state.push((kept, sum, r, from));
            }
            let begin = state.iter().map(|s| s.3).min().unwrap_or(n);
            for (i, &j) in labels.iter().enumerate().skip(begin) {
                let s = slot[j];
                if s == usize::MAX || i < state[s].3 {
                    continue;
                }
                let st = &mut state[s];
                crate::cpu::min_dist_update::add_row_f64(&mut st.1, ws.of(i), x.row(i));
                st.2 += 1;
                if st.2.is_multiple_of(check) {
                    st.0.extend_from_slice(&st.1);
                }
            }
            mine.iter()
                .zip(state)
                .map(|(&j, (kept, sum, count, _))| (j, sum, kept, count - restart[j].unwrap_or(0)))
                .collect()
        });
        let mut sums: Vec<Option<(Vec<f64>, Vec<f64>, usize)>> = vec![None; k];
        for (j, sum, kept, summed) in folded.into_iter().flatten() {
            sums[j] = Some((sum, kept, summed));
        }
        let mut shift = 0.0;
        for (j, sum) in sums.into_iter().enumerate() {
            let Some((s, kept, summed)) = sum else { continue };
            self.summed += summed as u64;
            self.kept[j] = kept;
            if rows[j].is_empty() {
                continue; // empty cluster keeps its centre
            }
            let total = self.w.total(rows[j].iter().map(|&i| i as usize));
            for t in 0..d {
                let c = s[t] / total;
                shift += (c - centers[j * d + t]).powi(2);
                centers[j * d + t] = c;
            }
        }
        self.plain += labels.len() as u64;
        self.rows = rows;
        shift
    }
}

/// Cluster the rows of `x` into `k` groups.
pub fn kmeans(x: Matrix, k: usize, seed: u64, max_iter: usize, tol: f64) -> Clustering {
    kmeans_weighted(x, None, k, seed, max_iter, tol)
}

/// [`kmeans`] with each row counted `w[i]` times, in the manner of scikit-learn's `KMeans.fit(X, sample_weight=w)`:
/// k-means++ draws by w·D² and gains Σ w·(improvement), centres are weighted means, the inertia Σ w·D². Unlike
/// scikit-learn, the first centre is drawn uniformly (medpick's stream, as unweighted) and the tolerance is scaled
/// by the weighted variance (the pool's, which the weighted rows stand for). With `None` (or weights of 1) it is
/// [`kmeans`] bit for bit. `w` must hold one positive finite weight per row ([`super::select_on`] checks the
/// weights it is given).
pub fn kmeans_weighted(x: Matrix, w: Option<&[f64]>, k: usize, seed: u64, max_iter: usize, tol: f64) -> Clustering {
    let (n, d) = (x.n, x.d);
    let ws = Weights(w);
    let k = k.clamp(1, n.max(1));
    let mut rng = Rng::new(seed ^ 0x6b6d_6561_6e73);
    // Greedy k-means++: of 2 + ⌊ln k⌋ candidates drawn by D², the one that lowers the potential most (the
    // largest gain Σ max(0, closest − D²), summed in row order; the first candidate on ties).
    let mut centers = Vec::with_capacity(k * d);
    let first = rng.below(n as u32) as usize;
    centers.extend(x.row(first).iter().map(|&v| v as f64));
    let mut closest: Vec<f64> = (0..n).map(|i| sqdist(x.row(i), &centers[0..d])).collect();
    let trials = 2 + (k as f64).ln().floor() as usize;
    for _ in 1..k {
        let pot = closest.iter().enumerate().fold(0.0, |a, (i, &c)| a + ws.of(i) * c);
        let mut best: Option<(usize, f64)> = None;
        for _ in 0..trials {
            let target = rng.next_f64() * pot;
            let mut acc = 0.0;
            let mut cand = n - 1;
            for (i, &c) in closest.iter().enumerate() {
                acc += ws.of(i) * c;
                if acc > target {
                    cand = i;
                    break;
                }
            }
            let row: Vec<f64> = x.row(cand).iter().map(|&v| v as f64).collect();
            let gain = (0..n).fold(0.0, |g, i| g + ws.of(i) * (closest[i] - closest[i].min(sqdist(x.row(i), &row))));
            if best.is_none_or(|(_, bg)| gain > bg) {
                best = Some((cand, gain));
            }
        }
        let Some((cand, _)) = best else { break };
        let row: Vec<f64> = x.row(cand).iter().map(|&v| v as f64).collect();
        for (i, c) in closest.iter_mut().enumerate() {
            *c = c.min(sqdist(x.row(i), &row));
        }
        centers.extend(row);
    }
    // Lloyd.
    let mut labels = vec![0usize; n];
    let total_var = mean_variance_w(x, w);
    // The nearest centre of each point (lowest index on ties), points split across the CPU backend's threads.
    let assign = |centers: &[f64]| {
        crate::cpu::par::map(n, |i| {
            let (mut bj, mut bd) = (0, f64::INFINITY);
            for j in 0..k {
                let dd = sqdist(x.row(i), &centers[j * d..(j + 1) * d]);
                if dd < bd {
                    bd = dd;
                    bj = j;
                }
            }
            (bj, bd)
        })
    };
    for _ in 0..max_iter.max(1) {
        for (l, (bj, _)) in labels.iter_mut().zip(assign(&centers)) {
            *l = bj;
        }
        let shift = CentreSums::new(k, ws).update(x, &labels, &mut centers);
        if shift <= tol * total_var {
            break;
        }
    }
    // Final assignment to the final centres.
    let mut inertia = 0.0;
    for (i, (l, (bj, bd))) in labels.iter_mut().zip(assign(&centers)).enumerate() {
        *l = bj;
        inertia += ws.of(i) * bd;
    }
    Clustering { labels, centers, k, inertia }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed, resumed centre sums equal a fresh fold of each centre's rows in row order, bit for bit, through
    /// label changes anywhere in the rows (before, inside and after kept sums), weighted and unweighted.
    #[test]
    fn centre_sums_equal_a_fresh_row_order_fold_through_changes() {
        // Values over sixteen decades, so an f64 sum rounds and its order shows; centre 8 never has rows and
        // centre 7 loses all of its rows in one round.
        let (n, d, k) = (1000, 13, 9);
        let mut rng = Rng::new(3);
        let x: Vec<f32> = (0..n * d).map(|_| rng.normal() * 10f32.powi(rng.below(17) as i32 - 8)).collect();
        let m = Matrix { data: &x, n, d };
        let w: Vec<f64> = (0..n).map(|_| 0.5 + rng.next_f64()).collect();
        for weights in [None, Some(&w[..])] {
            let ws = Weights(weights);
            let mut labels: Vec<usize> = (0..n).map(|_| rng.below(k as u32 - 1) as usize).collect();
            let mut sums = CentreSums::new(k, ws);
            let mut centers = vec![0f64; k * d];
            for round in 0..6 {
                if round > 0 {
                    // A few rows change centre (and, once, none do).
                    for _ in 0..[0, 0, 1, 5, 40, 300][round] {
                        labels[rng.below(n as u32) as usize] = rng.below(k as u32 - 2) as usize;
                    }
                    if round == 3 {
                        for l in labels.iter_mut().filter(|l| **l == 7) {
                            *l = 0;
                        }
                    }
                }
                let before = centers.clone();
                let shift = sums.update(m, &labels, &mut centers);
                let mut want_shift = 0.0;
                for j in 0..k {
                    let rows: Vec<usize> = (0..n).filter(|&i| labels[i] == j).collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let mut s = vec![0f64; d];
                    for &i in &rows {
                        for (a, &v) in s.iter_mut().zip(m.row(i)) {
                            *a += ws.of(i) * v as f64;
                        }
                    }
                    let total = ws.total(rows.iter().copied());
                    for t in 0..d {
                        let c = s[t] / total;
                        assert_eq!(c.to_bits(), centers[j * d + t].to_bits(), "round {round}, centre {j}");
                        want_shift += (c - before[j * d + t]).powi(2);
                    }
                }
                assert_eq!(shift.to_bits(), want_shift.to_bits(), "round {round}");
            }
            assert!(sums.summed < sums.plain, "later rounds resume: {} of {}", sums.summed, sums.plain);
            // The order matters on these values: a reversed fold of some centre differs in its last bits.
            let rows0: Vec<usize> = (0..n).filter(|&i| labels[i] == 0).collect();
            let fold = |it: &mut dyn Iterator<Item = &usize>| {
                it.fold(0f64, |a, &i| a + ws.of(i) * m.row(i)[0] as f64).to_bits()
            };
            assert_ne!(fold(&mut rows0.iter()), fold(&mut rows0.iter().rev()), "the values do not test the order");
        }
    }
}
