//! Exact pair scans on the CPU backend for ProbCover: the plain reference's distances
//! `dist(i, j)` = √max(‖xᵢ‖² + ‖xⱼ‖² − 2 xᵢ·xⱼ, 0) (f64 sums, [`super::strategies::dist`]) filtered by an f32 GEMM
//! whose rigorous bracket settles almost every comparison, so only the pairs it leaves open are measured.
//!
//! - [`other_label_scan`] (MedCAL's δ needs each row's nearest row of another label and the largest distance of
//!   any pair) visits each unordered pair once: blocks of rows against the column tiles at and after the block,
//!   each product serving both its row and its column. `dist(i, j)` and `dist(j, i)` are the same bits, so the
//!   minima and maxima equal the plain scan's.
//! - [`delta_graph_clustered`] (the δ-graph) measures a row only against the clusters that can hold a row within
//!   δ of it: ‖xᵢ − xⱼ‖ ≥ ‖xᵢ − c_B‖ − r_B for every row j of cluster B (c_B its centre, r_B its farthest row),
//!   with the row-to-centre distances from an f32 GEMM and their bracket. [`delta_graph`] is the unpruned scan.

use super::kmeans::Clustering;
use super::Matrix;
use crate::cpu::par;

/// The f32 GEMM filter for the plain reference's distances `dist(i, j)` = √max(‖xᵢ‖² + ‖xⱼ‖² − 2 xᵢ·xⱼ, 0) (f64
/// sums in row order, [`super::strategies::dist`]): per block of rows, the squared-distance estimates from an f32
/// GEMM and a bound that brackets the plain value itself (the f32 product's error and the plain f64 sums' own),
/// so a pair is measured exactly only when the bracket does not settle its comparison.
struct PairFilter<'a> {
    x: Matrix<'a>,
    n2: Vec<f64>,
    norm: Vec<f64>,
    /// The same in f32, for the vectorised bracket of [`PairFilter::block`].
    n2_32: Vec<f32>,
    norm_32: Vec<f32>,
    /// Error factor on ‖xᵢ‖‖xⱼ‖ and on ‖xᵢ‖² + ‖xⱼ‖².
    g: f64,
    h: f64,
}

impl<'a> PairFilter<'a> {
    const ROWS: usize = 256;

    fn new(x: Matrix<'a>) -> Self {
        let n2 = super::strategies::norms2(x);
        let norm: Vec<f64> = n2.iter().map(|v| v.sqrt()).collect();
        let d = x.d as f64;
        let (u32_, u64_) = (f32::EPSILON as f64 / 2.0, f64::EPSILON / 2.0);
        let (g32, g64) = ((d + 2.0) * u32_ / (1.0 - (d + 2.0) * u32_), (d + 2.0) * u64_ / (1.0 - (d + 2.0) * u64_));
        let (n2_32, norm_32) = (n2.iter().map(|&v| v as f32).collect(), norm.iter().map(|&v: &f64| v as f32).collect());
        PairFilter { x, n2, norm, n2_32, norm_32, g: 2.02 * (g32 + g64), h: 1.01 * g64 + 1e-13 }
    }

    /// The plain value of the pair.
    fn exact(&self, i: usize, j: usize) -> f64 {
        super::strategies::dist(self.x, &self.n2, i, j)
    }

    /// `f(i, est, err)` for every row i (in parallel within each block of rows), where `est(j)` ± `err(j)`
    /// brackets the plain squared distance (before its clip at 0) to row j; results in row order.
    fn rows<R: Send>(
        &self,
        f: impl Fn(usize, &dyn Fn(usize) -> f64, &dyn Fn(usize) -> f64) -> R + Sync + Send,
    ) -> Vec<R> {
        let (n, d) = (self.x.n, self.x.d);
        let packed = crate::cpu::sgemm::PackedWeight::new(self.x.data.to_vec());
        let mut out = Vec::with_capacity(n);
        for r0 in (0..n).step_by(Self::ROWS) {
            let r1 = (r0 + Self::ROWS).min(n);
            let a = &self.x.data[r0 * d..r1 * d];
            let dots = crate::cpu::matmul::matmul_weight(a, &packed, None, r1 - r0, n, d, true, |_| {});
            out.extend(par::map(r1 - r0, |r| {
                let i = r0 + r;
                let row = &dots[r * n..(r + 1) * n];
                let est = |j: usize| self.n2[i] + self.n2[j] - 2.0 * row[j] as f64;
                let err = |j: usize| self.g * self.norm[i] * self.norm[j] + self.h * (self.n2[i] + self.n2[j]);
                f(i, &est, &err)
            }));
        }
        out
    }
}

