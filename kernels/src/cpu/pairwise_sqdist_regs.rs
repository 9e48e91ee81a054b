//! CPU twin of `shaders/pairwise_sqdist_regs.wgsl`, the register-blocked squared distances for CPU adapters. It
//! has `pairwise_sqdist`'s contract exactly; the kernels differ only in how they move data, so the twin is
//! `pairwise_sqdist`'s.

pub fn pairwise_sqdist_regs(a: &[f32], b: &[f32], n: usize, m: usize, d: usize) -> Vec<f32> {
    super::pairwise_sqdist(a, b, n, m, d)
}
