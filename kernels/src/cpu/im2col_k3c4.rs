//! CPU twin of `shaders/im2col_k3c4.wgsl`, `im2col` for 3×3 kernels on C % 4 == 0 channels with vec4 loads and
//! stores: the same output as `im2col` (values are copied, not computed), so the twin is `im2col`'s; the shape rule
//! is checked by `gpu::ops::im2col_k3c4`.

use crate::gpu::ops::ConvGeom;

pub fn im2col_k3c4(x: &[f32], g: ConvGeom) -> Vec<f32> {
    super::im2col(x, g)
}
