//! TypiClust's typicality on the CPU backend, exact and computed once per cluster: the plain reference
//! (`typiclust-knn` without scans) measures, at every visit of a cluster, every member against every other
//! member (f64 sums) and keeps the k smallest. Here each member's nearest cluster-mates are found once, when its
//! cluster is first visited: an f32 GEMM of the members against each other brackets every plain value, and only
//! the pairs the bracket cannot rule out of a member's `k + SPARE` nearest are measured. Later visits drop the
//! rows picked meanwhile from those lists; a list left with fewer than k rows (more than `SPARE` of its nearest
//! were picked) is measured again in full. The values, their order and so every typicality and pick are the
//! plain reference's, bit for bit.

use std::collections::HashMap;

use super::Matrix;
use crate::cpu::min_dist_update::sqdist_f64;
use crate::cpu::par;

/// Neighbours kept beyond k, for the rows later visits remove.
const SPARE: usize = 6;

/// Members whose dot products are held as one m × m matrix at most (64 MiB).
const GRAM_MAX: usize = 4096;

/// The dot products of the rows of `a` [m, d] with each other, [m, m]: each block of 256 rows against the rows from
/// its own first one on (the blocks on and above the diagonal, half the plain GEMM), the rest mirrored in 64 × 64
/// tiles. A mirrored value is the f32 product of the same pair, so the brackets that use it hold as before.
fn gram(a: &[f32], m: usize, d: usize) -> Vec<f32> {
    const B: usize = 256;
    const T: usize = 64;
    let mut g = vec![0f32; m * m];
    for r0 in (0..m).step_by(B) {
        let r1 = (r0 + B).min(m);
        let w = m - r0;
        let blk = crate::cpu::matmul::matmul(&a[r0 * d..r1 * d], &a[r0 * d..m * d], None, r1 - r0, w, d, true);
        for (rr, src) in blk.chunks_exact(w).enumerate() {
            g[(r0 + rr) * m + r0..(r0 + rr + 1) * m].copy_from_slice(src);
        }
    }
    // Row r's columns before its block's first row come from row c's computed part (c's block is earlier).
    for rt in (0..m).step_by(T) {
        for ct in (0..rt / B * B).step_by(T) {
            for r in rt..(rt + T).min(m) {
                for c in ct..(ct + T).min(r / B * B) {
                    g[r * m + c] = g[c * m + r];
                }
            }
        }
    }
    g
}

/// One cluster's members when first visited (row order) and each one's nearest cluster-mates: (plain squared
/// distance, row), ascending, and whether the list holds every other member.
struct Lists {
    rows: Vec<usize>,
    near: Vec<(Vec<(f64, u32)>, bool)>,
}

/// The typicality of the members of each visited cluster, from lists kept between visits.
pub struct Typicality<'a> {
    x: Matrix<'a>,
    n2: Vec<f64>,
    clusters: HashMap<usize, Lists>,
    /// Pairs measured exactly, and what the plain reference measures.
    pub exact: u64,
    pub plain: u64,
}

impl<'a> Typicality<'a> {
    pub fn new(x: Matrix<'a>) -> Self {
        let n2 = (0..x.n).map(|i| x.row(i).iter().map(|&v| v as f64 * v as f64).sum()).collect();
        Typicality { x, n2, clusters: HashMap::new(), exact: 0, plain: 0 }
    }

