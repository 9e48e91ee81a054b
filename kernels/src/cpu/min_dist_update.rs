//! CPU twin of `shaders/min_dist_update.wgsl`: mind[i] = min(mind[i], ‖x_i − x_center‖²) (or = when `init`).

pub fn min_dist_update(x: &[f32], mind: &mut [f32], n: usize, d: usize, center: usize, init: bool) {
    let c = &x[center * d..(center + 1) * d];
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        let dist: f64 = xi.iter().zip(c).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        let dist = dist as f32;
        mind[i] = if init { dist } else { mind[i].min(dist) };
    }
}
