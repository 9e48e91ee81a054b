//! The CPU backend's single-precision GEMM engine: C = α·A·B + β·C with arbitrary strides, the contract of
//! matrixmultiply's `sgemm`. On x86-64 with AVX-512 it runs its own BLIS-style blocking around a 14 × 32
//! AVX-512 micro-kernel (28 accumulator registers): B packed in strips of 32 columns (once per call, shared by
//! every thread), A packed per task in panels of 14 rows, K in blocks of 256; an A panel's block stays in L1
//! while it sweeps a group of 8 strips (in L2). Elsewhere (no AVX-512, aarch64, wasm32) it is matrixmultiply's `sgemm` (AVX2/FMA, NEON,
//! simd128 or portable micro-kernels). matrixmultiply has no AVX-512 kernel: on the 2-core AVX-512 machine this
//! engine measured 1.2–1.3× its GFLOP/s at ViT shapes (docs/cpu-backend.md).
//!
//! Every C element is summed in the same order (K blocks of 256, then p within a block) whatever the task split,
//! so results never depend on the thread count.

use super::par::{self, SendPtr};

/// Rows of A per micro-kernel (broadcast), columns of B per micro-kernel (two 16-lane vectors), K per block.
const MR: usize = 14;
const NR: usize = 32;
const KC: usize = 256;
/// K up to this is one block (a tail block of a few values would cost a pass over C for little work).
const KC_MAX: usize = 320;
/// Strips of B per group: the B block a task sweeps with one A panel (256 KB at KC = 256).
const NCS: usize = 8;
/// Rows of A packed at once by a task (the A block that stays in L2).
const MC: usize = MR * 24;

/// Whether this process runs the AVX-512 engine (else matrixmultiply): the CPU has AVX-512F and
/// `MEDPICK_GEMM` is not `matrixmultiply` (which picks matrixmultiply's kernels, for comparison).
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::env::var("MEDPICK_GEMM").map_or(true, |v| v != "matrixmultiply")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// C [m, n] = α·A [m, k]·B [k, n] + β·C on the calling thread, element (i, j) of A at `a + i·rsa + j·csa` and
/// likewise for B and C (matrixmultiply's `sgemm` contract; β = 0 ignores C's contents, NaN included).
///
/// # Safety
/// Every element addressed by the shapes and strides must lie inside its allocation, and C must not overlap A or
/// B.
#[allow(clippy::too_many_arguments)] // the BLAS signature
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    #[cfg(target_arch = "x86_64")]
    if avx512() && m > 0 && n > 0 && k > 0 {
        let strips = n.div_ceil(NR);
        let (mut pa, mut pb) = (PACKED_A.with(|c| c.take()), PACKED_B.with(|c| c.take()));
        pb.reserve(strips * k * NR);
        for s in 0..strips {
            // SAFETY: the caller vouches for B's elements; the strip's slot is k·NR values of pb.
            unsafe { pack_b_strip(k, n, b, rsb, csb, s, &mut pb.as_mut()[s * k * NR..(s + 1) * k * NR]) };
        }
        for i0 in (0..m).step_by(MC) {
            let task = Task { i0, i1: (i0 + MC).min(m), s0: 0, s1: strips };
            // SAFETY: as above for A and C; pb holds every strip.
            unsafe { x86::run(task, k, n, alpha, a, rsa, csa, pb.as_ref(), beta, c, rsc, csc, &mut pa) };
        }
        PACKED_A.with(|c| c.replace(pa));
        PACKED_B.with(|c| c.replace(pb));
        return;
    }
    // SAFETY: the same contract as matrixmultiply's.
    unsafe { matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
}

