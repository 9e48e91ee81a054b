//! The AVX-512 micro-kernels of [`super`]'s GEMM: a task's tiles, and the MR × NR tile itself.

use super::{k_block, Task, MR, NCS, NR};
use std::arch::x86_64::*;

/// C's rows task.i0..task.i1 × strips task.s0..task.s1 (`pb` holds every strip of B, [k, NR] each).
///
/// # Safety
/// A's and C's addressed elements must be valid; avx512f must be present.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn run(
    task: Task,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    pb: &[f32],
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    pa: &mut Vec<f32>,
) {
    let m = task.i1 - task.i0;
    let panels = m.div_ceil(MR);
    let kb = k_block(k);
    for k0 in (0..k).step_by(kb) {
        let kc = kb.min(k - k0);
        if pa.len() < panels * MR * kc {
            pa.resize(panels * MR * kc, 0.0);
        }
        for ip in 0..panels {
            let r0 = task.i0 + ip * MR;
            let mr = MR.min(task.i1 - r0);
            let out = &mut pa[ip * MR * kc..(ip + 1) * MR * kc];
            if mr < MR {
                // The last panel's missing rows are zeros (the buffer is reused, so they may hold old values).
                for p in 0..kc {
                    out[p * MR + mr..(p + 1) * MR].fill(0.0);
                }
            }
            // SAFETY: the caller vouches for A's rows r0..r0+mr and columns k0..k0+kc; out holds kc·MR values.
            unsafe { pack_a_panel(kc, mr, a.offset(r0 as isize * rsa + k0 as isize * csa), rsa, csa, out) };
        }
        let b_eff = if k0 == 0 { beta } else { 1.0 };
        // A panel (kc × MR) stays in L1 across a group of NCS strips of B (kc × NCS·NR, in L2).
        for sg in (task.s0..task.s1).step_by(NCS) {
            for ip in 0..panels {
                let r0 = task.i0 + ip * MR;
                let mr = MR.min(task.i1 - r0);
                for s in sg..(sg + NCS).min(task.s1) {
                    let bstrip = &pb[s * k * NR + k0 * NR..s * k * NR + (k0 + kc) * NR];
                    let j0 = s * NR;
                    let nr = NR.min(n - j0);
                    // SAFETY: C's tile (rows r0..r0+mr, columns j0..j0+nr) is inside C (caller); avx512f
                    // present.
                    unsafe {
                        let ct = c.offset(r0 as isize * rsc + j0 as isize * csc);
                        tile(kc, pa[ip * MR * kc..].as_ptr(), bstrip.as_ptr(), ct, rsc, csc, mr, nr, alpha, b_eff);
                    }
                }
            }
        }
    }
}

/// A's rows 0..mr (from `a`, strides rsa, csa) × columns 0..kc into the panel `out` [kc, MR] (rows mr.. are
/// already zero). With contiguous rows (csa = 1), 16 columns at a time: 16 row vectors (the missing ones zero)
/// transposed in registers by four butterfly stages of two-source permutes, 14 lanes of each column stored:
/// the plain element-by-element transpose took a tenth of a DINOv2 pass.
///
/// # Safety
/// A's addressed elements must be readable; avx512f must be present.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pack_a_panel(kc: usize, mr: usize, a: *const f32, rsa: isize, csa: isize, out: &mut [f32]) {
    assert!(out.len() >= kc * MR && mr <= MR);
    let o = out.as_mut_ptr();
    let mut p0 = 0;
    if csa == 1 {
        let idx = butterfly_indices();
        let keep: __mmask16 = (1u32 << MR) as u16 - 1;
        while p0 + 16 <= kc {
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, v) in r.iter_mut().enumerate() {
                if i < mr {
                    // SAFETY: row i's columns p0..p0+16 are inside A (p0 + 16 ≤ kc).
                    *v = unsafe { _mm512_loadu_ps(a.offset(i as isize * rsa).add(p0)) };
                }
            }
            transpose16(&mut r, &idx);
            for (q, v) in r.iter().enumerate() {
                // SAFETY: column p0 + q's MR values are inside out (p0 + q < kc).
                unsafe { _mm512_mask_storeu_ps(o.add((p0 + q) * MR), keep, *v) };
            }
            p0 += 16;
        }
    }
    for i in 0..mr {
        // SAFETY: the caller vouches for A's elements; (p, i) is inside out.
        unsafe {
            let row = a.offset(i as isize * rsa);
            for p in p0..kc {
                *o.add(p * MR + i) = *row.offset(p as isize * csa);
            }
        }
    }
}

/// `pack_b_strip` where B's columns (rsb = 1) or rows (csb = 1) are contiguous; `b` points at the strip's
/// first column, `nr` ≤ NR columns are real (the rest of `out` already zero). Columns: 16 × 16 blocks
/// transposed in registers like A's panels; rows: plain copies.
///
/// # Safety
/// B's addressed elements must be readable; avx512f must be present.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pack_b_strip_fast(k: usize, nr: usize, b: *const f32, rsb: isize, csb: isize, out: &mut [f32]) {
    assert!(out.len() >= k * NR && nr <= NR);
    let o = out.as_mut_ptr();
    if csb == 1 {
        for p in 0..k {
            // SAFETY: row p's nr values are inside B; out's row p holds NR.
            unsafe { std::ptr::copy_nonoverlapping(b.offset(p as isize * rsb), o.add(p * NR), nr) };
        }
        return;
    }
    let idx = butterfly_indices();
    let mut p0 = 0;
    while p0 + 16 <= k {
        for t0 in (0..nr).step_by(16) {
            let mut r = [_mm512_setzero_ps(); 16];
            for (t, v) in r.iter_mut().enumerate() {
                if t0 + t < nr {
                    // SAFETY: column t0 + t's values p0..p0+16 are inside B.
                    *v = unsafe { _mm512_loadu_ps(b.offset((t0 + t) as isize * csb).add(p0)) };
                }
            }
            transpose16(&mut r, &idx);
            for (q, v) in r.iter().enumerate() {
                // SAFETY: row p0 + q of out holds NR ≥ t0 + 16 values.
                unsafe { _mm512_storeu_ps(o.add((p0 + q) * NR + t0), *v) };
            }
        }
        p0 += 16;
    }
    for t in 0..nr {
        // SAFETY: as above.
        unsafe {
            let col = b.offset(t as isize * csb);
            for p in p0..k {
                *o.add(p * NR + t) = *col.add(p);
            }
        }
    }
}

