//! CPU twin of `shaders/pairwise_sqdist_regs4.wgsl`, `pairwise_sqdist_regs` with vec4 loads (D a multiple of 4).
//! It has `pairwise_sqdist`'s contract exactly, so the twin is `pairwise_sqdist`'s; the shape rule is checked by
//! `gpu::ops::pairwise_sqdist_regs4`.

pub fn pairwise_sqdist_regs4(a: &[f32], b: &[f32], n: usize, m: usize, d: usize) -> Vec<f32> {
    super::pairwise_sqdist(a, b, n, m, d)
}
