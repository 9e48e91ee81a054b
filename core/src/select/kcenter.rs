//! The CPU backend's exact k-center greedy (coreset): rows grouped by their nearest centre, a new centre
//! skipping the groups and rows it cannot improve (triangle inequality, [`super::exact::cannot_improve`]), on f32
//! features or the f16 store's packed rows; re-exported by [`super::exact`], whose module doc gives the argument.

use super::exact::cannot_improve;
use super::Matrix;
use crate::cpu::min_dist_update::sqdist_f64;
use crate::cpu::min_dist_update_f16::unpack_f16_row;
use crate::cpu::par;

/// The farthest row of a centre: (squared distance, lowest row index among the farthest).
fn farthest(rows: &[u32], mind: &[f32]) -> Option<(f32, u32)> {
    let mut best: Option<(f32, u32)> = None;
    for &i in rows {
        let v = mind[i as usize];
        if best.is_none_or(|(bv, bi)| v > bv || (v == bv && i < bi)) {
            best = Some((v, i));
        }
    }
    best
}

/// k-center greedy picks, the result of the plain scan (`min_dist_update` from each centre, the first from
/// `seeds[0]` initialising, then `argmax` of the min-distances with the lowest index on ties), with
/// triangle-inequality pruning. Returns `picks` greedy picks after the seeds, their scores (the distance to the
/// nearest centre when picked) and the number of row-to-centre distances evaluated.
pub fn kcenter(x: Matrix, seeds: &[usize], picks: usize) -> (Vec<usize>, Vec<f64>, u64) {
    let (out, scores, st) = kcenter_state(KRows::F32(x), seeds, picks, false);
    (out, scores, st.map_or(0, |s| s.evals))
}

/// [`kcenter`] on the f16 feature store (`words`: n rows of `d` features packed by
/// `cpu::min_dist_update_f16::pack_f16_rows`): each row read is half the bytes, widened to f32 on the fly, so
/// the picks are exactly [`kcenter`]'s on the f16-rounded features.
pub fn kcenter_f16(words: &[u32], n: usize, d: usize, seeds: &[usize], picks: usize) -> (Vec<usize>, Vec<f64>, u64) {
    let (out, scores, st) = kcenter_state(KRows::F16 { words, n, d }, seeds, picks, false);
    (out, scores, st.map_or(0, |s| s.evals))
}