/// C [m, n] (row-major, a fresh vector) = A [m, k] (row-major) · B (B [k, n] row-major, or Bᵀ of a [n, k]
/// row-major matrix), split over the CPU backend's threads, with `finish` applied to each block of whole rows of
/// C once they are done (while in cache where the split is over rows). None where the AVX-512 engine is not
/// available; the caller then uses matrixmultiply.
#[allow(clippy::too_many_arguments)] // the GEMM signature, the packed B and the epilogue
pub fn gemm_rows(
    a: &[f32],
    b: &[f32],
    prepacked: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
    finish: &(dyn Fn(&mut [f32]) + Sync),
) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        assert!(a.len() >= m * k && b.len() >= k * n, "gemm_rows: operands shorter than the shape");
        if m == 0 || n == 0 || k == 0 {
            let mut c = vec![0f32; m * n];
            par::for_chunks(&mut c, MC * n.max(1), |_, blk| finish(blk));
            return Some(c);
        }
        let strips = n.div_ceil(NR);
        let mut pb = PACKED_B.with(|cell| cell.take());
        if prepacked.is_none() {
            pack_b_into(b, k, n, trans_b, &mut pb);
        }
        // Tasks: row blocks of whole MR panels, and where there are too few of them for the threads, column
        // blocks of whole strips as well (a weight gradient: few rows, many columns).
        let threads = par::threads();
        let panels = m.div_ceil(MR);
        let want = if threads > 1 { 4 * threads } else { 1 };
        let row_tasks = want.min(panels).max(1);
        let col_tasks = if row_tasks * 2 <= want { (want / row_tasks).min(strips).max(1) } else { 1 };
        let rows = panels.div_ceil(row_tasks) * MR;
        let cols = strips.div_ceil(col_tasks);
        let (row_tasks, col_tasks) = (m.div_ceil(rows), strips.div_ceil(cols));
        // C is written before it is read (β = 0 on the first K block), so it starts uninitialised: no memset of
        // a buffer that is overwritten anyway.
        let mut c: Vec<f32> = Vec::with_capacity(m * n);
        let cp = SendPtr(c.spare_capacity_mut().as_mut_ptr().cast::<f32>());
        let pbr = match prepacked {
            Some(p) => {
                assert!(p.len() >= strips * k * NR, "gemm_rows: packed B shorter than the shape");
                p
            }
            None => pb.as_ref(),
        };
        par::map(row_tasks * col_tasks, |t| {
            let (ri, ci) = (t / col_tasks, t % col_tasks);
            let task =
                Task { i0: ri * rows, i1: ((ri + 1) * rows).min(m), s0: ci * cols, s1: ((ci + 1) * cols).min(strips) };
            let mut pa = PACKED_A.with(|cell| cell.take());
            for i0 in (task.i0..task.i1).step_by(MC) {
                let i1 = (i0 + MC).min(task.i1);
                // SAFETY: A's rows i0..i1 lie inside a (asserted) and C's rows i0..i1 × this task's strips inside
                // c's capacity of m·n; no other task writes them.
                unsafe {
                    x86::run(
                        Task { i0, i1, ..task },
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        pbr,
                        0.0,
                        cp.get(),
                        n as isize,
                        1,
                        &mut pa,
                    );
                }
                if col_tasks == 1 {
                    // SAFETY: rows i0..i1 of C are this task's alone and every element of them is written.
                    finish(unsafe { std::slice::from_raw_parts_mut(cp.get().add(i0 * n), (i1 - i0) * n) });
                }
            }
            PACKED_A.with(|cell| cell.replace(pa));
        });
        PACKED_B.with(|cell| cell.replace(pb));
        // SAFETY: the tasks cover every row and every strip, so all m·n elements are written.
        unsafe { c.set_len(m * n) };
        if col_tasks > 1 {
            par::for_chunks(&mut c, MC * n, |_, blk| finish(blk));
        }
        return Some(c);
    }
    let _ = (a, b, prepacked, m, n, k, trans_b, finish);
    None
}

/// B (B [k, n] row-major, or Bᵀ of a [n, k] row-major matrix) packed into strips of NR columns, the strips split
/// over the threads.
fn pack_b_into(b: &[f32], k: usize, n: usize, trans_b: bool, pb: &mut Aligned) {
    assert!(b.len() >= k * n, "sgemm: B shorter than the shape");
    let (rsb, csb) = if trans_b { (1, k as isize) } else { (n as isize, 1) };
    pb.reserve(n.div_ceil(NR) * k * NR);
    let bp = SendPtr(b.as_ptr() as *mut f32);
    par::for_chunks(pb.as_mut(), (k * NR).max(1), |s, strip| {
        // SAFETY: B [k, n] under (rsb, csb) lies inside b (asserted above).
        unsafe { pack_b_strip(k, n, bp.get(), rsb, csb, s, strip) }
    });
}

/// A model's matmul weight on the CPU backend: its values, and (on the AVX-512 engine) the GEMM's packed form
/// made on first use and kept, so a forward pass does not pack its weights again at every call. The values
/// cannot be changed once wrapped (a training step's parameters stay plain tensors), so the packed form never
/// goes stale.
pub struct PackedWeight {
    values: Vec<f32>,
    packed: std::sync::OnceLock<(usize, usize, bool, Aligned)>,
}

impl PackedWeight {
    pub fn new(values: Vec<f32>) -> Self {
        PackedWeight { values, packed: std::sync::OnceLock::new() }
    }

    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Bytes held: the values and the packed copy once made.
    pub fn bytes(&self) -> u64 {
        let packed = self.packed.get().map_or(0, |p| p.3.len);
        ((self.values.len() + packed) * 4) as u64
    }

