//! CPU twin of `shaders/sgd_momentum.wgsl` (torch.optim.SGD with momentum), updating p and b in place.

pub fn sgd_momentum(p: &mut [f32], g: &[f32], b: &mut [f32], lr: f32, momentum: f32, wd: f32) {
    for i in 0..p.len() {
        let gi = g[i] as f64 + wd as f64 * p[i] as f64;
        let bi = momentum as f64 * b[i] as f64 + gi;
        b[i] = bi as f32;
        p[i] = (p[i] as f64 - lr as f64 * bi) as f32;
    }
}
