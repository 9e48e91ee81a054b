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

super::math::multiversion! {
    /// [`sqdist_f64`] against an f64 point (a k-means centre): the same lanes and order, so a centre that is a
    /// row converted to f64 gives exactly the row's value.
    pub fn sqdist_f64c(a: &[f32], c: &[f64]) -> f64 => sqdist_f64c_body
}