    /// The packed form for B of shape (k, n, trans_b): made on the first call; None when the engine is not
    /// AVX-512 or the weight was first packed for another shape (then the caller packs per call).
    fn packed(&self, k: usize, n: usize, trans_b: bool) -> Option<&[f32]> {
        if !avx512() || self.values.len() < k * n || k == 0 || n == 0 {
            return None;
        }
        let (pk, pn, pt, buf) = self.packed.get_or_init(|| {
            let mut pb = Aligned::default();
            pack_b_into(&self.values, k, n, trans_b, &mut pb);
            (k, n, trans_b, pb)
        });
        ((*pk, *pn, *pt) == (k, n, trans_b)).then(|| buf.as_ref())
    }
}

/// [`gemm_rows`] with B a [`PackedWeight`] (packed once, on first use).
#[allow(clippy::too_many_arguments)] // the GEMM signature
pub fn gemm_rows_weight(
    a: &[f32],
    w: &PackedWeight,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
    finish: &(dyn Fn(&mut [f32]) + Sync),
) -> Option<Vec<f32>> {
    gemm_rows(a, &w.values, w.packed(k, n, trans_b), m, n, k, trans_b, finish)
}

/// The K block: all of K up to KC_MAX, else K split into equal blocks of about KC (multiples of 8), so no block
/// is a short tail.
fn k_block(k: usize) -> usize {
    if k <= KC_MAX {
        return k.max(1);
    }
    let blocks = k.div_ceil(KC);
    k.div_ceil(blocks).div_ceil(8) * 8
}

/// Rows i0..i1 of C against strips s0..s1 of packed B.
#[derive(Clone, Copy)]
struct Task {
    i0: usize,
    i1: usize,
    s0: usize,
    s1: usize,
}

