//! CPU twin of `shaders/matmul_regs.wgsl`, the register-blocked GEMM for CPU adapters. It has `matmul`'s
//! contract exactly (C[M,N] = A[M,K] · op(B) + bias[N], f32 accumulation on the GPU); the two kernels differ only
//! in how they move data, so the twin is `matmul`'s.

pub fn matmul_regs(
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
