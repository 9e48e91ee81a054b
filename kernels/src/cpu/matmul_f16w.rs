//! CPU twin of `shaders/matmul_f16w.wgsl`: C[M,N] = A[M,K] · op(B) + bias[N] with B given as f16 bit patterns.
//! B is widened to f32 exactly (every f16 is an f32) and the product is the f32 twin's, so the only difference
//! from `matmul` is the rounding of B to f16, which happens once, where the weights are stored.

use half::f16;

/// f16 bit patterns of `v`, rounded to nearest (ties to even). |x| > 65504 becomes ±inf: see [`f16_overflow`].
pub fn to_f16_bits(v: &[f32]) -> Vec<u16> {
    v.iter().map(|&x| f16::from_f32(x).to_bits()).collect()
}

/// The f32 values of f16 bit patterns (exact).
pub fn from_f16_bits(b: &[u16]) -> Vec<f32> {
    b.iter().map(|&x| f16::from_bits(x).to_f32()).collect()
}

/// `v` rounded to f16 and back: what the GPU computes with when these values are stored in f16.
pub fn round_to_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| f16::from_f32(x).to_f32()).collect()
}

/// The first finite value that f16 cannot hold (|x| > 65504), with its index.
pub fn f16_overflow(v: &[f32]) -> Option<(usize, f32)> {
    v.iter().position(|x| x.is_finite() && x.abs() > f16::MAX.to_f32()).map(|i| (i, v[i]))
}

pub fn matmul_f16w(
    a: &[f32],
    b: &[u16],
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
) -> Vec<f32> {
    assert!(b.len() >= k * n, "matmul_f16w twin: B shorter than the shape");
    super::matmul(a, &from_f16_bits(&b[..k * n]), bias, m, n, k, trans_b)
}