/// Neighbour lists in row order as CSR: offsets [n + 1] and the concatenated lists.
pub(super) fn csr(lists: Vec<Vec<u32>>) -> (Vec<usize>, Vec<u32>) {
    let mut offsets = Vec::with_capacity(lists.len() + 1);
    offsets.push(0usize);
    let mut edges = Vec::with_capacity(lists.iter().map(Vec::len).sum());
    for l in lists {
        edges.extend(l);
        offsets.push(edges.len());
    }
    (offsets, edges)
}

/// Column tiles of the symmetric scan: each packed once for the GEMM.
const TILE: usize = 4096;

impl PairFilter<'_> {
    /// The bracket of the plain squared distance of (i, j) from their f32 product: (estimate, error).
    #[inline]
    fn bracket(&self, i: usize, j: usize, dot: f32) -> (f64, f64) {
        let est = self.n2[i] + self.n2[j] - 2.0 * dot as f64;
        (est, self.g * self.norm[i] * self.norm[j] + self.h * (self.n2[i] + self.n2[j]))
    }

    /// Whether the plain `dist(i, j)` ≤ δ, given its squared bracket `e` ± `r` and δ² widened to [lo, hi]:
    /// measured exactly (counted in `ev`) only when the bracket straddles δ².
    #[allow(clippy::too_many_arguments)] // one pair's bracket and the test's bounds
    fn within(&self, i: usize, j: usize, e: f64, r: f64, delta: f64, lo: f64, hi: f64, ev: &mut u64) -> bool {
        if e - r > hi {
            return false;
        }
        e + r < lo || {
            *ev += 1;
            self.exact(i, j) <= delta
        }
    }

    /// `visit(r0, r1, c0, c1, dots)` for every block of rows [r0, r1) and every column tile [c0, c1) that ends
    /// after r0, with the f32 products `dots` ([r1 − r0, c1 − c0]). Every unordered pair appears at least once,
    /// as (row, column) or (column, row).
    fn upper_tiles(&self, mut visit: impl FnMut(usize, usize, usize, usize, &[f32])) {
        let (n, d) = (self.x.n, self.x.d);
        let tiles: Vec<(usize, crate::cpu::sgemm::PackedWeight)> = (0..n)
            .step_by(TILE)
            .map(|c0| (c0, crate::cpu::sgemm::PackedWeight::new(self.x.data[c0 * d..(c0 + TILE).min(n) * d].to_vec())))
            .collect();
        for r0 in (0..n).step_by(Self::ROWS) {
            let r1 = (r0 + Self::ROWS).min(n);
            let a = &self.x.data[r0 * d..r1 * d];
            for (c0, w) in tiles.iter().filter(|(c0, _)| c0 + TILE > r0) {
                let c1 = (c0 + TILE).min(n);
                let dots = crate::cpu::matmul::matmul_weight(a, w, None, r1 - r0, c1 - c0, d, true, |_| {});
                visit(r0, r1, *c0, c1, &dots);
            }
        }
    }
}

/// [`super::probcover::probcover_delta`]'s scan, the same values: per row the plain distance to the nearest row
/// of another label (∞ when none), and the largest plain distance of any pair; returns (other, max) and the
/// number of pairs measured exactly. Each unordered pair's product is computed once and serves both rows; a
/// line measures exactly only the pairs its bracket cannot settle against the line's own bounds and the best
/// values found so far (exact values of real pairs, so the nearest and the farthest are never skipped).
pub fn other_label_scan(x: Matrix, labels: &[usize]) -> (Vec<f64>, f64, u64) {
    let pf = PairFilter::new(x);
    let mut other = vec![f64::INFINITY; x.n];
    let (mut far, mut evals) = (0f64, 0u64);
    let labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    pf.upper_tiles(|r0, r1, c0, c1, dots| {
        let (o, f, e) = pf.block(&labels, r0..r1, c0..c1, dots, &other, far);
        for (i, v) in o {
            other[i] = other[i].min(v);
        }
        far = far.max(f);
        evals += e;
    });
    (other, far, evals)
}

/// Column chunk of one task in [`PairFilter::block`].
const CHUNK: usize = 512;

