//! CPU twin of `shaders/min_dist_update.wgsl`: mind[i] = min(mind[i], ‖x_i − x_center‖²) (or = when `init`),
//! each distance summed in f64 over eight fixed lanes (so the compiler vectorises it and the value does not
//! depend on the thread count), rows split over the CPU backend's threads.

use super::par;

pub fn min_dist_update(x: &[f32], mind: &mut [f32], n: usize, d: usize, center: usize, init: bool) {
    let c = &x[center * d..(center + 1) * d];
    let rows = par::rows_per_task(n, d, 1 << 16);
    par::for_chunks(&mut mind[..n], rows, |task, out| {
        for (r, m) in out.iter_mut().enumerate() {
            let i = task * rows + r;
            let dist = sqdist_f64(&x[i * d..(i + 1) * d], c) as f32;
            *m = if init { dist } else { m.min(dist) };
        }
    });
}

#[inline(always)]
fn sqdist_body<T: Copy + Into<f64>>(a: &[f32], b: &[T]) -> f64 {
    let mut lanes = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let t = x[l] as f64 - y[l].into();
            lanes[l] += t * t;
        }
    }
    let mut s = lanes.iter().sum::<f64>();
    for (&x, &y) in ta.iter().zip(tb) {
        let t = x as f64 - y.into();
        s += t * t;
    }
    s
}

#[inline(always)]
fn sqdist_f32_body(a: &[f32], b: &[f32]) -> f64 {
    sqdist_body(a, b)
}

#[inline(always)]
fn sqdist_f64c_body(a: &[f32], c: &[f64]) -> f64 {
    sqdist_body(a, c)
}

super::math::multiversion! {
    /// Σ (a − b)² in f64 over eight lanes, then the lanes and the tail in order (the same bits on every SIMD
    /// level: no FMA contraction, fixed lanes).
    pub fn sqdist_f64(a: &[f32], b: &[f32]) -> f64 => sqdist_f32_body
}

#[inline(always)]
fn add_row_f64_body(s: &mut [f64], w: f64, x: &[f32]) {
    for (a, &v) in s.iter_mut().zip(x) {
        *a += w * v as f64;
    }
}

super::math::multiversion! {
    /// `s[t] += w · x[t]` in f64, element by element (each element's two roundings, in the same order on every
    /// SIMD level): a k-means centre's running sum of its rows.
    pub fn add_row_f64(s: &mut [f64], w: f64, x: &[f32]) => add_row_f64_body
}

super::math::multiversion! {
    /// [`sqdist_f64`] against an f64 point (a k-means centre): the same lanes and order, so a centre that is a
    /// row converted to f64 gives exactly the row's value.
    pub fn sqdist_f64c(a: &[f32], c: &[f64]) -> f64 => sqdist_f64c_body
}

#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] as f64 * y[l] as f64;
        }
    }
    let mut s = lanes.iter().sum::<f64>();
    for (&x, &y) in ta.iter().zip(tb) {
        s += x as f64 * y as f64;
    }
    s
}

