//! RepDiv (MedCAL): facility location on cosine similarity (L2-normalised features) for ⌊0.7·B⌋ picks, each the
//! row with the largest gain Σⱼ max(0, s(c, j) − mⱼ) (mⱼ: row j's best similarity to a labelled or picked row,
//! from 0), then the candidate farthest (1 − cos) from *some* anchor (max over anchors, as MedCAL codes it), or
//! from *all* (max-min) with `repdiv-maxmin`.
//!
//! Three paths, one result: the plain f64 reference ([`repdiv_plain`], every gain over every row), the scans on a
//! GPU ([`super::scan::repdiv`]: lazy greedy on f32 tiles, equal up to float ties), and on the CPU backend
//! [`repdiv_fast`], the plain reference's picks and scores bit for bit: lazy greedy (gains only shrink as rows
//! are picked, in floating point too: each term is monotone in mⱼ and the sum keeps its order, so a candidate
//! whose fresh gain tops every other's bound is the plain pick, the lower row on ties), its first bounds from one
//! f32 GEMM pass with rigorous error brackets, and in every later pass the same brackets skip the terms that are
//! exactly 0 in the plain sum (a similarity whose bracket tops out below mⱼ), so the plain f64 `dot` is computed
//! only for the pairs that can count.

use std::collections::BinaryHeap;

use super::scan::{self, pop_stale, Bound};
use super::strategies::{dot, empty, l2_normalize};
use super::{argmax, Matrix, SelectInput, Selection};
use crate::cpu::par;
use crate::Result;

pub async fn repdiv(input: &SelectInput<'_>, maxmin: bool) -> Result<Selection> {
    let xn = l2_normalize(input.x);
    let x = Matrix { data: &xn, n: input.x.n, d: input.x.d };
    match input.scans {
        Some(be) if be.is_gpu() => scan::repdiv(be, x, input.labeled, input.budget, maxmin).await,
        Some(_) => Ok(repdiv_fast(x, input.labeled, input.budget, maxmin)),
        None => Ok(repdiv_plain(x, input.labeled, input.budget, maxmin)),
    }
}

/// The diversity of row `c` from anchor similarity `s`, folded into `v` (max of 1 − s, or min with `maxmin`).
fn fold_div(v: f64, s: f64, maxmin: bool) -> f64 {
    let d = 1.0 - s;
    if maxmin {
        v.min(d)
    } else {
        v.max(d)
    }
}

/// The plain reference on L2-normalised rows `x`.
pub fn repdiv_plain(x: Matrix, labeled: &[usize], budget: usize, maxmin: bool) -> Selection {
    let n = x.n;
    let s = |i: usize, j: usize| dot(x.row(i), x.row(j));
    let r = (0.7 * budget as f64).floor() as usize;
    let mut chosen = vec![false; n];
    let mut max_sim = vec![0f64; n];
    for &l in labeled {
        chosen[l] = true;
        for (j, m) in max_sim.iter_mut().enumerate() {
            *m = m.max(s(l, j));
        }
    }
    let mut sel = empty();
    for _ in 0..r {
        let gains =
            (0..n).map(
                |c| {
                    if chosen[c] {
                        f64::NAN
                    } else {
                        (0..n).fold(0.0, |g, j| g + (s(c, j) - max_sim[j]).max(0.0))
                    }
                },
            );
        let Some((c, g)) = argmax(gains) else { break };
        chosen[c] = true;
        sel.picks.push(c);
        sel.scores.push(g);
        for (j, m) in max_sim.iter_mut().enumerate() {
            *m = m.max(s(c, j));
        }
    }
    let mut div: Vec<f64> = vec![if maxmin { f64::INFINITY } else { f64::NEG_INFINITY }; n];
    for &a in labeled.iter().chain(&sel.picks) {
        for (c, v) in div.iter_mut().enumerate() {
            *v = fold_div(*v, s(c, a), maxmin);
        }
    }
    while sel.picks.len() < budget {
        let Some((c, v)) = argmax((0..n).map(|c| if chosen[c] { f64::NAN } else { div[c] })) else { break };
        chosen[c] = true;
        sel.picks.push(c);
        sel.scores.push(v);
        for (j, val) in div.iter_mut().enumerate() {
            *val = fold_div(*val, s(j, c), maxmin);
        }
    }
    sel
}

/// f32 GEMM similarities with a bracket that covers the plain f64 value: |fl32(a·b) − a·b| ≤ γ₃₂‖a‖‖b‖ and
/// the plain sum's own error ≤ γ₆₄‖a‖‖b‖ (any summation order); `est + err(j)` is at least the plain `dot`.
struct Filter<'a> {
    x: Matrix<'a>,
    /// The rows packed once for the GEMM (every pass multiplies against all of them).
    packed: crate::cpu::sgemm::PackedWeight,
    norm: Vec<f64>,
    g: f64,
}

impl<'a> Filter<'a> {
    fn new(x: Matrix<'a>) -> Self {
        let norm = par::map(x.n, |i| dot(x.row(i), x.row(i)).sqrt());
        let (dd, u32_, u64_) = (x.d as f64 + 2.0, f32::EPSILON as f64 / 2.0, f64::EPSILON / 2.0);
        let g = 1.02 * (dd * u32_ / (1.0 - dd * u32_) + dd * u64_ / (1.0 - dd * u64_));
        Filter { x, packed: crate::cpu::sgemm::PackedWeight::new(x.data.to_vec()), norm, g }
    }