impl PairFilter<'_> {
    /// One block of products of [`other_label_scan`]: rows `rs` against columns `cs`. First each row's and each
    /// column's smallest upper end over other-label pairs (capped by the best distance already known, `other`)
    /// and the block's largest lower end (floored by the largest distance known, `far`); then only the pairs
    /// whose bracket reaches past those are measured. Returns the (row, distance) minima found for rows and
    /// columns, the largest distance measured and the count.
    fn block(
        &self,
        labels: &[u32],
        rs: std::ops::Range<usize>,
        cs: std::ops::Range<usize>,
        dots: &[f32],
        other: &[f64],
        far: f64,
    ) -> (Vec<(usize, f64)>, f64, u64) {
        let (w, r0, c0) = (cs.len(), rs.start, cs.start);
        let chunks = w.div_ceil(CHUNK);
        let span = |q: usize| q * CHUNK..((q + 1) * CHUNK).min(w);
        // The bracket in f32 (16 lanes): the f32 rounding of the norms and of the sum moves the estimate by at
        // most 8u(‖xᵢ‖² + ‖xⱼ‖²) (2|xᵢ·xⱼ| ≤ ‖xᵢ‖² + ‖xⱼ‖²), far inside the 2·10⁻⁶ added to the error factor.
        let (g, h) = (self.g as f32, (self.h + 2e-6) as f32);
        let (n2, nm) = (&self.n2_32, &self.norm_32);
        // Each row segment's lower and upper ends in small buffers (vectorised loops); an upper end of a
        // same-label pair is +∞ for the nearest-other-label bounds.
        let ends =
            |i: usize, sp: &std::ops::Range<usize>, row: &[f32], lo: &mut [f32], hi: &mut [f32], up: &mut [f32]| {
                let (n2i, ni, li) = (n2[i], nm[i], labels[i]);
                let cols = c0 + sp.start..c0 + sp.end;
                let (n2j, nmj, lj) = (&n2[cols.clone()], &nm[cols.clone()], &labels[cols]);
                for t in 0..row.len() {
                    let e = n2i + n2j[t] - 2.0 * row[t];
                    let er = g * ni * nmj[t] + h * (n2i + n2j[t]);
                    lo[t] = e - er;
                    hi[t] = e + er;
                    up[t] = if lj[t] != li { e + er } else { f32::INFINITY };
                }
            };
        // Pass 1: per row and column the smallest upper end of an other-label pair, and the largest lower end.
        let p1 = par::map(chunks, |q| {
            let sp = span(q);
            let mut ctop = vec![f32::INFINITY; sp.len()];
            let mut rtop = vec![f32::INFINITY; rs.len()];
            let mut bmax = f32::NEG_INFINITY;
            let (mut lo, mut hi, mut up) = (vec![0f32; sp.len()], vec![0f32; sp.len()], vec![0f32; sp.len()]);
            for (r, i) in rs.clone().enumerate() {
                ends(i, &sp, &dots[r * w + sp.start..r * w + sp.end], &mut lo, &mut hi, &mut up);
                let mut rt = f32::INFINITY;
                for t in 0..sp.len() {
                    rt = rt.min(up[t]);
                    ctop[t] = ctop[t].min(up[t]);
                    bmax = bmax.max(lo[t]);
                }
                rtop[r] = rt;
            }
            (rtop, ctop, bmax)
        });
        // The bounds already known, rounded outwards into f32.
        let sq = |v: f64| (v * v * (1.0 + 1e-6)) as f32;
        let mut rtop: Vec<f32> = rs.clone().map(|i| sq(other[i])).collect();
        let mut ctop: Vec<f32> = cs.clone().map(|j| sq(other[j])).collect();
        let mut bottom = (far * far * (1.0 - 1e-6)) as f32;
        for (q, (rt, ct, bm)) in p1.into_iter().enumerate() {
            for (a, b) in rtop.iter_mut().zip(rt) {
                *a = a.min(b);
            }
            for (a, b) in ctop[span(q)].iter_mut().zip(ct) {
                *a = a.min(b);
            }
            bottom = bottom.max(bm);
        }
        // Pass 2: measure the pairs the bracket leaves open against those bounds (a vectorised count per row
        // segment first; the segment is walked only when it holds one). An upper end of +∞ marks a same-label
        // pair, never near.
        let (rtop, ctop) = (&rtop, &ctop);
        let p2 = par::map(chunks, |q| {
            let sp = span(q);
            let (mut found, mut fmax, mut ev) = (Vec::new(), 0f64, 0u64);
            let (mut lo, mut hi, mut up) = (vec![0f32; sp.len()], vec![0f32; sp.len()], vec![0f32; sp.len()]);
            let ct = &ctop[sp.clone()];
            for (r, i) in rs.clone().enumerate() {
                ends(i, &sp, &dots[r * w + sp.start..r * w + sp.end], &mut lo, &mut hi, &mut up);
                let rt = rtop[r];
                let hit = |t: usize| {
                    let diff = up[t] != f32::INFINITY;
                    (diff && (lo[t] <= rt || lo[t] <= ct[t])) || hi[t] >= bottom
                };
                // Counted without branches first: most segments hold no pair to measure.
                if (0..sp.len()).fold(0usize, |a, t| a + hit(t) as usize) == 0 {
                    continue;
                }
                for t in 0..sp.len() {
                    if !hit(t) {
                        continue;
                    }
                    let j = c0 + sp.start + t;
                    let diff = up[t] != f32::INFINITY;
                    ev += 1;
                    let v = self.exact(i, j);
                    fmax = fmax.max(v);
                    if diff && lo[t] <= rt {
                        found.push((i, v));
                    }
                    if diff && lo[t] <= ct[t] {
                        found.push((j, v));
                    }
                }
            }
            (found, fmax, ev)
        });
        let (mut found, mut fmax, mut ev) = (Vec::new(), far, 0u64);
        for (f, m, e) in p2 {
            found.extend(f);
            fmax = fmax.max(m);
            ev += e;
        }
        let _ = r0;
        (found, fmax, ev)
    }
}