#[inline(always)]
fn sqdist_f32est_body(a: &[f32], b: &[f32]) -> f32 {
    // Four independent sets of sixteen lanes (chunk t into set t mod 4), so the adds do not wait on each other,
    // then the sets and the lanes added pairwise; the error bound holds for any order of the sum.
    let mut acc = [[0f32; 16]; 4];
    let (ca, cb) = (a.chunks_exact(64), b.chunks_exact(64));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for (s, set) in acc.iter_mut().enumerate() {
            for l in 0..16 {
                let t = x[s * 16 + l] - y[s * 16 + l];
                set[l] += t * t;
            }
        }
    }
    let (ca, cb) = (ra.chunks_exact(16), rb.chunks_exact(16));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (s, (x, y)) in ca.zip(cb).enumerate() {
        for l in 0..16 {
            let t = x[l] - y[l];
            acc[s][l] += t * t;
        }
    }
    let mut lanes = [0f32; 16];
    for l in 0..16 {
        lanes[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
    let mut w = 8;
    while w > 0 {
        for l in 0..w {
            lanes[l] += lanes[l + w];
        }
        w /= 2;
    }
    let mut s = lanes[0];
    for (&x, &y) in ta.iter().zip(tb) {
        let t = x - y;
        s += t * t;
    }
    s
}

super::math::multiversion! {
    /// Σ (a − b)² in f32 over four sets of sixteen lanes: a filter's estimate, within `f32_sum_error(d)` (relative) of the
    /// exact value plus `F32_SUM_ABS` (underflow), or not finite (overflow: nothing is known then).
    pub fn sqdist_f32est(a: &[f32], b: &[f32]) -> f32 => sqdist_f32est_body
}

/// The relative error bound of [`sqdist_f32est`] on `d` terms: γ_(d+3) for a sum of non-negative terms, each a
/// rounded square of a rounded difference, with a 1 % margin.
pub fn f32_sum_error(d: usize) -> f64 {
    let nu = (d + 3) as f64 * (f32::EPSILON as f64 / 2.0);
    1.01 * nu / (1.0 - nu)
}

/// The absolute slack of [`sqdist_f32est`] for squares that fall below f32's normal range.
pub const F32_SUM_ABS: f64 = 1e-30;

super::math::multiversion! {
    /// Σ a·b in f64 over eight lanes, then the lanes and the tail in order. The products of two f32 are exact
    /// in f64, so a fused multiply-add gives the same bits: [`dots_f64`] computes the same values in bulk.
    pub fn dot_f64(a: &[f32], b: &[f32]) -> f64 => dot_body
}

/// Queries per register block of [`dots_f64`].
const QB: usize = 4;

#[inline(always)]
fn dots_body(q: &[f32], nq: usize, x: &[f32], d: usize, out: &mut [f64], j0: usize) {
    let rows = out.len() / nq.max(1);
    let full = d / 8 * 8;
    for q0 in (0..nq).step_by(QB) {
        let qs = QB.min(nq - q0);
        for r in 0..rows {
            let xr = &x[(j0 + r) * d..(j0 + r + 1) * d];
            let mut lanes = [[0f64; 8]; QB];
            for t in (0..full).step_by(8) {
                let xv: [f64; 8] = std::array::from_fn(|l| xr[t + l] as f64);
                for (c, acc) in lanes.iter_mut().enumerate().take(qs) {
                    let qr = &q[(q0 + c) * d + t..(q0 + c) * d + t + 8];
                    for l in 0..8 {
                        acc[l] += qr[l] as f64 * xv[l];
                    }
                }
            }
            for (c, acc) in lanes.iter().enumerate().take(qs) {
                let mut s = acc.iter().sum::<f64>();
                for t in full..d {
                    s += q[(q0 + c) * d + t] as f64 * xr[t] as f64;
                }
                out[(q0 + c) * rows + r] = s;
            }
        }
    }
}

super::math::multiversion! {
    fn dots_block(q: &[f32], nq: usize, x: &[f32], d: usize, out: &mut [f64], j0: usize) => dots_body
}

/// `[nq, n]` of [`dot_f64`]`(q_c, x_j)` bit for bit (each pair summed in the same eight lanes and order), the
/// queries in register blocks against each row, rows split over the CPU backend's threads.
pub fn dots_f64(q: &[f32], nq: usize, x: &[f32], n: usize, d: usize) -> Vec<f64> {
    let rows = par::rows_per_task(n, nq * d, 1 << 16);
    let tasks = n.div_ceil(rows.max(1));
    let parts = par::map(tasks, |t| {
        let (j0, j1) = (t * rows, ((t + 1) * rows).min(n));
        let mut out = vec![0f64; nq * (j1 - j0)];
        dots_block(q, nq, x, d, &mut out, j0);
        (j0, j1, out)
    });
    let mut all = vec![0f64; nq * n];
    for (j0, j1, out) in parts {
        let w = j1 - j0;
        for c in 0..nq {
            all[c * n + j0..c * n + j1].copy_from_slice(&out[c * w..(c + 1) * w]);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f32 estimate stays within its documented bracket of the exact value (f64 of f32 differences is exact
    /// up to the f64 sum's own 1e-16) on every length around the lane and set boundaries.
    #[test]
    fn sqdist_f32est_is_within_its_bracket() {
        let mut rng = crate::rng::Rng::new(7);
        for d in [1, 2, 15, 16, 17, 63, 64, 65, 100, 128, 255, 256, 384, 769] {
            for scale in [1e-3f32, 1.0, 1e4] {
                let a: Vec<f32> = (0..d).map(|_| rng.normal() * scale).collect();
                let b: Vec<f32> = (0..d).map(|_| rng.normal() * scale + 0.5).collect();
                let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum();
                let est = sqdist_f32est(&a, &b) as f64;
                let bound = f32_sum_error(d) * exact + F32_SUM_ABS + exact * 1e-15;
                assert!((est - exact).abs() <= bound, "d = {d}, scale {scale}: {est} vs {exact} (bound {bound})");
                assert_eq!(sqdist_f32est(&a, &a), 0.0);
            }
        }
    }
}
