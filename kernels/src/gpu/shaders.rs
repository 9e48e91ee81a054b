//! The single table of every WGSL kernel, embedded with `include_str!` so nothing is read at run time (works
//! the same natively and in the browser). `tests/tests/shaders.rs` checks the table against `shaders/*.wgsl`
//! in both directions and each workgroup size against naga's reflection.

/// One compute kernel: file stem, WGSL source, and the `@workgroup_size` used for dispatch arithmetic.
#[derive(Debug, Clone, Copy)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    pub workgroup_size: [u32; 3],
    /// Needs the `shader-f16` device feature (`enable f16;`): built only where the device grants it.
    pub f16: bool,
}

macro_rules! shader {
    ($name:literal, [$x:expr, $y:expr, $z:expr]) => {
        Shader {
            name: $name,
            source: include_str!(concat!("../../../shaders/", $name, ".wgsl")),
            workgroup_size: [$x, $y, $z],
            f16: false,
        }
    };
    ($name:literal, [$x:expr, $y:expr, $z:expr], f16) => {
        Shader {
            name: $name,
            source: include_str!(concat!("../../../shaders/", $name, ".wgsl")),
            workgroup_size: [$x, $y, $z],
            f16: true,
        }
    };
}

/// Every kernel, sorted by name.
pub const ALL: &[Shader] = &[
    shader!("adamw", [256, 1, 1]),
    shader!("argmax_rows", [256, 1, 1]),
    shader!("attention", [64, 1, 1]),
    shader!("crop_add2d", [256, 1, 1]),
    shader!("cross_attention", [64, 1, 1]),
    shader!("depth_to_space", [256, 1, 1]),
    shader!("dice_loss", [256, 1, 1]),
    shader!("dwconv2d", [256, 1, 1]),
    shader!("ema_update", [256, 1, 1]),
    shader!("entropy_map", [256, 1, 1]),
    shader!("facility_gain", [256, 1, 1]),
    shader!("gelu", [256, 1, 1]),
    shader!("gelu_backward", [256, 1, 1]),
    shader!("im2col", [256, 1, 1]),
    shader!("im2col_k3c4", [256, 1, 1]),
    shader!("layernorm", [64, 1, 1]),
    shader!("layernorm_backward", [64, 1, 1]),
    shader!("matmul", [16, 16, 1]),
    shader!("matmul_f16w", [16, 16, 1], f16),
    shader!("matmul_regs", [8, 8, 1]),
    shader!("matmul_regs4", [8, 8, 1]),
    shader!("min_dist_update", [256, 1, 1]),
    shader!("other_label_min", [64, 1, 1]),
    shader!("pad2d", [256, 1, 1]),
    shader!("pairwise_sqdist", [16, 16, 1]),
    shader!("pairwise_sqdist_regs", [8, 8, 1]),
    shader!("pairwise_sqdist_regs4", [8, 8, 1]),
    shader!("radius_edges", [64, 1, 1]),
    shader!("reduce_rows", [256, 1, 1]),
    shader!("relu", [256, 1, 1]),
    shader!("segment_mean", [256, 1, 1]),
    shader!("sgd_momentum", [256, 1, 1]),
    shader!("softmax_mse", [64, 1, 1]),
    shader!("softmax_rows", [256, 1, 1]),
    shader!("softmax_xent", [64, 1, 1]),
    shader!("swiglu", [256, 1, 1]),
    shader!("topk_rows", [64, 1, 1]),
    shader!("transpose", [256, 1, 1]),
];

/// Look a kernel up by name.
pub fn get(name: &str) -> Option<&'static Shader> {
    ALL.iter().find(|s| s.name == name)
}