/// Strip `s` of B (columns s·NR.. s·NR+NR, zero past n) into `out` [k, NR].
///
/// # Safety
/// B [k, n] under (rsb, csb) must be readable.
unsafe fn pack_b_strip(k: usize, n: usize, b: *const f32, rsb: isize, csb: isize, s: usize, out: &mut [f32]) {
    let j0 = s * NR;
    let nr = NR.min(n - j0);
    if nr < NR {
        // Columns past n are zeros (the buffer is reused, so they may hold old values).
        for p in 0..k {
            out[p * NR + nr..(p + 1) * NR].fill(0.0);
        }
    }
    #[cfg(target_arch = "x86_64")]
    if avx512() && (rsb == 1 || csb == 1) {
        // SAFETY: as this function's; the engine runs only where avx512f is present.
        unsafe { x86::pack_b_strip_fast(k, nr, b.offset(j0 as isize * csb), rsb, csb, out) };
        return;
    }
    if rsb == 1 {
        // Bᵀ stored row-major: column j of B is contiguous. 64 values of K at a time, so the 64 lines of `out`
        // being filled stay in L1 while all NR columns write into them.
        for p0 in (0..k).step_by(64) {
            let p1 = (p0 + 64).min(k);
            for t in 0..nr {
                // SAFETY: the caller vouches for B's elements.
                let col = unsafe { b.offset((j0 + t) as isize * csb) };
                for p in p0..p1 {
                    out[p * NR + t] = unsafe { *col.add(p) };
                }
            }
        }
    } else {
        for p in 0..k {
            // SAFETY: as above.
            let row = unsafe { b.offset(p as isize * rsb) };
            for t in 0..nr {
                out[p * NR + t] = unsafe { *row.offset((j0 + t) as isize * csb) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

thread_local! {
    /// Packing buffers kept between calls (a model's GEMMs have few shapes): no allocation, page faults or
    /// zeroing per call. Every value a kernel reads is written by the packing first (padding included).
    static PACKED_A: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    static PACKED_B: std::cell::Cell<Aligned> = const { std::cell::Cell::new(Aligned { buf: Vec::new(), off: 0, len: 0 }) };
}

/// An f32 buffer whose first element is 64-byte aligned (packed strips then load whole cache lines).
#[derive(Default)]
struct Aligned {
    buf: Vec<f32>,
    off: usize,
    len: usize,
}

impl Aligned {
    /// Make the buffer `len` values long (its contents are not kept).
    fn reserve(&mut self, len: usize) {
        if self.buf.len() < len + 16 {
            self.buf = vec![0f32; len + 16];
        }
        self.off = self.buf.as_ptr().align_offset(64).min(16);
        self.len = len;
    }
    fn as_ref(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.len]
    }
    fn as_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix in [-1, 1).
    fn mat(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// C = α·A·B + β·C in f64 with the same strides, and the bound Σ|a||b| per element.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: &[f32],
        (rsa, csa): (usize, usize),
        b: &[f32],
        (rsb, csb): (usize, usize),
        beta: f32,
        c: &[f32],
        (rsc, csc): (usize, usize),
    ) -> (Vec<f64>, Vec<f64>) {
        let mut want = vec![0f64; m * n];
        let mut bound = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut s_abs) = (0f64, 0f64);
                for p in 0..k {
                    let v = a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64;
                    s += v;
                    s_abs += v.abs();
                }
                let c0 = if beta == 0.0 { 0.0 } else { beta as f64 * c[i * rsc + j * csc] as f64 };
                want[i * n + j] = alpha as f64 * s + c0;
                bound[i * n + j] = alpha.abs() as f64 * s_abs + c0.abs();
            }
        }
        (want, bound)
    }

    #[test]
    fn sgemm_matches_f64_at_edge_shapes_strides_alpha_and_beta() {
        // Shapes around the micro-kernel's 14 × 32 tile, K around its blocks (320 one block, 700 three), and
        // every stride layout the callers use (transposed B, C inside a wider matrix, C column-major).
        let shapes = [(1, 1, 1), (13, 7, 31), (14, 64, 32), (15, 65, 33), (29, 320, 70), (30, 321, 64), (3, 700, 97)];
        for (si, &(m, k, n)) in shapes.iter().enumerate() {
            for layout in 0..4 {
                let (sa, sb, sc) = match layout {
                    0 => ((k, 1), (n, 1), (n, 1)),
                    1 => ((k, 1), (1, k), (n + 5, 1)),
                    2 => ((1, m), (n, 1), (1, m)),
                    _ => ((k + 3, 1), (1, k + 2), (n, 1)),
                };
                let a = mat((m.max(1) - 1) * sa.0 + (k.max(1) - 1) * sa.1 + 1, si as u64 * 8 + layout);
                let b = mat((k.max(1) - 1) * sb.0 + (n.max(1) - 1) * sb.1 + 1, si as u64 * 8 + layout + 100);
                let clen = (m - 1) * sc.0 + (n - 1) * sc.1 + 1;
                for &(alpha, beta) in &[(1.0f32, 0.0f32), (0.125, 1.0), (1.0, 0.5)] {
                    let mut c = mat(clen, 7);
                    if beta == 0.0 {
                        c.fill(f32::NAN); // β = 0 must not read C
                    }
                    let (want, bound) = reference(m, k, n, alpha, &a, sa, &b, sb, beta, &c, sc);
                    // SAFETY: every addressed element is inside a, b and c (their lengths are computed above).
                    unsafe {
                        sgemm(
                            m,
                            k,
                            n,
                            alpha,
                            a.as_ptr(),
                            sa.0 as isize,
                            sa.1 as isize,
                            b.as_ptr(),
                            sb.0 as isize,
                            sb.1 as isize,
                            beta,
                            c.as_mut_ptr(),
                            sc.0 as isize,
                            sc.1 as isize,
                        );
                    }
                    for i in 0..m {
                        for j in 0..n {
                            let got = c[i * sc.0 + j * sc.1] as f64;
                            let tol = 1e-6 * bound[i * n + j] * (k as f64).sqrt() + 1e-6;
                            assert!(
                                (got - want[i * n + j]).abs() <= tol,
                                "{m}×{k}×{n} layout {layout} α {alpha} β {beta} at ({i}, {j}): {got} vs {}",
                                want[i * n + j]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_rows_is_the_same_bits_whatever_the_threads_and_packing() {
        let (m, k, n) = (203, 345, 161);
        let a = mat(m * k, 1);
        let b = mat(n * k, 2);
        let run = |threads: usize, weight: Option<&PackedWeight>| {
            par::set_threads(threads);
            let finish = |_: &mut [f32]| {};
            let c = match weight {
                Some(w) => gemm_rows_weight(&a, w, m, n, k, true, &finish),
                None => gemm_rows(&a, &b, None, m, n, k, true, &finish),
            };
            par::set_threads(0);
            c
        };
        let Some(one) = run(1, None) else {
            return; // no AVX-512 on this CPU: matrixmultiply runs instead (its own tests cover it)
        };
        let w = PackedWeight::new(b.clone());
        for threads in [1, 2, 3, 8] {
            assert_eq!(run(threads, None).expect("engine"), one, "{threads} threads");
            assert_eq!(run(threads, Some(&w)).expect("engine"), one, "{threads} threads, packed once");
        }
        // The same weight read with another shape is packed per call, not confused with its packed form.
        let other = gemm_rows_weight(&a[..m * 161], &w, m, 345, 161, false, &|_| {}).expect("engine");
        let direct = gemm_rows(&a[..m * 161], &b, None, m, 345, 161, false, &|_| {}).expect("engine");
        assert_eq!(other, direct);
        let (want, bound) = reference(m, k, n, 1.0, &a, (k, 1), &b, (1, k), 0.0, &[], (n, 1));
        for (i, (&g, (&w, &bd))) in one.iter().zip(want.iter().zip(&bound)).enumerate() {
            assert!((g as f64 - w).abs() <= 1e-6 * bd * (k as f64).sqrt() + 1e-6, "element {i}: {g} vs {w}");
        }
    }
}
