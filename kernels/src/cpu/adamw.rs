//! CPU twin of `shaders/adamw.wgsl` (torch.optim.AdamW), updating p, m, v in place; f64 inside one step.

/// AdamW hyper-parameters and the step's bias corrections (bc = 1 − β^t).
#[derive(Clone, Copy, Debug)]
pub struct AdamwStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub wd: f32,
    pub bc1: f32,
    pub bc2: f32,
}

impl AdamwStep {
    /// PyTorch's AdamW defaults (β 0.9 / 0.999, ε 1e-8) at step t ≥ 1.
    pub fn torch(lr: f32, wd: f32, t: usize) -> Self {
        let (beta1, beta2) = (0.9f32, 0.999f32);
        let t = t.min(i32::MAX as usize) as i32;
        AdamwStep { lr, beta1, beta2, eps: 1e-8, wd, bc1: 1.0 - beta1.powi(t), bc2: 1.0 - beta2.powi(t) }
    }
}

pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamwStep) {
    let f = |x: f32| x as f64;
    for i in 0..p.len() {
        let gi = f(g[i]);
        let mut pi = f(p[i]) * (1.0 - f(s.lr) * f(s.wd));
        let mi = f(s.beta1) * f(m[i]) + (1.0 - f(s.beta1)) * gi;
        let vi = f(s.beta2) * f(v[i]) + (1.0 - f(s.beta2)) * gi * gi;
        let denom = vi.sqrt() / f(s.bc2).sqrt() + f(s.eps);
        pi -= (f(s.lr) / f(s.bc1)) * mi / denom;
        p[i] = pi as f32;
        m[i] = mi as f32;
        v[i] = vi as f32;
    }
}