/// [`super::probcover::probcover_delta`] (MedCAL's δ) from [`other_label_scan`], and the pairs measured exactly.
pub fn probcover_delta(x: Matrix, labels: &[usize]) -> (f64, u64) {
    let (other, maxd, evals) = other_label_scan(x, labels);
    (super::medcal_delta(maxd, x.n, |delta| other.iter().filter(|&&o| delta < o).count()), evals)
}

/// The plain δ-graph {(i, j) : dist(i, j) ≤ δ} in CSR form (sorted neighbour lists), and the pairs measured
/// exactly: those whose bracket straddles δ².
pub fn delta_graph(x: Matrix, delta: f64) -> (Vec<usize>, Vec<u32>, u64) {
    let pf = PairFilter::new(x);
    let r2 = delta * delta;
    let (lo, hi) = (r2 * (1.0 - 1e-9), r2 * (1.0 + 1e-9));
    let lists = pf.rows(|i, est, err| {
        let (mut out, mut ev) = (Vec::new(), 0u64);
        for j in 0..x.n {
            if pf.within(i, j, est(j), err(j), delta, lo, hi, &mut ev) {
                out.push(j as u32);
            }
        }
        (out, ev)
    });
    let evals = lists.iter().map(|l| l.1).sum();
    let (offsets, edges) = csr(lists.into_iter().map(|l| l.0).collect());
    (offsets, edges, evals)
}