/// The rows k-center measures: f32 features, or the f16 store widened a row at a time.
#[derive(Clone, Copy)]
enum KRows<'a> {
    F32(Matrix<'a>),
    F16 { words: &'a [u32], n: usize, d: usize },
}

impl<'a> KRows<'a> {
    fn n(&self) -> usize {
        match self {
            KRows::F32(x) => x.n,
            KRows::F16 { n, .. } => *n,
        }
    }

    fn d(&self) -> usize {
        match self {
            KRows::F32(x) => x.d,
            KRows::F16 { d, .. } => *d,
        }
    }

    /// Row `i` as f32: borrowed from the f32 features, or widened into `buf` (d values).
    fn row<'b>(&'b self, i: usize, buf: &'b mut [f32]) -> &'b [f32] {
        match self {
            KRows::F32(x) => x.row(i),
            KRows::F16 { words, d, .. } => {
                let w = d.div_ceil(2);
                unpack_f16_row(&words[i * w..(i + 1) * w], buf);
                buf
            }
        }
    }

    /// A scratch row for [`KRows::row`] (empty for f32 features, which need none).
    fn scratch(&self) -> Vec<f32> {
        match self {
            KRows::F32(_) => Vec::new(),
            KRows::F16 { d, .. } => vec![0f32; *d],
        }
    }
}

/// Every centre of a k-center greedy run (the seeds, then the picks) with the rows it covers: the count of rows
/// whose nearest centre it is (the first such centre on ties, as the scan's `min` keeps the earlier one) and the
/// largest distance among them (its radius).
pub struct Cover {
    pub centres: Vec<usize>,
    pub counts: Vec<usize>,
    pub radii: Vec<f64>,
}

/// [`kcenter`]'s picks after `seeds`, with the cover of all the centres; it stops early once every row is at
/// distance 0 from a centre (the plain scan would then repeat a covered row).
pub fn kcenter_cover(x: Matrix, seeds: &[usize], picks: usize) -> (Vec<usize>, Cover) {
    let (out, _, st) = kcenter_state(KRows::F32(x), seeds, picks, true);
    let cover = match st {
        Some(st) => Cover {
            counts: st.members.iter().map(Vec::len).collect(),
            // Widened by the f32 storage's rounding, so a radius is never below the f64 distance it stands for.
            radii: st
                .far
                .iter()
                .map(|f| f.map_or(0.0, |(v, _)| (v.max(0.0) as f64 * (1.0 + f32::EPSILON as f64)).sqrt()))
                .collect(),
            centres: st.centres,
        },
        None => Cover { centres: Vec::new(), counts: Vec::new(), radii: Vec::new() },
    };
    (out, cover)
}

fn kcenter_state(
    x: KRows<'_>,
    seeds: &[usize],
    picks: usize,
    stop_when_covered: bool,
) -> (Vec<usize>, Vec<f64>, Option<KCenter>) {
    let Some(mut st) = KCenter::start(x, seeds) else { return (Vec::new(), Vec::new(), None) };
    let (out, scores) = st.next_picks(x, picks, stop_when_covered);
    (out, scores, Some(st))
}

/// A k-center greedy run on f32 features that can be continued: [`KCenterRun::extend`] gives the next picks of
/// [`kcenter`] from the same seeds, so a run extended by b₁, then b₂ picks gives `kcenter(x, seeds, b₁ + b₂)`'s
/// picks and scores. It stops early once every row is at distance 0 from a centre (where the plain scan would
/// repeat a covered row). The rows are passed to each call (the same features every time).
pub struct KCenterRun(KCenter);

impl KCenterRun {
    /// The run from `seeds` (None without a seed).
    pub fn start(x: Matrix, seeds: &[usize]) -> Option<Self> {
        KCenter::start(KRows::F32(x), seeds).map(KCenterRun)
    }

    /// The next `picks` picks and their scores (fewer once every row is covered).
    pub fn extend(&mut self, x: Matrix, picks: usize) -> (Vec<usize>, Vec<f64>) {
        self.0.next_picks(KRows::F32(x), picks, true)
    }

    /// Rows the run was started on.
    pub fn rows(&self) -> usize {
        self.0.mind.len()
    }
}

/// The state of [`kcenter`]: per centre (in the order added) its row, its rows and its farthest row.
struct KCenter {
    mind: Vec<f32>,
    centres: Vec<usize>,
    /// The centres' rows as f32, in order (d values each).
    rows: Vec<f32>,
    members: Vec<Vec<u32>>,
    far: Vec<Option<(f32, u32)>>,
    evals: u64,
}

impl KCenter {
    /// The state after the seeds: the first measured against every row, the others added.
    fn start(x: KRows<'_>, seeds: &[usize]) -> Option<Self> {
        let n = x.n();
        let &s0 = seeds.first()?;
        let c0 = x.row(s0, &mut x.scratch()).to_vec();
        let mut mind = vec![0f32; n];
        let rows = par::rows_per_task(n, x.d(), 1 << 16);
        par::for_chunks(&mut mind, rows, |task, out| {
            let mut buf = x.scratch();
            for (r, m) in out.iter_mut().enumerate() {
                *m = sqdist_f64(x.row(task * rows + r, &mut buf), &c0) as f32;
            }
        });
        let members: Vec<Vec<u32>> = vec![(0..n as u32).collect()];
        let far = vec![farthest(&members[0], &mind)];
        let mut st = KCenter { mind, centres: vec![s0], rows: c0, members, far, evals: n as u64 };
        for &c in &seeds[1..] {
            st.add(x, c);
        }
        Some(st)
    }

    /// The next `picks` greedy picks, each added as a centre.
    fn next_picks(&mut self, x: KRows<'_>, picks: usize, stop_when_covered: bool) -> (Vec<usize>, Vec<f64>) {
        let (mut out, mut scores) = (Vec::with_capacity(picks), Vec::with_capacity(picks));
        while out.len() < picks {
            // The farthest row overall: the largest of the centres' farthest, the lowest index on ties.
            let best =
                self.far
                    .iter()
                    .flatten()
                    .copied()
                    .reduce(|a, b| if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) { b } else { a });
            let Some((v, i)) = best else { break };
            if stop_when_covered && v <= 0.0 {
                break;
            }
            out.push(i as usize);
            scores.push((v.max(0.0) as f64).sqrt());
            self.add(x, i as usize);
        }
        (out, scores)
    }

    /// Add row `p` as a centre: the rows it is nearer to than their own centre move to it.
    fn add(&mut self, x: KRows<'_>, p: usize) {
        let d = x.d();
        let cp = x.row(p, &mut x.scratch()).to_vec();
        let cp = &cp[..];
        let (centres, crow) = (&self.centres, &self.rows);
        let dc2: Vec<f64> = par::map(centres.len(), |j| sqdist_f64(cp, &crow[j * d..(j + 1) * d]));
        self.evals += centres.len() as u64;
        let open: Vec<usize> = (0..centres.len())
            .filter(|&j| self.far[j].is_some_and(|(r, _)| !cannot_improve(dc2[j], r as f64)))
            .collect();
        let (m, members) = (&self.mind, &self.members);
        let parts = par::map(open.len(), |t| {
            let j = open[t];
            let (mut keep, mut moved, mut ev) = (Vec::with_capacity(members[j].len()), Vec::new(), 0u64);
            let mut buf = x.scratch();
            for &i in &members[j] {
                let old = m[i as usize];
                if cannot_improve(dc2[j], old as f64) {
                    keep.push(i);
                    continue;
                }
                ev += 1;
                let v = sqdist_f64(x.row(i as usize, &mut buf), cp) as f32;
                if v < old {
                    moved.push((i, v));
                } else {
                    keep.push(i);
                }
            }
            (keep, moved, ev)
        });
        let mut mine = Vec::new();
        for (&j, (keep, moved, ev)) in open.iter().zip(parts) {
            self.evals += ev;
            for (i, v) in moved {
                self.mind[i as usize] = v;
                mine.push(i);
            }
            self.members[j] = keep;
            self.far[j] = farthest(&self.members[j], &self.mind);
        }
        self.far.push(farthest(&mine, &self.mind));
        self.members.push(mine);
        self.centres.push(p);
        self.rows.extend_from_slice(cp);
    }
}