    /// Every plain squared distance from `i` to the rows `others` but itself, ascending (then by row).
    fn all(&self, i: usize, others: &[usize]) -> Vec<(f64, u32)> {
        let mut v: Vec<(f64, u32)> =
            others.iter().filter(|&&j| j != i).map(|&j| (sqdist_f64(self.x.row(i), self.x.row(j)), j as u32)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        v
    }

    /// Each member's `keep` nearest cluster-mates (all of them when the cluster is small), filtered by an f32
    /// GEMM: est ± err brackets the plain value Σ(xᵢ − xⱼ)² (the GEMM's error on the norm expansion, and the
    /// plain f64 sum's own), so a pair is measured only when its lower end reaches the keep-th smallest upper end.
    fn lists(&mut self, rows: &[usize], keep: usize) -> Vec<(Vec<(f64, u32)>, bool)> {
        let (m, d) = (rows.len(), self.x.d);
        if m <= 2 * keep + 2 {
            self.exact += (m * m.saturating_sub(1)) as u64;
            return rows.iter().map(|&i| (self.all(i, rows), true)).collect();
        }
        let a: Vec<f32> = rows.iter().flat_map(|&i| self.x.row(i).iter().copied()).collect();
        let (u, u64_) = (f32::EPSILON as f64 / 2.0, f64::EPSILON / 2.0);
        let g = 2.02 * (d + 2) as f64 * u / (1.0 - (d + 2) as f64 * u);
        // The norm expansion's and the plain direct sum's own f64 rounding, relative to ‖xᵢ‖² + ‖xⱼ‖².
        let h = 4.0 * (d + 2) as f64 * u64_ + 1e-12;
        let n2 = &self.n2;
        // The members' squared norms and norms, once per cluster (each pair's bracket reads both ends').
        let m2: Vec<f64> = rows.iter().map(|&i| n2[i]).collect();
        let mn: Vec<f64> = m2.iter().map(|v| v.sqrt()).collect();
        let mut out = Vec::with_capacity(m);
        // Up to GRAM_MAX members, their m × m dot products from half the GEMM; larger clusters in blocks of 256
        // members against all of them, so no cluster needs more than a GRAM_MAX² matrix.
        let full = (m <= GRAM_MAX).then(|| gram(&a, m, d));
        for r0 in (0..m).step_by(256) {
            let r1 = (r0 + 256).min(m);
            let blk;
            let dots: &[f32] = match &full {
                Some(f) => &f[r0 * m..r1 * m],
                None => {
                    blk = crate::cpu::matmul::matmul(&a[r0 * d..r1 * d], &a, None, r1 - r0, m, d, true);
                    &blk
                }
            };
            out.extend(par::map(r1 - r0, |rr| {
                let r = r0 + rr;
                let (ni2, ni) = (m2[r], mn[r]);
                // The members' packed rows (the same values as the pool's, read from one block of memory).
                let ai = &a[r * d..(r + 1) * d];
                // Each pair's bracket once: its lower ends kept, its upper ends for the keep-th smallest.
                let dr = &dots[rr * m..(rr + 1) * m];
                let mut lows = Vec::with_capacity(m);
                let mut ups = Vec::with_capacity(m - 1);
                for t in 0..m {
                    let est = ni2 + m2[t] - 2.0 * dr[t] as f64;
                    let err = g * ni * mn[t] + h * (ni2 + m2[t]);
                    lows.push(est - err);
                    if t != r {
                        ups.push(est + err);
                    }
                }
                let (_, kth, _) = ups.select_nth_unstable_by(keep - 1, |a, b| a.total_cmp(b));
                let thr = *kth;
                let mut near: Vec<(f64, u32)> = (0..m)
                    .filter(|&t| t != r && lows[t] <= thr)
                    .map(|t| (sqdist_f64(ai, &a[t * d..(t + 1) * d]), rows[t] as u32))
                    .collect();
                near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let measured = near.len() as u64;
                near.truncate(keep);
                (near, measured)
            }));
        }
        out.into_iter()
            .map(|(near, ev)| {
                self.exact += ev;
                (near, false)
            })
            .collect()
    }

    /// Typicality 1 / (mean of the k = min(20, |idx|/2) smallest squared distances to the other rows of `idx` +
    /// 1e-5) for each row of `idx` (the current members of `cluster`, row order), as the plain reference.
    pub fn of(&mut self, cluster: usize, idx: &[usize]) -> Vec<f64> {
        let kk = (idx.len() / 2).clamp(1, 20);
        self.plain += (idx.len() * idx.len().saturating_sub(1)) as u64;
        if !self.clusters.contains_key(&cluster) {
            let near = self.lists(idx, kk + SPARE);
            self.clusters.insert(cluster, Lists { rows: idx.to_vec(), near });
        }
        let members: std::collections::HashSet<u32> = idx.iter().map(|&i| i as u32).collect();
        let mut typ = Vec::with_capacity(idx.len());
        for &i in idx {
            let lists = &self.clusters[&cluster];
            let at = lists.rows.binary_search(&i).ok();
            let (list, complete) = match at {
                Some(p) => (&lists.near[p].0, lists.near[p].1),
                None => (&Vec::new(), false),
            };
            // The kept rows still in the cluster, ascending: the plain smallest when there are enough of them
            // (every row not kept is at least as far as the last kept).
            let valid: Vec<f64> = list.iter().filter(|(_, j)| members.contains(j)).map(|&(v, _)| v).collect();
            let ds: Vec<f64> = if complete || valid.len() >= kk {
                valid
            } else {
                self.exact += idx.len() as u64;
                self.all(i, idx).into_iter().map(|p| p.0).collect()
            };
            let count = (idx.len() - 1).min(kk);
            let m = if idx.len() <= 1 { 0.0 } else { ds.iter().take(kk).sum::<f64>() / count as f64 };
            typ.push(1.0 / (m + 1e-5));
        }
        typ
    }
}
