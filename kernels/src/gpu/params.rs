//! `#[repr(C)]` Rust twins of every WGSL `struct Params` (one per kernel). The shader test in
//! `tests/tests/shaders.rs` compares each struct's size and every field's name and offset with naga's
//! reflection of the WGSL, so the two cannot drift apart. Kept in sync with `shaders/*.wgsl`.

use bytemuck::{Pod, Zeroable};

/// Size and field offsets of one Params struct, for the layout test.
#[derive(Debug, Clone, Copy)]
pub struct ParamsLayout {
    pub kernel: &'static str,
    pub rust_name: &'static str,
    pub size: usize,
    pub fields: &'static [(&'static str, usize)],
}

macro_rules! params {
    ($( $kernel:literal => $name:ident { $($field:ident : $ty:ty),* $(,)? } )*) => {
        $(
            #[doc = concat!("Uniform parameters of `shaders/", $kernel, ".wgsl`.")]
            #[repr(C)]
            #[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
            pub struct $name { $(pub $field: $ty),* }
        )*
        /// Layout of every Params twin, keyed by kernel name.
        pub const LAYOUTS: &[ParamsLayout] = &[
            $( ParamsLayout {
                kernel: $kernel,
                rust_name: stringify!($name),
                size: std::mem::size_of::<$name>(),
                fields: &[ $( (stringify!($field), std::mem::offset_of!($name, $field)) ),* ],
            } ),*
        ];
    };
}

params! {
    "matmul" => MatmulParams { m: u32, n: u32, k: u32, trans_b: u32, use_bias: u32, splits: u32, k_chunk: u32, _pad0: u32 }
    "matmul_f16w" => MatmulF16wParams { m: u32, n: u32, k: u32, trans_b: u32, use_bias: u32, splits: u32, k_chunk: u32, _pad0: u32 }
    "matmul_regs" => MatmulRegsParams { m: u32, n: u32, k: u32, trans_b: u32, use_bias: u32, splits: u32, k_chunk: u32, _pad0: u32 }
    "matmul_regs4" => MatmulRegs4Params { m: u32, n: u32, k: u32, trans_b: u32, use_bias: u32, splits: u32, k_chunk: u32, act: u32 }
    "pairwise_sqdist" => PairwiseSqdistParams { n: u32, m: u32, d: u32, _pad0: u32 }
    "pairwise_sqdist_regs" => PairwiseSqdistRegsParams { n: u32, m: u32, d: u32, _pad0: u32 }
    "pairwise_sqdist_regs4" => PairwiseSqdistRegs4Params { n: u32, m: u32, d: u32, _pad0: u32 }
    "min_dist_update" => MinDistUpdateParams { n: u32, d: u32, center: u32, init: u32 }
    "argmax_rows" => ArgmaxRowsParams { rows: u32, cols: u32, _pad0: u32, _pad1: u32 }
    "topk_rows" => TopkRowsParams { rows: u32, cols: u32, k: u32, col_offset: u32, merge: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
    "softmax_rows" => SoftmaxRowsParams { rows: u32, cols: u32, _pad0: u32, _pad1: u32 }
    "layernorm" => LayernormParams { rows: u32, d: u32, eps: f32, _pad0: u32 }
    "gelu" => GeluParams { n: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
    "swiglu" => SwigluParams { rows: u32, hidden: u32, _pad0: u32, _pad1: u32 }
    "gelu_backward" => GeluBackwardParams { n: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
    "ema_update" => EmaUpdateParams { n: u32, alpha: f32, _pad0: u32, _pad1: u32 }
    "softmax_mse" => SoftmaxMseParams { rows: u32, classes: u32, scale: f32, _pad0: u32 }
    "layernorm_backward" => LayernormBackwardParams { rows: u32, d: u32, eps: f32, _pad0: u32 }
    "dice_loss" => DiceLossParams {
        rows: u32, phase: u32, mode: u32, groups: u32, gamma: f32, scale: f32, _pad0: u32, _pad1: u32
    }
    "reduce_rows" => ReduceRowsParams { rows: u32, cols: u32, op: u32, _pad0: u32 }
    "entropy_map" => EntropyMapParams { images: u32, classes: u32, pixels: u32, _pad0: u32 }
    "dwconv2d" => Dwconv2dParams { h: u32, w: u32, c: u32, k: u32, stride: u32, pad: u32, ho: u32, wo: u32 }
    "im2col" => Im2colParams { h: u32, w: u32, c: u32, k: u32, stride: u32, pad: u32, ho: u32, wo: u32 }
    "im2col_k3c4" => Im2colK3c4Params { h: u32, w: u32, c: u32, k: u32, stride: u32, pad: u32, ho: u32, wo: u32 }
    "pad2d" => Pad2dParams { h: u32, w: u32, c: u32, hp: u32, wp: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
    "crop_add2d" => CropAdd2dParams { h: u32, w: u32, c: u32, hp: u32, wp: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
    "softmax_xent" => SoftmaxXentParams { rows: u32, classes: u32, smoothing: f32, scale: f32 }
    "adamw" => AdamwParams { n: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32 }
    "sgd_momentum" => SgdMomentumParams { n: u32, lr: f32, momentum: f32, wd: f32 }
    "transpose" => TransposeParams { rows: u32, cols: u32, _pad0: u32, _pad1: u32 }
    "segment_mean" => SegmentMeanParams { k: u32, d: u32, _pad0: u32, _pad1: u32 }
    "facility_gain" => FacilityGainParams { rows: u32, cols: u32, mode: u32, _pad0: u32 }
    "other_label_min" => OtherLabelMinParams {
        rows: u32, cols: u32, row_offset: u32, col_offset: u32, merge: u32, _pad0: u32, _pad1: u32, _pad2: u32
    }
    "radius_edges" => RadiusEdgesParams {
        rows: u32, cols: u32, row_offset: u32, col_offset: u32, mode: u32, radius2: f32, capacity: u32, base: u32
    }
    "relu" => ReluParams { n: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
    "depth_to_space" => DepthToSpaceParams { h: u32, w: u32, c: u32, r: u32 }
    "cross_attention" => CrossAttentionParams {
        nq: u32, nk: u32, heads: u32, hd: u32, q_stride: u32, k_stride: u32, v_stride: u32, out_stride: u32,
        scale: f32, _pad0: u32, _pad1: u32, _pad2: u32
    }
    "attention" => AttentionParams {
        grid_w: u32, ws_h: u32, ws_w: u32, n_win_x: u32, heads: u32, hd: u32, qkv_stride: u32, head_stride: u32,
        k_off: u32, v_off: u32, out_stride: u32, has_bias: u32, scale: f32, pair: u32, _pad1: u32, _pad2: u32
    }
}

/// The layout of one kernel's Params twin.
pub fn layout(kernel: &str) -> Option<&'static ParamsLayout> {
    LAYOUTS.iter().find(|l| l.kernel == kernel)
}

impl From<CropAdd2dParams> for Pad2dParams {
    /// The two kernels share their Params layout (checked against the WGSL by the shader test).
    fn from(p: CropAdd2dParams) -> Self {
        Pad2dParams { h: p.h, w: p.w, c: p.c, hp: p.hp, wp: p.wp, _pad0: 0, _pad1: 0, _pad2: 0 }
    }
}