/// The permute indices of the four butterfly stages (d = 1, 2, 4, 8) of a 16 × 16 transpose: rows 2s / 2s + 1
/// make the low / high row of a pair at distance d = 2^s (lane c of the low row keeps c where bit d of c is 0
/// and takes the high row's c − d where it is 1; the high row mirrors).
const BUTTERFLY: [[i32; 16]; 8] = {
    let mut idx = [[0i32; 16]; 8];
    let mut s = 0;
    while s < 4 {
        let d = 1usize << s;
        let mut c = 0;
        while c < 16 {
            if c & d == 0 {
                idx[2 * s][c] = c as i32;
                idx[2 * s + 1][c] = (c + d) as i32;
            } else {
                idx[2 * s][c] = (16 + c - d) as i32;
                idx[2 * s + 1][c] = (16 + c) as i32;
            }
            c += 1;
        }
        s += 1;
    }
    idx
};

/// [`BUTTERFLY`] in registers.
#[target_feature(enable = "avx512f")]
fn butterfly_indices() -> [__m512i; 8] {
    // SAFETY: each row holds 16 i32 values.
    BUTTERFLY.map(|row| unsafe { _mm512_loadu_si512(row.as_ptr().cast()) })
}

/// r [16 rows × 16 lanes] transposed in place.
#[inline(always)]
fn transpose16(r: &mut [__m512; 16], idx: &[__m512i; 8]) {
    butterfly::<1>(r, idx[0], idx[1]);
    butterfly::<2>(r, idx[2], idx[3]);
    butterfly::<4>(r, idx[4], idx[5]);
    butterfly::<8>(r, idx[6], idx[7]);
}

/// One transpose stage: rows i and i + D (bit D of i clear) exchange their lanes with bit D set / clear.
#[inline(always)]
fn butterfly<const D: usize>(r: &mut [__m512; 16], lo: __m512i, hi: __m512i) {
    for i in 0..16 {
        if i & D == 0 {
            let (l, h) = (r[i], r[i + D]);
            // SAFETY: avx512f is present (the only caller is compiled for it).
            unsafe {
                r[i] = _mm512_permutex2var_ps(l, lo, h);
                r[i + D] = _mm512_permutex2var_ps(l, hi, h);
            }
        }
    }
}

/// One MR × NR tile: acc = Apanel · Bpanel over kc, then C = α·acc + β·C (β = 0: C not read).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    kc: usize,
    pa: *const f32,
    pb: *const f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    mr: usize,
    nr: usize,
    alpha: f32,
    beta: f32,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (mut pa, mut pb) = (pa, pb);
    for _ in 0..kc {
        // SAFETY: the packed panels hold kc·MR and kc·NR values.
        unsafe {
            let b0 = _mm512_loadu_ps(pb);
            let b1 = _mm512_loadu_ps(pb.add(16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*pa.add(r));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
            pa = pa.add(MR);
            pb = pb.add(NR);
        }
    }
    if alpha != 1.0 {
        let al = _mm512_set1_ps(alpha);
        for acc in acc.iter_mut() {
            acc[0] = _mm512_mul_ps(acc[0], al);
            acc[1] = _mm512_mul_ps(acc[1], al);
        }
    }
    if csc == 1 {
        let m0: __mmask16 = if nr >= 16 { 0xffff } else { ((1u32 << nr) - 1) as u16 };
        let m1: __mmask16 = if nr >= 32 {
            0xffff
        } else if nr > 16 {
            ((1u32 << (nr - 16)) - 1) as u16
        } else {
            0
        };
        let bv = _mm512_set1_ps(beta);
        for (r, acc) in acc.iter().enumerate().take(mr) {
            // SAFETY: row r's first nr values of the tile are inside C; masked lanes are not touched.
            unsafe {
                let row = c.offset(r as isize * rsc);
                let (mut v0, mut v1) = (acc[0], acc[1]);
                if beta != 0.0 {
                    v0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, row), bv, v0);
                    v1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, row.add(16)), bv, v1);
                }
                _mm512_mask_storeu_ps(row, m0, v0);
                _mm512_mask_storeu_ps(row.add(16), m1, v1);
            }
        }
    } else {
        let mut buf = [0f32; MR * NR];
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: buf holds MR·NR values.
            unsafe {
                _mm512_storeu_ps(buf.as_mut_ptr().add(r * NR), acc[0]);
                _mm512_storeu_ps(buf.as_mut_ptr().add(r * NR + 16), acc[1]);
            }
        }
        for r in 0..mr {
            for j in 0..nr {
                // SAFETY: (r, j) is inside the tile, inside C.
                unsafe {
                    let p = c.offset(r as isize * rsc + j as isize * csc);
                    let v = buf[r * NR + j];
                    *p = if beta == 0.0 { v } else { v + beta * *p };
                }
            }
        }
    }
}