    /// `f(c, est, top)` for each row c of `rows` (in parallel, blocks of 256 rows through the GEMM), where
    /// `top(j)` = est[j] + the bracket: never below the plain s(c, j).
    fn each<R: Send>(&self, rows: &[usize], f: impl Fn(usize, &dyn Fn(usize) -> f64) -> R + Sync + Send) -> Vec<R> {
        let (n, d) = (self.x.n, self.x.d);
        let mut out = Vec::with_capacity(rows.len());
        for block in rows.chunks(256) {
            let a: Vec<f32> = block.iter().flat_map(|&c| self.x.row(c).iter().copied()).collect();
            let est = crate::cpu::matmul::matmul_weight(&a, &self.packed, None, block.len(), n, d, true, |_| {});
            out.extend(par::map(block.len(), |r| {
                let c = block[r];
                let nc = self.norm[c] * self.g;
                let row = &est[r * n..(r + 1) * n];
                f(c, &|j| row[j] as f64 + nc * self.norm[j] + 1e-300)
            }));
        }
        out
    }

    /// The plain gain Σⱼ max(0, s(c, j) − mⱼ) in row order; terms whose bracket tops out below mⱼ are exactly 0
    /// in the plain sum too and are skipped.
    fn gain(&self, c: usize, top: &dyn Fn(usize) -> f64, m: &[f64]) -> f64 {
        let xc = self.x.row(c);
        m.iter()
            .enumerate()
            .fold(0.0, |g, (j, &mj)| if top(j) < mj { g } else { g + (dot(xc, self.x.row(j)) - mj).max(0.0) })
    }
}

/// The plain similarities of rows `rows` to every row ([rows, n], bit for bit `dot`).
fn sims(x: Matrix, rows: &[usize]) -> Vec<f64> {
    let q: Vec<f32> = rows.iter().flat_map(|&c| x.row(c).iter().copied()).collect();
    crate::cpu::min_dist_update::dots_f64(&q, rows.len(), x.data, x.n, x.d)
}

/// [`repdiv_plain`]'s picks and scores, accelerated (see the module).
pub fn repdiv_fast(x: Matrix, labeled: &[usize], budget: usize, maxmin: bool) -> Selection {
    const BATCH: usize = 14;
    let n = x.n;
    let f = Filter::new(x);
    let r = (0.7 * budget as f64).floor() as usize;
    let mut chosen = vec![false; n];
    let mut max_sim = vec![0f64; n];
    // Raise mⱼ to s(c, j) where the bracket says it may be higher.
    let raise = |c: usize, m: &mut Vec<f64>| {
        let xc = x.row(c);
        let mm: &Vec<f64> = m;
        let up = f.each(&[c], |_, top| {
            (0..n).filter(|&j| top(j) >= mm[j]).map(|j| (j, dot(xc, x.row(j)))).collect::<Vec<_>>()
        });
        for (j, s) in up.into_iter().flatten() {
            m[j] = m[j].max(s);
        }
    };
    for &l in labeled {
        chosen[l] = true;
        raise(l, &mut max_sim);
    }
    let open: Vec<usize> = (0..n).filter(|&c| !chosen[c]).collect();
    // First bounds: every term at its bracket's top (≥ the plain term, summed in the same order).
    let m = &max_sim;
    let ub = f.each(&open, |_, top| (0..n).fold(0.0, |g, j| g + (top(j) - m[j]).max(0.0)));
    let mut heap: BinaryHeap<Bound> =
        open.iter().zip(ub).map(|(&idx, ub)| Bound { ub, idx, stamp: usize::MAX }).collect();
    let mut sel = empty();
    let mut evaluations = 0usize;
    while sel.picks.len() < r {
        let step = sel.picks.len();
        let Some(top) = heap.peek().copied() else { break };
        if top.stamp == step {
            heap.pop();
            chosen[top.idx] = true;
            sel.picks.push(top.idx);
            sel.scores.push(top.ub);
            raise(top.idx, &mut max_sim);
            continue;
        }
        // Re-evaluate the stale bounds at the top of the heap: the plain gains.
        let (stale, fresh) = pop_stale(&mut heap, step, BATCH);
        let batch: Vec<usize> = stale.iter().map(|b| b.idx).collect();
        let m = &max_sim;
        let gains = f.each(&batch, |c, top| f.gain(c, top, m));
        evaluations += batch.len();
        heap.extend(batch.iter().zip(gains).map(|(&idx, ub)| Bound { ub, idx, stamp: step }));
        heap.extend(fresh);
    }
    sel.notes.push(format!(
        "lazy greedy: {evaluations} gain evaluations for {} picks (plain greedy: {})",
        sel.picks.len(),
        sel.picks.len() * n
    ));
    let mut div: Vec<f64> = vec![if maxmin { f64::INFINITY } else { f64::NEG_INFINITY }; n];
    let fold = |a: usize, div: &mut Vec<f64>| {
        for (v, s) in div.iter_mut().zip(sims(x, &[a])) {
            *v = fold_div(*v, s, maxmin);
        }
    };
    for &a in labeled.iter().chain(&sel.picks) {
        fold(a, &mut div);
    }
    while sel.picks.len() < budget {
        let Some((c, v)) = argmax((0..n).map(|c| if chosen[c] { f64::NAN } else { div[c] })) else { break };
        chosen[c] = true;
        sel.picks.push(c);
        sel.scores.push(v);
        fold(c, &mut div);
    }
    sel
}
