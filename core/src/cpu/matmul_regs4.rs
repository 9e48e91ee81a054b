//! CPU twin of `shaders/matmul_regs4.wgsl`, `matmul_regs` with vec4 loads (K a multiple of 4; N too when B is not
//! transposed). It has `matmul`'s contract exactly and sums K in the same order, so the twin is `matmul`'s; the
//! shape rule is checked by `gpu::ops::matmul_regs4`.

pub fn matmul_regs4(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
) -> Vec<f32> {
    super::matmul(a, b, bias, m, n, k, trans_b)
}
