//! CPU twin of `shaders/matmul_regs4.wgsl`, `matmul_regs` with vec4 loads (K a multiple of 4; N too when B is not
//! transposed). It has `matmul`'s contract and sums K in the same order, so it is `matmul`'s twin, followed by
//! `gelu`'s when the kernel fuses the GELU (`act`). The shape rule is checked by `gpu::ops::matmul_regs4`.

#[allow(clippy::too_many_arguments)] // the GEMM signature and the activation
pub fn matmul_regs4(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
    gelu: bool,
) -> Vec<f32> {
    if gelu {
        super::matmul::matmul_then(a, b, bias, m, n, k, trans_b, super::gelu_in_place)
    } else {
        super::matmul(a, b, bias, m, n, k, trans_b)
    }
}