/// [`delta_graph`]'s result (the plain δ-graph, CSR with sorted neighbour lists, and the pairs measured exactly),
/// each row measured only against the clusters of `c` that can hold a row within δ of it: for row j of cluster
/// B, ‖xᵢ − xⱼ‖ ≥ ‖xᵢ − c_B‖ − r_B, with ‖xᵢ − c_B‖ bracketed from an f32 GEMM against the centres rounded to
/// f32 (and the rounding's shift), r_B the farthest member's f64 distance. A cluster is skipped only when that
/// bound clears δ by a margin far above the plain sums' rounding. Returns also the pairs the GEMMs covered.
pub fn delta_graph_clustered(x: Matrix, delta: f64, c: &Clustering) -> (Vec<usize>, Vec<u32>, u64, u64) {
    use crate::cpu::min_dist_update::sqdist_f64c;
    let (n, d, k) = (x.n, x.d, c.k);
    let pf = PairFilter::new(x);
    let mem = super::strategies::members(&c.labels, k);
    let centre = |b: usize| &c.centers[b * d..(b + 1) * d];
    // Each cluster's farthest member and largest squared norm.
    let radius: Vec<(f64, f64)> = par::map(k, |b| {
        mem[b].iter().fold((0f64, 0f64), |(r, m), &j| {
            (r.max(sqdist_f64c(x.row(j), centre(b)).sqrt() * (1.0 + 1e-9)), m.max(pf.n2[j]))
        })
    });
    let c32: Vec<f32> = c.centers.iter().map(|&v| v as f32).collect();
    let cn2: Vec<f64> = (0..k).map(|b| c32[b * d..(b + 1) * d].iter().map(|&v| v as f64 * v as f64).sum()).collect();
    let shift: Vec<f64> = (0..k)
        .map(|b| {
            let s: f64 = centre(b).iter().zip(&c32[b * d..(b + 1) * d]).map(|(&a, &r)| (a - r as f64).powi(2)).sum();
            s.sqrt() * (1.0 + 1e-9)
        })
        .collect();
    let (r2, margin) = (delta * delta, |i: usize, b: usize| 1e-6 * delta * delta + 1e-9 * (pf.n2[i] + radius[b].1));
    // Per row, the clusters that cannot be ruled out (from the rows' products with the centres).
    let mut open: Vec<Vec<u32>> = Vec::with_capacity(n);
    for r0 in (0..n).step_by(PairFilter::ROWS * 8) {
        let r1 = (r0 + PairFilter::ROWS * 8).min(n);
        let dots = crate::cpu::matmul::matmul(&x.data[r0 * d..r1 * d], &c32, None, r1 - r0, k, d, true);
        open.extend(par::map(r1 - r0, |r| {
            let i = r0 + r;
            (0..k as u32)
                .filter(|&b| {
                    let b = b as usize;
                    let est = pf.n2[i] + cn2[b] - 2.0 * dots[r * k + b] as f64;
                    let err = pf.g * pf.norm[i] * cn2[b].sqrt() + pf.h * (pf.n2[i] + cn2[b]);
                    let lb = ((est - err).max(0.0).sqrt() * (1.0 - 1e-9) - shift[b] - radius[b].0).max(0.0);
                    lb * lb <= r2 + margin(i, b)
                })
                .collect()
        }));
    }
    // Cluster by cluster: its rows against the members of the clusters any of them leaves open.
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n];
    let (mut evals, mut covered) = (0u64, 0u64);
    let (lo, hi) = (r2 * (1.0 - 1e-9), r2 * (1.0 + 1e-9));
    let mut all: Option<crate::cpu::sgemm::PackedWeight> = None;
    for rows in mem.iter().filter(|m| !m.is_empty()) {
        let mut used = vec![false; k];
        for &i in rows {
            for &b in &open[i] {
                used[b as usize] = true;
            }
        }
        let cols: Vec<usize> = (0..k).filter(|&b| used[b]).flat_map(|b| mem[b].iter().copied()).collect();
        let a: Vec<f32> = rows.iter().flat_map(|&i| x.row(i).iter().copied()).collect();
        // Against every row when most are open (no copy), else against the open clusters' rows gathered.
        let (cols, dots) = if cols.len() * 2 > n {
            let w = all.get_or_insert_with(|| crate::cpu::sgemm::PackedWeight::new(x.data.to_vec()));
            ((0..n).collect(), crate::cpu::matmul::matmul_weight(&a, w, None, rows.len(), n, d, true, |_| {}))
        } else {
            let b: Vec<f32> = cols.iter().flat_map(|&j| x.row(j).iter().copied()).collect();
            let dots = crate::cpu::matmul::matmul(&a, &b, None, rows.len(), cols.len(), d, true);
            (cols, dots)
        };
        covered += (rows.len() * cols.len()) as u64;
        let w = cols.len();
        let found = par::map(rows.len(), |r| {
            let i = rows[r];
            let mut ok = vec![false; k];
            for &b in &open[i] {
                ok[b as usize] = true;
            }
            let (mut out, mut ev) = (Vec::new(), 0u64);
            for (t, &j) in cols.iter().enumerate() {
                if !ok[c.labels[j]] {
                    continue;
                }
                let (e, rr) = pf.bracket(i, j, dots[r * w + t]);
                if pf.within(i, j, e, rr, delta, lo, hi, &mut ev) {
                    out.push(j as u32);
                }
            }
            out.sort_unstable();
            (out, ev)
        });
        for (&i, (l, ev)) in rows.iter().zip(found) {
            lists[i] = l;
            evals += ev;
        }
    }
    let (offsets, edges) = csr(lists);
    (offsets, edges, evals, covered)
}
