//! GPU-vs-CPU self-test cases for every kernel, shared by the integration tests (`cargo test`), the CLI
//! (`medpick selftest`) and the browser page (`web/selftest.html`), so all three check the same thing.
//! Sizes are deliberately not multiples of the workgroup sizes (1, 7, 63, 64, 65, 1000) plus real model shapes.

use serde::Serialize;

use crate::cpu;
use crate::gpu::{ops, read_f32, read_u32, GpuContext};
use crate::rng::Rng;
use crate::testing::{compare, compare_exact_u32, merge, Comparison, Tolerance};
use crate::{Instant, Result};

/// Small shapes (odd sizes around the workgroup sizes) or real model shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Group {
    Small,
    Model,
}

#[derive(Clone, Debug)]
enum Spec {
    Matmul {
        m: usize,
        n: usize,
        k: usize,
        trans_b: bool,
        bias: bool,
    },
    /// A GEMM with the GELU fused into its store (`matmul_regs4` only).
    MatmulGelu {
        m: usize,
        n: usize,
        k: usize,
        trans_b: bool,
        bias: bool,
    },
    Pairwise {
        n: usize,
        m: usize,
        d: usize,
        same: bool,
    },
    MinDist {
        n: usize,
        d: usize,
        steps: usize,
    },
    Argmax {
        rows: usize,
        cols: usize,
        ties: bool,
    },
    Topk {
        rows: usize,
        cols: usize,
        k: usize,
        tiles: usize,
        ties: bool,
    },
    Softmax {
        rows: usize,
        cols: usize,
    },
    Layernorm {
        rows: usize,
        d: usize,
    },
    Gelu {
        n: usize,
    },
    Swiglu {
        rows: usize,
        hidden: usize,
    },
    Reduce {
        rows: usize,
        cols: usize,
        op: ops::Reduce,
    },
    Entropy {
        images: usize,
        classes: usize,
        pixels: usize,
    },
    Dwconv {
        g: ops::ConvGeom,
    },
    Im2col {
        g: ops::ConvGeom,
    },
    Pad {
        h: usize,
        w: usize,
        c: usize,
        hp: usize,
        wp: usize,
    },
    CropAdd {
        h: usize,
        w: usize,
        c: usize,
        hp: usize,
        wp: usize,
    },
    Attention {
        g: ops::AttnGeom,
        bias: bool,
    },
    CrossAttention {
        g: ops::CrossAttnGeom,
    },
    Relu {
        n: usize,
    },
    DepthToSpace {
        h: usize,
        w: usize,
        c: usize,
        r: usize,
    },
    SoftmaxXent {
        rows: usize,
        classes: usize,
        smoothing: f32,
    },
    Adamw {
        n: usize,
        steps: usize,
    },
    Sgd {
        n: usize,
        steps: usize,
    },
    Transpose {
        rows: usize,
        cols: usize,
    },
    SegmentMean {
        n: usize,
        k: usize,
        d: usize,
    },
    FacilityGain {
        rows: usize,
        cols: usize,
        potential: bool,
    },
    /// An n×n distance matrix visited in `tiles`×`tiles` blocks, `classes` labels.
    OtherLabelMin {
        n: usize,
        classes: usize,
        tiles: usize,
    },
    RadiusEdges {
        n: usize,
        tiles: usize,
    },
    GeluBackward {
        n: usize,
    },
    LayernormBackward {
        rows: usize,
        d: usize,
    },
    DiceLoss {
        rows: usize,
        robust: bool,
    },
    Ema {
        n: usize,
    },
    SoftmaxMse {
        rows: usize,
        classes: usize,
    },
}

/// One self-test case.
#[derive(Clone, Debug)]
pub struct Case {
    pub kernel: &'static str,
    pub label: String,
    pub group: Group,
    spec: Spec,
}

/// What one case found.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    pub kernel: &'static str,
    pub case: String,
    pub group: Group,
    /// `None` when only the CPU twin ran (no GPU) or the case was skipped.
    pub passed: Option<bool>,
    /// The device lacks an optional feature the kernel needs (`matmul_f16w` without `shader-f16`).
    pub skipped: bool,
    pub detail: String,
    pub max_abs_err: f32,
    pub elements: usize,
    pub gpu_ms: f64,
    pub cpu_ms: f64,
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    let label = match &spec {
        Spec::Matmul { m, n, k, trans_b, bias } | Spec::MatmulGelu { m, n, k, trans_b, bias } => {
            format!(
                "{m}x{k}·{}{}{}{}",
                if *trans_b { "T" } else { "" },
                if *trans_b { format!("{n}x{k}") } else { format!("{k}x{n}") },
                if *bias { "+bias" } else { "" },
                if matches!(spec, Spec::MatmulGelu { .. }) { " gelu" } else { "" }
            )
        }
        Spec::Pairwise { n, m, d, same } => {
            format!("{n}x{m} d{d}{}", if *same { " self" } else { "" })
        }
        Spec::MinDist { n, d, steps } => format!("n{n} d{d} {steps} steps"),
        Spec::Argmax { rows, cols, ties } => {
            format!("{rows}x{cols}{}", if *ties { " ties" } else { "" })
        }
        Spec::Topk { rows, cols, k, tiles, ties } => {
            format!("{rows}x{cols} k{k} {tiles} tile(s){}", if *ties { " ties" } else { "" })
        }
        Spec::Softmax { rows, cols } => format!("{rows}x{cols}"),
        Spec::Layernorm { rows, d } => format!("{rows}x{d}"),
        Spec::Gelu { n } => format!("n{n}"),
        Spec::Swiglu { rows, hidden } => format!("{rows}x{hidden}"),
        Spec::Reduce { rows, cols, op } => format!("{rows}x{cols} {op:?}"),
        Spec::Entropy { images, classes, pixels } => format!("{images}x{classes}x{pixels}"),
        Spec::Dwconv { g } | Spec::Im2col { g } => format!("{}x{}x{} k{} s{} p{}", g.h, g.w, g.c, g.k, g.stride, g.pad),
        Spec::Pad { h, w, c, hp, wp } | Spec::CropAdd { h, w, c, hp, wp } => format!("{h}x{w}x{c} in {hp}x{wp}"),
        Spec::Attention { g, bias } => format!(
            "grid {}x{} win {}x{} {}h x{}{}",
            g.grid_h,
            g.grid_w,
            g.ws_h,
            g.ws_w,
            g.heads,
            g.hd,
            if *bias { " +bias" } else { "" }
        ),
        Spec::CrossAttention { g } => format!("{}q x {}k {}h x{}", g.nq, g.nk, g.heads, g.hd),
        Spec::Relu { n } => format!("n{n}"),
        Spec::DepthToSpace { h, w, c, r } => format!("{h}x{w}x{c} r{r}"),
        Spec::SoftmaxXent { rows, classes, smoothing } => format!("{rows}x{classes} eps {smoothing}"),
        Spec::Adamw { n, steps } | Spec::Sgd { n, steps } => format!("n{n} {steps} steps"),
        Spec::Transpose { rows, cols } => format!("{rows}x{cols}"),
        Spec::SegmentMean { n, k, d } => format!("n{n} k{k} d{d}"),
        Spec::FacilityGain { rows, cols, potential } => {
            format!("{rows}x{cols}{}", if *potential { " potential" } else { "" })
        }
        Spec::OtherLabelMin { n, classes, tiles } => format!("n{n} {classes} labels {tiles}x{tiles} tiles"),
        Spec::RadiusEdges { n, tiles } => format!("n{n} {tiles}x{tiles} tiles"),
        Spec::GeluBackward { n } => format!("n{n}"),
        Spec::LayernormBackward { rows, d } => format!("{rows}x{d}"),
        Spec::DiceLoss { rows, robust } => format!("{rows}x2 {}", if *robust { "noise-robust γ 1.5" } else { "soft" }),
        Spec::Ema { n } => format!("n{n}"),
        Spec::SoftmaxMse { rows, classes } => format!("{rows}x{classes}"),
    };
    Case { kernel, label, group, spec }
}

/// Every case, for every kernel in `gpu::shaders::ALL`.
pub fn cases() -> Vec<Case> {
    use Group::*;
    use Spec::*;
    let mut v = Vec::new();
    for (m, n, k, t, b) in [
        (1, 1, 1, false, false),
        (7, 7, 7, true, true),
        (63, 64, 65, false, true),
        (64, 64, 64, true, false),
        (65, 63, 1000, false, false),
        (1000, 7, 63, true, true),
        (7, 1000, 64, false, false),
        (3, 5, 1500, true, true),
    ] {
        v.push(case("matmul", Small, Matmul { m, n, k, trans_b: t, bias: b }));
        v.push(case("matmul_regs", Small, Matmul { m, n, k, trans_b: t, bias: b }));
    }
    for (m, n, k, t, b) in
        [(1, 1, 1, false, false), (7, 7, 7, true, true), (65, 63, 1000, false, false), (1000, 7, 63, true, true)]
    {
        v.push(case("matmul_f16w", Small, Matmul { m, n, k, trans_b: t, bias: b }));
    }
    v.push(case("matmul_f16w", Model, Matmul { m: 4096, n: 480, k: 160, trans_b: true, bias: true }));
    // ViT-S/14 qkv on one image (257 tokens), the MLP on a batch of 4 images, TinyViT stage-2 qkv.
    v.push(case("matmul", Model, Matmul { m: 257, n: 1152, k: 384, trans_b: true, bias: true }));
    v.push(case("matmul", Model, Matmul { m: 4 * 257, n: 1536, k: 384, trans_b: true, bias: true }));
    v.push(case("matmul", Model, Matmul { m: 4096, n: 480, k: 160, trans_b: true, bias: true }));
    // matmul_regs: TinyViT stage-0 MBConv expansion (65,536 tokens), stage-3 fc2, and split-K weight gradients.
    v.push(case("matmul_regs", Model, Matmul { m: 4 * 257, n: 1536, k: 384, trans_b: true, bias: true }));
    v.push(case("matmul_regs", Model, Matmul { m: 65536, n: 256, k: 64, trans_b: true, bias: true }));
    v.push(case("matmul_regs", Model, Matmul { m: 4096, n: 320, k: 1280, trans_b: true, bias: true }));
    v.push(case("matmul_regs", Model, Matmul { m: 32, n: 32, k: 32768, trans_b: false, bias: false }));
    v.push(case("matmul_regs", Model, Matmul { m: 8, n: 9, k: 4096, trans_b: true, bias: true }));
    // matmul_regs4 takes K % 4 == 0 (and N % 4 == 0 with B not transposed): edges of the tile in M and N, both
    // layouts of B, the model shapes above, and split-K.
    for (m, n, k, t, b) in [
        (1, 1, 4, true, false),
        (1, 4, 4, false, true),
        (7, 7, 8, true, true),
        (63, 64, 64, false, true),
        (64, 64, 64, true, false),
        (65, 63, 1000, true, false),
        (1000, 8, 60, false, true),
        (7, 1000, 64, false, false),
        (3, 5, 1500, true, true),
    ] {
        v.push(case("matmul_regs4", Small, Matmul { m, n, k, trans_b: t, bias: b }));
    }
    v.push(case("matmul_regs4", Model, Matmul { m: 4 * 257, n: 1536, k: 384, trans_b: true, bias: true }));
    v.push(case("matmul_regs4", Model, Matmul { m: 65536, n: 256, k: 64, trans_b: true, bias: true }));
    v.push(case("matmul_regs4", Model, Matmul { m: 4096, n: 320, k: 1280, trans_b: true, bias: true }));
    v.push(case("matmul_regs4", Model, Matmul { m: 32, n: 32, k: 32768, trans_b: false, bias: false }));
    v.push(case("matmul_regs4", Model, Matmul { m: 8, n: 9, k: 4096, trans_b: true, bias: true }));
    // matmul_regs4 with the GELU fused: both layouts of B, the edges of a tile, a TinyViT MBConv expansion.
    for (m, n, k, t, b) in [(7, 7, 8, true, true), (65, 64, 64, false, true), (130, 72, 100, true, false)] {
        v.push(case("matmul_regs4", Small, MatmulGelu { m, n, k, trans_b: t, bias: b }));
    }
    v.push(case("matmul_regs4", Model, MatmulGelu { m: 65536, n: 256, k: 64, trans_b: true, bias: true }));
    // Weight gradients of a segmentation head (split-K: few output tiles, K = a batch's pixels): dW2 of the
    // LiteMedSAM head (32 × 32 over 8·4096 rows), dW1 of a 1-channel head (8 × 9 over 4096) with a bias.
    v.push(case("matmul", Model, Matmul { m: 32, n: 32, k: 32768, trans_b: false, bias: false }));
    v.push(case("matmul", Model, Matmul { m: 8, n: 9, k: 4096, trans_b: true, bias: true }));
    v.push(case("matmul_f16w", Model, Matmul { m: 8, n: 9, k: 4100, trans_b: false, bias: true }));

    for (n, m, d, same) in [
        (1, 1, 1, false),
        (7, 7, 7, true),
        (63, 65, 64, false),
        (64, 64, 3, true),
        (65, 1000, 7, false),
        (1000, 63, 256, false),
    ] {
        v.push(case("pairwise_sqdist", Small, Pairwise { n, m, d, same }));
        v.push(case("pairwise_sqdist_regs", Small, Pairwise { n, m, d, same }));
    }
    for kernel in ["pairwise_sqdist", "pairwise_sqdist_regs"] {
        v.push(case(kernel, Model, Pairwise { n: 1000, m: 1000, d: 384, same: true }));
        v.push(case(kernel, Model, Pairwise { n: 65, m: 1000, d: 1536, same: false }));
    }
    // k-means++ trials against a pool: a few rows, many columns.
    v.push(case("pairwise_sqdist_regs", Model, Pairwise { n: 8, m: 10_000, d: 256, same: false }));
    // pairwise_sqdist_regs4 takes D % 4 == 0.
    for (n, m, d, same) in
        [(1, 1, 4, false), (7, 7, 8, true), (63, 65, 64, false), (64, 64, 4, true), (1000, 63, 256, false)]
    {
        v.push(case("pairwise_sqdist_regs4", Small, Pairwise { n, m, d, same }));
    }
    v.push(case("pairwise_sqdist_regs4", Model, Pairwise { n: 1000, m: 1000, d: 384, same: true }));
    v.push(case("pairwise_sqdist_regs4", Model, Pairwise { n: 65, m: 1000, d: 1536, same: false }));
    v.push(case("pairwise_sqdist_regs4", Model, Pairwise { n: 8, m: 10_000, d: 256, same: false }));

    for (n, d) in [(1, 1), (7, 7), (63, 64), (64, 65), (65, 256), (1000, 3)] {
        v.push(case("min_dist_update", Small, MinDist { n, d, steps: 3 }));
    }
    v.push(case("min_dist_update", Model, MinDist { n: 10_007, d: 384, steps: 4 }));

    for (rows, cols, ties) in
        [(1, 1, false), (7, 7, true), (63, 64, false), (64, 65, true), (65, 1000, true), (1000, 63, false)]
    {
        v.push(case("argmax_rows", Small, Argmax { rows, cols, ties }));
    }
    v.push(case("argmax_rows", Model, Argmax { rows: 1, cols: 100_003, ties: true }));

    for (rows, cols, k, tiles, ties) in [
        (1, 1, 1, 1, false),
        (7, 7, 7, 1, true),
        (63, 64, 5, 2, false),
        (64, 65, 20, 3, true),
        (65, 1000, 64, 4, false),
        (1000, 63, 20, 1, true),
    ] {
        v.push(case("topk_rows", Small, Topk { rows, cols, k, tiles, ties }));
    }
    v.push(case("topk_rows", Model, Topk { rows: 1000, cols: 1000, k: 20, tiles: 3, ties: false }));

    for (rows, cols) in [(1, 1), (7, 7), (63, 64), (64, 65), (65, 1000), (1000, 63)] {
        v.push(case("softmax_rows", Small, Softmax { rows, cols }));
    }
    v.push(case("softmax_rows", Model, Softmax { rows: 6 * 257, cols: 257 }));

    for (rows, d) in [(1, 1), (7, 7), (63, 64), (64, 65), (65, 1000), (1000, 63)] {
        v.push(case("layernorm", Small, Layernorm { rows, d }));
    }
    v.push(case("layernorm", Model, Layernorm { rows: 257, d: 384 }));
    v.push(case("layernorm", Model, Layernorm { rows: 257, d: 1536 }));

    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("gelu", Small, Gelu { n }));
    }
    v.push(case("gelu", Model, Gelu { n: 257 * 1536 }));

    for (rows, hidden) in [(1, 1), (7, 7), (3, 64), (64, 65), (5, 1000)] {
        v.push(case("swiglu", Small, Swiglu { rows, hidden }));
    }
    // dinov2-giant: 257 tokens, hidden (int(1536·4·2/3) + 7) // 8 · 8 = 4096.
    v.push(case("swiglu", Model, Swiglu { rows: 257, hidden: 4096 }));

    for (rows, cols, op) in [
        (1, 1, ops::Reduce::Sum),
        (7, 7, ops::Reduce::Mean),
        (63, 64, ops::Reduce::Max),
        (64, 65, ops::Reduce::Sum),
        (65, 1000, ops::Reduce::Mean),
        (1000, 63, ops::Reduce::Max),
    ] {
        v.push(case("reduce_rows", Small, Reduce { rows, cols, op }));
    }
    v.push(case("reduce_rows", Model, Reduce { rows: 256, cols: 64 * 64, op: ops::Reduce::Mean }));

    for (images, classes, pixels) in [(1, 1, 1), (1, 2, 7), (2, 3, 63), (1, 4, 64), (3, 2, 65), (1, 1, 1000)] {
        v.push(case("entropy_map", Small, Entropy { images, classes, pixels }));
    }
    v.push(case("entropy_map", Model, Entropy { images: 2, classes: 2, pixels: 256 * 256 }));

    let geom = |h, w, c, k, stride, pad| ops::ConvGeom { h, w, c, k, stride, pad };
    for (h, w, c, k, s, p) in [
        (1, 1, 1, 1, 1, 0),
        (7, 7, 3, 3, 1, 1),
        (63, 65, 5, 3, 2, 1),
        (64, 64, 7, 3, 1, 1),
        (65, 63, 64, 3, 2, 1),
        (9, 6, 3, 3, 1, 0),
        (10, 11, 4, 5, 1, 2),
        (13, 10, 2, 5, 3, 2),
    ] {
        v.push(case("dwconv2d", Small, Dwconv { g: geom(h, w, c, k, s, p) }));
    }
    // TinyViT: PatchMerging 128→64 (stride 2), local conv at 64×64×320.
    v.push(case("dwconv2d", Model, Dwconv { g: geom(128, 128, 160, 3, 2, 1) }));
    v.push(case("dwconv2d", Model, Dwconv { g: geom(64, 64, 320, 3, 1, 1) }));
    for (h, w, c, k, s, p) in [(1, 1, 1, 1, 1, 0), (7, 7, 3, 3, 1, 1), (65, 63, 2, 3, 2, 1), (28, 28, 3, 14, 14, 0)] {
        v.push(case("im2col", Small, Im2col { g: geom(h, w, c, k, s, p) }));
    }
    // The LiteMedSAM neck's 3×3 conv and DINOv2's 14×14 patch embedding.
    v.push(case("im2col", Model, Im2col { g: geom(64, 64, 256, 3, 1, 1) }));
    v.push(case("im2col", Model, Im2col { g: geom(224, 224, 3, 14, 14, 0) }));
    // im2col_k3c4: 3×3 only, C % 4 == 0; strides 1 and 2, padding 0 and 1; the neck and the seg head's conv.
    for (h, w, c, s, p) in [(1, 1, 4, 1, 1), (7, 7, 4, 1, 1), (65, 63, 8, 2, 1), (9, 10, 12, 1, 0), (3, 3, 4, 1, 0)] {
        v.push(case("im2col_k3c4", Small, Im2col { g: geom(h, w, c, 3, s, p) }));
    }
    v.push(case("im2col_k3c4", Model, Im2col { g: geom(64, 64, 256, 3, 1, 1) }));
    for (h, w, c, hp, wp) in [(1, 1, 1, 7, 7), (7, 7, 3, 7, 7), (63, 65, 3, 70, 70), (64, 64, 5, 65, 70)] {
        v.push(case("pad2d", Small, Pad { h, w, c, hp, wp }));
        v.push(case("crop_add2d", Small, CropAdd { h, w, c, hp, wp }));
    }
    v.push(case("pad2d", Model, Pad { h: 128, w: 128, c: 128, hp: 133, wp: 133 }));
    v.push(case("crop_add2d", Model, CropAdd { h: 64, w: 64, c: 160, hp: 70, wp: 70 }));
    for (g, bias) in [
        (ops::AttnGeom::interleaved(7, 7, 7, 1, 4), true),
        (ops::AttnGeom::interleaved(14, 14, 7, 2, 8), true),
        (ops::AttnGeom::sequence(7, 3, 8), false),
        (ops::AttnGeom::sequence(65, 2, 64), false),
        // Head dim 32 in 7×7 windows (49 queries: on CPU adapters the second query of threads 17..31 is past the
        // window), as in TinyViT stages 1 and 3.
        (ops::AttnGeom::interleaved(14, 14, 7, 2, 32), true),
    ] {
        v.push(case("attention", Small, Attention { g, bias }));
    }
    // TinyViT stage 2 (70×70 padded grid, 14×14 windows, 5 heads of 32) and ViT-S/14 on 257 tokens.
    v.push(case("attention", Model, Attention { g: ops::AttnGeom::interleaved(70, 70, 14, 5, 32), bias: true }));
    v.push(case("attention", Model, Attention { g: ops::AttnGeom::sequence(257, 6, 64), bias: false }));
    for (nq, nk, heads, hd) in [(1, 1, 1, 4), (7, 7, 8, 32), (7, 65, 2, 16), (65, 7, 3, 8), (63, 1000, 1, 64)] {
        v.push(case("cross_attention", Small, CrossAttention { g: ops::CrossAttnGeom::dense(nq, nk, heads, hd) }));
    }
    // LiteMedSAM's decoder: tokens → image and image → tokens (8 heads of 16 after the 2× downsample).
    v.push(case("cross_attention", Model, CrossAttention { g: ops::CrossAttnGeom::dense(7, 4096, 8, 16) }));
    v.push(case("cross_attention", Model, CrossAttention { g: ops::CrossAttnGeom::dense(4096, 7, 8, 16) }));
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("relu", Small, Relu { n }));
    }
    v.push(case("relu", Model, Relu { n: 7 * 2048 }));
    for (h, w, c, r) in [(1, 1, 1, 1), (1, 1, 3, 2), (7, 5, 3, 2), (8, 9, 65, 2), (3, 4, 5, 3)] {
        v.push(case("depth_to_space", Small, DepthToSpace { h, w, c, r }));
    }
    // The decoder's two transposed convolutions: 64×64×256 → 128×128×64 and → 256×256×32.
    v.push(case("depth_to_space", Model, DepthToSpace { h: 64, w: 64, c: 64, r: 2 }));
    v.push(case("depth_to_space", Model, DepthToSpace { h: 128, w: 128, c: 32, r: 2 }));
    for (rows, classes, smoothing) in
        [(1, 1, 0.0), (7, 2, 0.1), (63, 3, 0.0), (64, 7, 0.2), (65, 11, 0.1), (1000, 2, 0.0)]
    {
        v.push(case("softmax_xent", Small, SoftmaxXent { rows, classes, smoothing }));
    }
    // A segmentation batch of 8 at 256×256 with 2 classes.
    v.push(case("softmax_xent", Model, SoftmaxXent { rows: 8 * 256 * 256, classes: 2, smoothing: 0.0 }));
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("adamw", Small, Adamw { n, steps: 3 }));
        v.push(case("sgd_momentum", Small, Sgd { n, steps: 3 }));
    }
    // A 256-channel 3×3 conv layer's weights.
    v.push(case("adamw", Model, Adamw { n: 256 * 256 * 9, steps: 2 }));
    v.push(case("sgd_momentum", Model, Sgd { n: 256 * 256 * 9, steps: 2 }));
    for (rows, cols) in [(1, 1), (7, 7), (63, 64), (64, 65), (65, 1000), (1000, 3)] {
        v.push(case("transpose", Small, Transpose { rows, cols }));
    }
    v.push(case("transpose", Model, Transpose { rows: 4096, cols: 256 }));
    for (n, k, d) in [(1, 1, 1), (7, 3, 7), (63, 7, 64), (65, 64, 3), (1000, 65, 256)] {
        v.push(case("segment_mean", Small, SegmentMean { n, k, d }));
    }
    // k-means over 20k LiteMedSAM-sized features into 500 clusters (typiclust-knn's cap).
    v.push(case("segment_mean", Model, SegmentMean { n: 20_000, k: 500, d: 256 }));
    for (rows, cols, potential) in
        [(1, 1, false), (7, 7, true), (63, 64, false), (64, 65, true), (65, 1000, false), (1000, 63, true)]
    {
        v.push(case("facility_gain", Small, FacilityGain { rows, cols, potential }));
    }
    v.push(case("facility_gain", Model, FacilityGain { rows: 128, cols: 100_003, potential: false }));
    v.push(case("facility_gain", Model, FacilityGain { rows: 8, cols: 100_003, potential: true }));
    for (n, classes, tiles) in [(1, 1, 1), (7, 2, 1), (63, 5, 2), (64, 1, 3), (65, 7, 2), (1000, 90, 3)] {
        v.push(case("other_label_min", Small, OtherLabelMin { n, classes, tiles }));
        v.push(case("radius_edges", Small, RadiusEdges { n, tiles }));
    }
    v.push(case("other_label_min", Model, OtherLabelMin { n: 2048, classes: 1000, tiles: 4 }));
    v.push(case("radius_edges", Model, RadiusEdges { n: 2048, tiles: 4 }));
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("gelu_backward", Small, GeluBackward { n }));
    }
    // The segmentation head's hidden layer: a batch of 8 at 64×64 × 32 channels.
    v.push(case("gelu_backward", Model, GeluBackward { n: 8 * 4096 * 32 }));
    for (rows, d) in [(1, 1), (7, 7), (63, 32), (64, 64), (65, 3), (1000, 65)] {
        v.push(case("layernorm_backward", Small, LayernormBackward { rows, d }));
    }
    v.push(case("layernorm_backward", Model, LayernormBackward { rows: 8 * 4096, d: 32 }));
    for (rows, robust) in [(1, false), (7, true), (65, false), (1000, true), (4097, false), (9000, true)] {
        v.push(case("dice_loss", Small, DiceLoss { rows, robust }));
    }
    // A segmentation batch of 8 at 256×256.
    v.push(case("dice_loss", Model, DiceLoss { rows: 8 * 256 * 256, robust: false }));
    v.push(case("dice_loss", Model, DiceLoss { rows: 8 * 256 * 256, robust: true }));
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("ema_update", Small, Ema { n }));
    }
    // The LiteMedSAM segmentation head's 3×3 conv weights.
    v.push(case("ema_update", Model, Ema { n: 32 * 256 * 9 }));
    for (rows, classes) in [(1, 1), (7, 2), (63, 3), (64, 7), (65, 11), (1000, 2)] {
        v.push(case("softmax_mse", Small, SoftmaxMse { rows, classes }));
    }
    v.push(case("softmax_mse", Model, SoftmaxMse { rows: 8 * 256 * 256, classes: 2 }));
    v
}

fn seed_of(label: &str, kernel: &str) -> u64 {
    // FNV-1a: a stable seed per case on every platform.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kernel.bytes().chain(label.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// `tiles` contiguous blocks covering 0..n.
fn tile_blocks(n: usize, tiles: usize) -> Vec<(usize, usize)> {
    let t = n.div_ceil(tiles.max(1));
    (0..tiles).map(|i| (i * t, ((i + 1) * t).min(n))).filter(|(a, b)| a < b).collect()
}

/// Rows r0..r1 and columns c0..c1 of an n×n matrix, row-major.
fn sub_tile(m: &[f32], n: usize, r0: usize, r1: usize, c0: usize, c1: usize) -> Vec<f32> {
    (r0..r1).flat_map(|r| m[r * n + c0..r * n + c1].iter().copied()).collect()
}

fn ties_vec(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.below(4) as f32).collect()
}

struct Outcome {
    cmp: Option<Comparison>,
    elements: usize,
    gpu_ms: f64,
    cpu_ms: f64,
}

/// Run one case: the CPU twin, and the kernel on `ctx` when given, then compare.
pub async fn run(ctx: Option<&GpuContext>, c: &Case) -> CaseReport {
    let base = CaseReport {
        kernel: c.kernel,
        case: c.label.clone(),
        group: c.group,
        passed: None,
        skipped: false,
        detail: String::new(),
        max_abs_err: 0.0,
        elements: 0,
        gpu_ms: 0.0,
        cpu_ms: 0.0,
    };
    match run_inner(ctx, c).await {
        Ok(o) => {
            let (passed, detail, err) = match &o.cmp {
                Some(cmp) => (Some(cmp.passed()), cmp.to_string(), cmp.max_abs_err),
                None => (None, "CPU twin only (no GPU)".to_string(), 0.0),
            };
            CaseReport {
                passed,
                detail,
                max_abs_err: err,
                elements: o.elements,
                gpu_ms: o.gpu_ms,
                cpu_ms: o.cpu_ms,
                ..base
            }
        }
        Err(e @ crate::Error::MissingFeature { .. }) => {
            CaseReport { skipped: true, detail: format!("skipped: {e}"), ..base }
        }
        Err(e) => CaseReport { passed: Some(false), detail: format!("error: {e}"), ..base },
    }
}

/// Run every case accepted by `filter`.
pub async fn run_all(ctx: Option<&GpuContext>, filter: impl Fn(&Case) -> bool) -> Vec<CaseReport> {
    let mut out = Vec::new();
    for c in cases().iter().filter(|c| filter(c)) {
        out.push(run(ctx, c).await);
    }
    out
}

/// Per kernel: (kernel, cases passed, cases run, cases skipped). A kernel passes when all the cases it ran
/// pass; a kernel whose cases were all skipped (a feature the device lacks) neither passes nor fails.
pub fn summarize(reports: &[CaseReport]) -> Vec<(&'static str, usize, usize, usize)> {
    let mut out: Vec<(&'static str, usize, usize, usize)> = Vec::new();
    for r in reports {
        let ok = r.passed == Some(true);
        let (ran, skipped) = if r.skipped { (0, 1) } else { (1, 0) };
        match out.iter_mut().find(|e| e.0 == r.kernel) {
            Some(e) => {
                e.1 += ok as usize;
                e.2 += ran;
                e.3 += skipped;
            }
            None => out.push((r.kernel, ok as usize, ran, skipped)),
        }
    }
    out
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

async fn run_inner(ctx: Option<&GpuContext>, c: &Case) -> Result<Outcome> {
    let mut rng = Rng::new(seed_of(&c.label, c.kernel));
    macro_rules! timed {
        ($e:expr) => {{
            let t = Instant::now();
            let r = $e;
            (r, ms_since(t))
        }};
    }
    match c.spec.clone() {
        Spec::Matmul { m, n, k, trans_b, bias } | Spec::MatmulGelu { m, n, k, trans_b, bias } => {
            let fused_gelu = matches!(c.spec, Spec::MatmulGelu { .. });
            let a = rng.uniform_vec(m * k, -1.0, 1.0);
            let b = rng.uniform_vec(k * n, -1.0, 1.0);
            let bv = rng.uniform_vec(n, -1.0, 1.0);
            // matmul_f16w: B is stored in f16 on the GPU; its twin widens the same f16 values.
            // (Without shader-f16, upload_f16 fails with MissingFeature and the case is reported as skipped.)
            let half = c.kernel == "matmul_f16w";
            let (want, cpu_ms) = timed!(if half {
                let bh = cpu::matmul_f16w::to_f16_bits(&b);
                cpu::matmul_f16w(&a, &bh, bias.then_some(&bv[..]), m, n, k, trans_b)
            } else if c.kernel == "matmul_regs" {
                cpu::matmul_regs(&a, &b, bias.then_some(&bv[..]), m, n, k, trans_b)
            } else if c.kernel == "matmul_regs4" {
                cpu::matmul_regs4(&a, &b, bias.then_some(&bv[..]), m, n, k, trans_b, fused_gelu)
            } else {
                cpu::matmul(&a, &b, bias.then_some(&bv[..]), m, n, k, trans_b)
            });
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let (ba, bbias) = (ctx.upload("selftest", &a)?, ctx.upload("selftest", &bv)?);
                let bb = if half { ctx.upload_f16("selftest", &b)? } else { ctx.upload("selftest", &b)? };
                let out = ctx.storage("selftest", (m * n * 4) as u64)?;
                let mut enc = ctx.encoder();
                let bias = bias.then_some(&bbias);
                match c.kernel {
                    "matmul_f16w" => ops::matmul_f16w(ctx, &mut enc, &ba, &bb, bias, &out, m, n, k, trans_b).await?,
                    "matmul_regs" => ops::matmul_regs(ctx, &mut enc, &ba, &bb, bias, &out, m, n, k, trans_b).await?,
                    "matmul_regs4" if fused_gelu => {
                        ops::matmul_regs4_gelu(ctx, &mut enc, &ba, &bb, bias, &out, m, n, k, trans_b).await?
                    }
                    "matmul_regs4" => ops::matmul_regs4(ctx, &mut enc, &ba, &bb, bias, &out, m, n, k, trans_b).await?,
                    _ => ops::matmul(ctx, &mut enc, &ba, &bb, bias, &out, m, n, k, trans_b).await?,
                }
                ctx.submit(enc);
                read_f32(ctx, &out, m * n).await?
            });
            // Sums of k products of values in [-1, 1]: scale the absolute tolerance with sqrt(k).
            let tol = Tolerance::new(1e-4, 1e-5 * (k as f32).sqrt().max(1.0));
            Ok(Outcome { cmp: Some(compare(&got, &want, tol)), elements: want.len(), gpu_ms, cpu_ms })
        }
        Spec::Pairwise { n, m, d, same } => {
            let a = rng.uniform_vec(n * d, -1.0, 1.0);
            let b = if same { a[..m * d].to_vec() } else { rng.uniform_vec(m * d, -1.0, 1.0) };
            let (want, cpu_ms) = timed!(match c.kernel {
                "pairwise_sqdist_regs" => cpu::pairwise_sqdist_regs(&a, &b, n, m, d),
                "pairwise_sqdist_regs4" => cpu::pairwise_sqdist_regs4(&a, &b, n, m, d),
                _ => cpu::pairwise_sqdist(&a, &b, n, m, d),
            });
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let (ba, bb) = (ctx.upload("selftest", &a)?, ctx.upload("selftest", &b)?);
                let out = ctx.storage("selftest", (n * m * 4) as u64)?;
                let mut enc = ctx.encoder();
                match c.kernel {
                    "pairwise_sqdist_regs" => ops::pairwise_sqdist_regs(ctx, &mut enc, &ba, &bb, &out, n, m, d).await?,
                    "pairwise_sqdist_regs4" => {
                        ops::pairwise_sqdist_regs4(ctx, &mut enc, &ba, &bb, &out, n, m, d).await?
                    }
                    _ => ops::pairwise_sqdist(ctx, &mut enc, &ba, &bb, &out, n, m, d).await?,
                }
                ctx.submit(enc);
                read_f32(ctx, &out, n * m).await?
            });
            // The norm expansion loses precision relative to the norms, not to the distance: the absolute
            // tolerance scales with ‖a‖² + ‖b‖² (≤ 2d/3 on average here).
            let tol = Tolerance::new(1e-4, 1e-5 * d as f32);
            Ok(Outcome { cmp: Some(compare(&got, &want, tol)), elements: want.len(), gpu_ms, cpu_ms })
        }
        Spec::MinDist { n, d, steps } => {
            let x = rng.uniform_vec(n * d, -1.0, 1.0);
            let centers: Vec<usize> = (0..steps).map(|_| rng.below(n as u32) as usize).collect();
            let (want, cpu_ms) = timed!({
                let mut mind = vec![0f32; n];
                for (s, &ci) in centers.iter().enumerate() {
                    cpu::min_dist_update(&x, &mut mind, n, d, ci, s == 0);
                }
                mind
            });
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let mind = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                for (s, &ci) in centers.iter().enumerate() {
                    ops::min_dist_update(ctx, &mut enc, &bx, &mind, n, d, ci, s == 0).await?;
                }
                ctx.submit(enc);
                read_f32(ctx, &mind, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::BALANCED)), elements: n, gpu_ms, cpu_ms })
        }
        Spec::Argmax { rows, cols, ties } => {
            let x = if ties { ties_vec(&mut rng, rows * cols) } else { rng.uniform_vec(rows * cols, -1.0, 1.0) };
            let ((wv, wi), cpu_ms) = timed!(cpu::argmax_rows(&x, rows, cols));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: rows, gpu_ms: 0.0, cpu_ms });
            };
            let ((gv, gi), gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let (ov, oi) =
                    (ctx.storage("selftest", (rows * 4) as u64)?, ctx.storage("selftest", (rows * 4) as u64)?);
                let mut enc = ctx.encoder();
                ops::argmax_rows(ctx, &mut enc, &bx, &ov, &oi, rows, cols).await?;
                ctx.submit(enc);
                (read_f32(ctx, &ov, rows).await?, read_u32(ctx, &oi, rows).await?)
            });
            let cmp = merge(compare(&gv, &wv, Tolerance::new(0.0, 0.0)), compare_exact_u32(&gi, &wi));
            Ok(Outcome { cmp: Some(cmp), elements: rows, gpu_ms, cpu_ms })
        }
        Spec::Topk { rows, cols, k, tiles, ties } => {
            let x = if ties { ties_vec(&mut rng, rows * cols) } else { rng.uniform_vec(rows * cols, 0.0, 10.0) };
            let tile = cols.div_ceil(tiles);
            let bounds: Vec<(usize, usize)> =
                (0..tiles).map(|t| (t * tile, ((t + 1) * tile).min(cols))).filter(|(a, b)| a < b).collect();
            let slice_tile = |a: usize, b: usize| -> Vec<f32> {
                (0..rows).flat_map(|r| x[r * cols + a..r * cols + b].iter().copied()).collect()
            };
            let ((wv, wi), cpu_ms) = timed!({
                let mut acc: Option<(Vec<f32>, Vec<u32>)> = None;
                for &(a, b) in &bounds {
                    let t = slice_tile(a, b);
                    let prev = acc.as_ref().map(|(v, i)| (&v[..], &i[..]));
                    acc = Some(cpu::topk_rows(&t, rows, b - a, k, a, prev));
                }
                acc.unwrap_or_default()
            });
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: rows * k, gpu_ms: 0.0, cpu_ms });
            };
            let ((gv, gi), gpu_ms) = timed!({
                let ov = ctx.storage("selftest", (rows * k * 4) as u64)?;
                let oi = ctx.storage("selftest", (rows * k * 4) as u64)?;
                let mut enc = ctx.encoder();
                let mut keep = Vec::new();
                for (t, &(a, b)) in bounds.iter().enumerate() {
                    let bx = ctx.upload("selftest", &slice_tile(a, b))?;
                    ops::topk_rows(ctx, &mut enc, &bx, &ov, &oi, rows, b - a, k, a, t > 0).await?;
                    keep.push(bx);
                }
                ctx.submit(enc);
                (read_f32(ctx, &ov, rows * k).await?, read_u32(ctx, &oi, rows * k).await?)
            });
            let cmp = merge(compare(&gv, &wv, Tolerance::new(0.0, 0.0)), compare_exact_u32(&gi, &wi));
            Ok(Outcome { cmp: Some(cmp), elements: rows * k, gpu_ms, cpu_ms })
        }
        Spec::Softmax { rows, cols } => {
            let x = rng.uniform_vec(rows * cols, -10.0, 10.0);
            let (want, cpu_ms) = timed!(cpu::softmax_rows(&x, rows, cols));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.storage("selftest", (rows * cols * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::softmax_rows(ctx, &mut enc, &bx, &y, rows, cols).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, rows * cols).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: want.len(), gpu_ms, cpu_ms })
        }
        Spec::Layernorm { rows, d } => {
            let x: Vec<f32> = rng.uniform_vec(rows * d, -3.0, 5.0);
            let w = rng.uniform_vec(d, 0.5, 1.5);
            let b = rng.uniform_vec(d, -0.5, 0.5);
            let eps = 1e-5;
            let (want, cpu_ms) = timed!(cpu::layernorm(&x, &w, &b, rows, d, eps));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let (bx, bw, bb) =
                    (ctx.upload("selftest", &x)?, ctx.upload("selftest", &w)?, ctx.upload("selftest", &b)?);
                let y = ctx.storage("selftest", (rows * d * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::layernorm(ctx, &mut enc, &bx, &bw, &bb, &y, rows, d, eps).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, rows * d).await?
            });
            Ok(Outcome {
                cmp: Some(compare(&got, &want, Tolerance::new(1e-5, 1e-5))),
                elements: want.len(),
                gpu_ms,
                cpu_ms,
            })
        }
        Spec::Ema { n } => {
            let t0 = rng.uniform_vec(n, -1.0, 1.0);
            let st = rng.uniform_vec(n, -1.0, 1.0);
            let (want, cpu_ms) = timed!({
                let mut t = t0.clone();
                cpu::ema_update(&mut t, &st, 0.99);
                cpu::ema_update(&mut t, &st, 0.5);
                t
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bt, bs) = (ctx.upload("selftest", &t0)?, ctx.upload("selftest", &st)?);
                let mut enc = ctx.encoder();
                ops::ema_update(ctx, &mut enc, &bt, &bs, n, 0.99).await?;
                ops::ema_update(ctx, &mut enc, &bt, &bs, n, 0.5).await?;
                ctx.submit(enc);
                read_f32(ctx, &bt, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(1e-6, 1e-6))), elements: n, gpu_ms, cpu_ms })
        }
        Spec::SoftmaxMse { rows, classes } => {
            let z = rng.uniform_vec(rows * classes, -8.0, 8.0);
            let zt = rng.uniform_vec(rows * classes, -8.0, 8.0);
            let scale = 1.0 / rows as f32;
            let ((wl, wg), cpu_ms) = timed!(cpu::softmax_mse(&z, &zt, rows, classes, scale));
            let n = rows * (classes + 1);
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let ((gl, gg), gpu_ms) = timed!({
                let (bz, bt) = (ctx.upload("selftest", &z)?, ctx.upload("selftest", &zt)?);
                let loss = ctx.storage("selftest", (rows * 4) as u64)?;
                let dz = ctx.storage("selftest", (rows * classes * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::softmax_mse(ctx, &mut enc, &bz, &bt, &loss, &dz, rows, classes, scale).await?;
                ctx.submit(enc);
                (read_f32(ctx, &loss, rows).await?, read_f32(ctx, &dz, rows * classes).await?)
            });
            let cmp = merge(
                compare(&gl, &wl, Tolerance::new(1e-5, 1e-6)),
                compare(&gg, &wg, Tolerance::new(1e-4, 1e-6 * scale)),
            );
            Ok(Outcome { cmp: Some(cmp), elements: n, gpu_ms, cpu_ms })
        }
        Spec::GeluBackward { n } => {
            let mut x = rng.uniform_vec(n, -6.0, 6.0);
            for (i, v) in [0.0f32, -10.0, 10.0, 4.0, -4.0, 1e-6].into_iter().enumerate().take(n) {
                x[i] = v;
            }
            let dy = rng.uniform_vec(n, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::gelu_backward(&x, &dy));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let (bx, bd) = (ctx.upload("selftest", &x)?, ctx.upload("selftest", &dy)?);
                let dx = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::gelu_backward(ctx, &mut enc, &bx, &bd, &dx, n).await?;
                ctx.submit(enc);
                read_f32(ctx, &dx, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(1e-5, 1e-6))), elements: n, gpu_ms, cpu_ms })
        }
        Spec::LayernormBackward { rows, d } => {
            let x = rng.uniform_vec(rows * d, -3.0, 5.0);
            let dy = rng.uniform_vec(rows * d, -1.0, 1.0);
            let eps = 1e-5;
            let (want, cpu_ms) = timed!(cpu::layernorm_backward(&x, &dy, rows, d, eps));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let (bx, bd) = (ctx.upload("selftest", &x)?, ctx.upload("selftest", &dy)?);
                let dx = ctx.storage("selftest", (rows * d * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::layernorm_backward(ctx, &mut enc, &bx, &bd, &dx, rows, d, eps).await?;
                ctx.submit(enc);
                read_f32(ctx, &dx, rows * d).await?
            });
            Ok(Outcome {
                cmp: Some(compare(&got, &want, Tolerance::new(1e-4, 1e-5))),
                elements: want.len(),
                gpu_ms,
                cpu_ms,
            })
        }
        Spec::DiceLoss { rows, robust } => {
            let logits = rng.uniform_vec(rows * 2, -6.0, 6.0);
            // Every 7th pixel ignored (label 2); foreground where a smooth pattern says so.
            let labels: Vec<u32> = (0..rows).map(|r| if r % 7 == 6 { 2 } else { rng.below(2) }).collect();
            let mode = if robust { cpu::DiceMode::NoiseRobust { gamma: 1.5 } } else { cpu::DiceMode::Soft };
            let scale = 0.5;
            let ((wl, wg), cpu_ms) = timed!(cpu::dice_loss(&logits, &labels, rows, mode, scale));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: rows * 2, gpu_ms: 0.0, cpu_ms }) };
            let len = ops::dice_sums_len(rows);
            let ((gl, gg), gpu_ms) = timed!({
                let (bz, by) = (ctx.upload("selftest", &logits)?, ctx.upload("selftest", &labels)?);
                let sums = ctx.storage("selftest", (len * 4) as u64)?;
                let grad = ctx.storage("selftest", (rows * 8) as u64)?;
                let mut enc = ctx.encoder();
                ops::dice_loss(ctx, &mut enc, &bz, &by, &sums, &grad, rows, mode, scale).await?;
                ctx.submit(enc);
                (read_f32(ctx, &sums, len).await?[len - 2], read_f32(ctx, &grad, rows * 2).await?)
            });
            // The gradient's size is about 1/rows: compare relative to its largest value.
            let gmax = wg.iter().fold(0f32, |a, &v| a.max(v.abs()));
            let cmp = merge(
                compare(&[gl], &[wl], Tolerance::new(1e-4, 1e-5)),
                compare(&gg, &wg, Tolerance::new(1e-3, 1e-4 * gmax)),
            );
            Ok(Outcome { cmp: Some(cmp), elements: rows * 2, gpu_ms, cpu_ms })
        }
        Spec::Gelu { n } => {
            let mut x = rng.uniform_vec(n, -6.0, 6.0);
            // Make sure the clamped tails and the origin are exercised.
            for (i, v) in [0.0f32, -10.0, 10.0, 4.0, -4.0, 1e-6].into_iter().enumerate().take(n) {
                x[i] = v;
            }
            let (want, cpu_ms) = timed!(cpu::gelu(&x));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::gelu(ctx, &mut enc, &bx, &y, n).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: n, gpu_ms, cpu_ms })
        }
        Spec::Swiglu { rows, hidden } => {
            let mut x = rng.uniform_vec(rows * 2 * hidden, -8.0, 8.0);
            // Far tails of the gate (sigmoid → 0 and → 1) and the origin.
            for (i, v) in [0.0f32, -100.0, 100.0, -20.0, 20.0, 1e-6].into_iter().enumerate().take(rows * hidden) {
                x[(i / hidden) * 2 * hidden + i % hidden] = v;
            }
            let (want, cpu_ms) = timed!(cpu::swiglu(&x, rows, hidden));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: rows * hidden, gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.storage("selftest", (rows * hidden * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::swiglu(ctx, &mut enc, &bx, &y, rows, hidden).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, rows * hidden).await?
            });
            let cmp = compare(&got, &want, Tolerance::STRICT);
            Ok(Outcome { cmp: Some(cmp), elements: rows * hidden, gpu_ms, cpu_ms })
        }
        Spec::Reduce { rows, cols, op } => {
            let x = rng.uniform_vec(rows * cols, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::reduce_rows(&x, rows, cols, op));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: rows, gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let out = ctx.storage("selftest", (rows * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::reduce_rows(ctx, &mut enc, &bx, &out, rows, cols, op).await?;
                ctx.submit(enc);
                read_f32(ctx, &out, rows).await?
            });
            let tol = Tolerance::new(1e-5, 2e-7 * (cols as f32).sqrt().max(1.0));
            Ok(Outcome { cmp: Some(compare(&got, &want, tol)), elements: rows, gpu_ms, cpu_ms })
        }
        Spec::Entropy { images, classes, pixels } => {
            let x = rng.uniform_vec(images * classes * pixels, -8.0, 8.0);
            let ((we, wm), cpu_ms) = timed!(cpu::entropy_map(&x, images, classes, pixels));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: we.len(), gpu_ms: 0.0, cpu_ms });
            };
            let ((ge, gm), gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let e = ctx.storage("selftest", (images * pixels * 4) as u64)?;
                let mx = ctx.storage("selftest", (images * pixels * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::entropy_map(ctx, &mut enc, &bx, &e, &mx, images, classes, pixels).await?;
                ctx.submit(enc);
                (read_f32(ctx, &e, images * pixels).await?, read_f32(ctx, &mx, images * pixels).await?)
            });
            let tol = Tolerance::new(1e-4, 1e-5);
            let cmp = merge(compare(&ge, &we, tol), compare(&gm, &wm, tol));
            Ok(Outcome { cmp: Some(cmp), elements: we.len(), gpu_ms, cpu_ms })
        }
        Spec::Dwconv { g } => {
            let (ho, wo) = g.out_hw();
            let x = rng.uniform_vec(g.h * g.w * g.c, -1.0, 1.0);
            let wt = rng.uniform_vec(g.c * g.k * g.k, -1.0, 1.0);
            let b = rng.uniform_vec(g.c, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::dwconv2d(&x, &wt, &b, g));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bx, bw, bb) =
                    (ctx.upload("selftest", &x)?, ctx.upload("selftest", &wt)?, ctx.upload("selftest", &b)?);
                let y = ctx.storage("selftest", (ho * wo * g.c * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::dwconv2d(ctx, &mut enc, &bx, &bw, &bb, &y, g).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, ho * wo * g.c).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::BALANCED)), elements: want.len(), gpu_ms, cpu_ms })
        }
        Spec::Im2col { g } => {
            let (ho, wo) = g.out_hw();
            let n = ho * wo * g.c * g.k * g.k;
            let x = rng.uniform_vec(g.h * g.w * g.c, -1.0, 1.0);
            let k3c4 = c.kernel == "im2col_k3c4";
            let (want, cpu_ms) = timed!(if k3c4 { cpu::im2col_k3c4(&x, g) } else { cpu::im2col(&x, g) });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                if k3c4 {
                    ops::im2col_k3c4(ctx, &mut enc, &bx, &y, g).await?;
                } else {
                    ops::im2col(ctx, &mut enc, &bx, &y, g).await?;
                }
                ctx.submit(enc);
                read_f32(ctx, &y, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(0.0, 0.0))), elements: n, gpu_ms, cpu_ms })
        }
        Spec::Pad { h, w, c, hp, wp } => {
            let x = rng.uniform_vec(h * w * c, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::pad2d(&x, h, w, c, hp, wp));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.upload("selftest", &vec![7f32; hp * wp * c])?; // padding must overwrite, not keep
                let mut enc = ctx.encoder();
                ops::pad2d(ctx, &mut enc, &bx, &y, h, w, c, hp, wp).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, hp * wp * c).await?
            });
            Ok(Outcome {
                cmp: Some(compare(&got, &want, Tolerance::new(0.0, 0.0))),
                elements: want.len(),
                gpu_ms,
                cpu_ms,
            })
        }
        Spec::CropAdd { h, w, c, hp, wp } => {
            let x = rng.uniform_vec(hp * wp * c, -1.0, 1.0);
            let y0 = rng.uniform_vec(h * w * c, -1.0, 1.0);
            let (want, cpu_ms) = timed!({
                let mut y = y0.clone();
                cpu::crop_add2d(&x, &mut y, h, w, c, wp);
                y
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bx, by) = (ctx.upload("selftest", &x)?, ctx.upload("selftest", &y0)?);
                let mut enc = ctx.encoder();
                ops::crop_add2d(ctx, &mut enc, &bx, &by, h, w, c, hp, wp).await?;
                ctx.submit(enc);
                read_f32(ctx, &by, h * w * c).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: want.len(), gpu_ms, cpu_ms })
        }
        Spec::Attention { g, bias } => {
            let n = g.ws_h * g.ws_w;
            let qkv = rng.uniform_vec(g.tokens() * g.qkv_stride, -1.0, 1.0);
            let biases = rng.uniform_vec(g.heads * n, -2.0, 2.0);
            let out_len = g.tokens() * g.heads * g.hd;
            let (want, cpu_ms) = timed!(cpu::attention(&qkv, bias.then_some(&biases[..]), g));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: out_len, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bq, bb) = (ctx.upload("selftest", &qkv)?, ctx.upload("selftest", &biases)?);
                let out = ctx.storage("selftest", (out_len * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::attention(ctx, &mut enc, &bq, bias.then_some(&bb), &out, g).await?;
                ctx.submit(enc);
                read_f32(ctx, &out, out_len).await?
            });
            Ok(Outcome {
                cmp: Some(compare(&got, &want, Tolerance::new(1e-4, 1e-5))),
                elements: out_len,
                gpu_ms,
                cpu_ms,
            })
        }
        Spec::CrossAttention { g } => {
            let q = rng.uniform_vec(g.nq * g.q_stride, -1.0, 1.0);
            let k = rng.uniform_vec(g.nk * g.k_stride, -1.0, 1.0);
            let v = rng.uniform_vec(g.nk * g.v_stride, -1.0, 1.0);
            let out_len = g.nq * g.out_stride;
            let (want, cpu_ms) = timed!(cpu::cross_attention(&q, &k, &v, g));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: out_len, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bq, bk, bv) =
                    (ctx.upload("selftest", &q)?, ctx.upload("selftest", &k)?, ctx.upload("selftest", &v)?);
                let out = ctx.storage("selftest", (out_len * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::cross_attention(ctx, &mut enc, &bq, &bk, &bv, &out, g).await?;
                ctx.submit(enc);
                read_f32(ctx, &out, out_len).await?
            });
            Ok(Outcome {
                cmp: Some(compare(&got, &want, Tolerance::new(1e-4, 1e-5))),
                elements: out_len,
                gpu_ms,
                cpu_ms,
            })
        }
        Spec::SoftmaxXent { rows, classes, smoothing } => {
            let logits = rng.uniform_vec(rows * classes, -8.0, 8.0);
            // Every 5th row ignored (label = classes).
            let labels: Vec<u32> =
                (0..rows).map(|r| if r % 5 == 4 { classes as u32 } else { rng.below(classes as u32) }).collect();
            let scale = 1.0 / rows as f32;
            let ((wl, wg), cpu_ms) = timed!(cpu::softmax_xent(&logits, &labels, rows, classes, smoothing, scale));
            let n = rows * (classes + 1);
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let ((gl, gg), gpu_ms) = timed!({
                let (bz, by) = (ctx.upload("selftest", &logits)?, ctx.upload("selftest", &labels)?);
                let loss = ctx.storage("selftest", (rows * 4) as u64)?;
                let grad = ctx.storage("selftest", (rows * classes * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::softmax_xent(ctx, &mut enc, &bz, &by, &loss, &grad, rows, classes, smoothing, scale).await?;
                ctx.submit(enc);
                (read_f32(ctx, &loss, rows).await?, read_f32(ctx, &grad, rows * classes).await?)
            });
            let cmp = merge(
                compare(&gl, &wl, Tolerance::new(1e-5, 1e-5)),
                compare(&gg, &wg, Tolerance::new(1e-5, 1e-6 * scale)),
            );
            Ok(Outcome { cmp: Some(cmp), elements: n, gpu_ms, cpu_ms })
        }
        Spec::Adamw { n, steps } => {
            let p0 = rng.uniform_vec(n, -1.0, 1.0);
            let grads: Vec<Vec<f32>> = (0..steps).map(|_| rng.uniform_vec(n, -0.1, 0.1)).collect();
            let step = |t: usize| cpu::AdamwStep {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                wd: 0.01,
                bc1: 1.0 - 0.9f32.powi(t as i32),
                bc2: 1.0 - 0.999f32.powi(t as i32),
            };
            let (want, cpu_ms) = timed!({
                let (mut p, mut m, mut v) = (p0.clone(), vec![0f32; n], vec![0f32; n]);
                for (t, g) in grads.iter().enumerate() {
                    cpu::adamw(&mut p, g, &mut m, &mut v, step(t + 1));
                }
                [p, m, v].concat()
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: 3 * n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let p = ctx.upload("selftest", &p0)?;
                let (m, v) = (ctx.upload("selftest", &vec![0f32; n])?, ctx.upload("selftest", &vec![0f32; n])?);
                let mut enc = ctx.encoder();
                let gb: Vec<_> = grads.iter().map(|g| ctx.upload("selftest", g)).collect::<Result<_>>()?;
                for (t, g) in gb.iter().enumerate() {
                    ops::adamw(ctx, &mut enc, &p, g, &m, &v, n, step(t + 1)).await?;
                }
                ctx.submit(enc);
                [read_f32(ctx, &p, n).await?, read_f32(ctx, &m, n).await?, read_f32(ctx, &v, n).await?].concat()
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(1e-5, 1e-7))), elements: 3 * n, gpu_ms, cpu_ms })
        }
        Spec::Sgd { n, steps } => {
            let p0 = rng.uniform_vec(n, -1.0, 1.0);
            let grads: Vec<Vec<f32>> = (0..steps).map(|_| rng.uniform_vec(n, -0.1, 0.1)).collect();
            let (lr, mom, wd) = (0.01, 0.9, 1e-4);
            let (want, cpu_ms) = timed!({
                let (mut p, mut b) = (p0.clone(), vec![0f32; n]);
                for g in &grads {
                    cpu::sgd_momentum(&mut p, g, &mut b, lr, mom, wd);
                }
                [p, b].concat()
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: 2 * n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (p, b) = (ctx.upload("selftest", &p0)?, ctx.upload("selftest", &vec![0f32; n])?);
                let gb: Vec<_> = grads.iter().map(|g| ctx.upload("selftest", g)).collect::<Result<_>>()?;
                let mut enc = ctx.encoder();
                for g in &gb {
                    ops::sgd_momentum(ctx, &mut enc, &p, g, &b, n, lr, mom, wd).await?;
                }
                ctx.submit(enc);
                [read_f32(ctx, &p, n).await?, read_f32(ctx, &b, n).await?].concat()
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(1e-5, 1e-7))), elements: 2 * n, gpu_ms, cpu_ms })
        }
        Spec::SegmentMean { n, k, d } => {
            let x = rng.uniform_vec(n * d, -1.0, 1.0);
            // Every cluster but the last gets members, so one segment is empty and must keep its centre.
            let labels: Vec<u32> = (0..n).map(|_| rng.below(k.saturating_sub(1).max(1) as u32)).collect();
            let init = rng.uniform_vec(k * d, -1.0, 1.0);
            let (order, offsets) = cpu::segments(&labels, k);
            let (want, cpu_ms) = timed!({
                let mut c = init.clone();
                cpu::segment_mean(&x, &order, &offsets, &mut c, k, d);
                c
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: k * d, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bx, bo, boff) =
                    (ctx.upload("selftest", &x)?, ctx.upload("selftest", &order)?, ctx.upload("selftest", &offsets)?);
                let bc = ctx.upload("selftest", &init)?;
                let mut enc = ctx.encoder();
                ops::segment_mean(ctx, &mut enc, &bx, &bo, &boff, &bc, n, k, d).await?;
                ctx.submit(enc);
                read_f32(ctx, &bc, k * d).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::BALANCED)), elements: k * d, gpu_ms, cpu_ms })
        }
        Spec::FacilityGain { rows, cols, potential } => {
            // Squared distances between unit vectors lie in [0, 4]; some columns are already covered.
            let dist = rng.uniform_vec(rows * cols, 0.0, 4.0);
            let mind: Vec<f32> = (0..cols)
                .map(|j| if j % 3 == 0 && !potential { f32::MAX } else { rng.uniform_vec(1, 0.0, 4.0)[0] })
                .collect();
            // Accumulating cases add to a non-zero start.
            let mode = cpu::GainMode { potential, accumulate: rows % 2 == 1 };
            let start = rng.uniform_vec(rows, 0.0, 10.0);
            let (want, cpu_ms) = timed!({
                let mut g = start.clone();
                cpu::facility_gain(&dist, &mind, &mut g, rows, cols, mode);
                g
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: rows, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bd, bm) = (ctx.upload("selftest", &dist)?, ctx.upload("selftest", &mind)?);
                let g = ctx.upload("selftest", &start)?;
                let mut enc = ctx.encoder();
                ops::facility_gain(ctx, &mut enc, &bd, &bm, &g, rows, cols, mode).await?;
                ctx.submit(enc);
                read_f32(ctx, &g, rows).await?
            });
            // A sum of up to 1e5 positive terms in f32 (tree order) against f64.
            let tol = Tolerance::new(1e-4, 1e-4);
            Ok(Outcome { cmp: Some(compare(&got, &want, tol)), elements: rows, gpu_ms, cpu_ms })
        }
        Spec::OtherLabelMin { n, classes, tiles } => {
            let dist = ties_vec(&mut rng, n * n);
            let labels: Vec<u32> = (0..n).map(|_| rng.below(classes as u32)).collect();
            let blocks = tile_blocks(n, tiles);
            let ((wm, wx), cpu_ms) = timed!({
                let (mut mn, mut mx) = (vec![0f32; n], vec![0f32; n]);
                for &(r0, r1) in &blocks {
                    for (ci, &(c0, c1)) in blocks.iter().enumerate() {
                        let t = sub_tile(&dist, n, r0, r1, c0, c1);
                        cpu::other_label_min(&t, r1 - r0, c1 - c0, r0, c0, &labels, &mut mn, &mut mx, ci > 0);
                    }
                }
                (mn, mx)
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let ((gm, gx), gpu_ms) = timed!({
                let bl = ctx.upload("selftest", &labels)?;
                let (mn, mx) = (ctx.storage("selftest", (n * 4) as u64)?, ctx.storage("selftest", (n * 4) as u64)?);
                let mut enc = ctx.encoder();
                let mut keep = Vec::new();
                for &(r0, r1) in &blocks {
                    for (ci, &(c0, c1)) in blocks.iter().enumerate() {
                        let bt = ctx.upload("selftest", &sub_tile(&dist, n, r0, r1, c0, c1))?;
                        let t = ops::Tile { rows: r1 - r0, cols: c1 - c0, row_offset: r0, col_offset: c0 };
                        ops::other_label_min(ctx, &mut enc, &bt, &bl, &mn, &mx, n, t, ci > 0).await?;
                        keep.push(bt);
                    }
                }
                ctx.submit(enc);
                (read_f32(ctx, &mn, n).await?, read_f32(ctx, &mx, n).await?)
            });
            let exact = Tolerance::new(0.0, 0.0);
            let cmp = merge(compare(&gm, &wm, exact), compare(&gx, &wx, exact));
            Ok(Outcome { cmp: Some(cmp), elements: n, gpu_ms, cpu_ms })
        }
        Spec::RadiusEdges { n, tiles } => {
            let dist = ties_vec(&mut rng, n * n);
            let radius2 = 1.0;
            let blocks = tile_blocks(n, tiles);
            // Pass 1 counts, the host takes prefix sums, pass 2 writes; the same on both sides.
            let run_cpu = || {
                let mut cursor = vec![0u32; n];
                for &(r0, r1) in &blocks {
                    for &(c0, c1) in &blocks {
                        let t = sub_tile(&dist, n, r0, r1, c0, c1);
                        cpu::radius_edges(&t, r1 - r0, c1 - c0, r0, c0, false, radius2, &mut cursor, &mut [], 0);
                    }
                }
                let (starts, total) = cpu::exclusive_prefix(&cursor);
                // The write pass in two chunks of the edge list (as a graph larger than one buffer is written).
                let (mut all, mut cursor) = (Vec::with_capacity(total), starts.clone());
                for (base, end) in [(0, total / 2), (total / 2, total)] {
                    let mut edges = vec![0u32; end - base];
                    cursor.clone_from(&starts);
                    for &(r0, r1) in &blocks {
                        for &(c0, c1) in &blocks {
                            let t = sub_tile(&dist, n, r0, r1, c0, c1);
                            let (rows, cols) = (r1 - r0, c1 - c0);
                            cpu::radius_edges(&t, rows, cols, r0, c0, true, radius2, &mut cursor, &mut edges, base);
                        }
                    }
                    all.extend(edges);
                }
                (cursor, all)
            };
            let ((wc, we), cpu_ms) = timed!(run_cpu());
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: we.len(), gpu_ms: 0.0, cpu_ms }) };
            let ((gc, ge), gpu_ms) = timed!({
                let cursor = ctx.storage("selftest", (n * 4) as u64)?;
                let tiles_up: Vec<_> = blocks
                    .iter()
                    .flat_map(|&(r0, r1)| blocks.iter().map(move |&(c0, c1)| (r0, r1, c0, c1)))
                    .map(|(r0, r1, c0, c1)| {
                        let t = ops::Tile { rows: r1 - r0, cols: c1 - c0, row_offset: r0, col_offset: c0 };
                        ctx.upload("selftest", &sub_tile(&dist, n, r0, r1, c0, c1)).map(|b| (t, b))
                    })
                    .collect::<Result<_>>()?;
                let dummy = ctx.storage("selftest", 4)?;
                let mut enc = ctx.encoder();
                for (t, bt) in &tiles_up {
                    ops::radius_edges(ctx, &mut enc, bt, &cursor, &dummy, n, *t, false, radius2, 1, 0).await?;
                }
                ctx.submit(enc);
                let counts = read_u32(ctx, &cursor, n).await?;
                let (starts, total) = cpu::exclusive_prefix(&counts);
                let mut all = Vec::with_capacity(total);
                let mut cursor = None;
                for (base, end) in [(0, total / 2), (total / 2, total)] {
                    let cur = ctx.upload("selftest", &starts)?;
                    let cap = (end - base).max(1);
                    let edges = ctx.storage("selftest", (cap * 4) as u64)?;
                    let mut enc = ctx.encoder();
                    for (t, bt) in &tiles_up {
                        ops::radius_edges(ctx, &mut enc, bt, &cur, &edges, n, *t, true, radius2, cap, base).await?;
                    }
                    ctx.submit(enc);
                    all.extend(read_u32(ctx, &edges, end - base).await?);
                    cursor = Some(cur);
                }
                let cursor = cursor.ok_or_else(|| crate::Error::Invalid("no chunk".into()))?;
                (read_u32(ctx, &cursor, n).await?, all)
            });
            let cmp = merge(compare_exact_u32(&gc, &wc), compare_exact_u32(&ge, &we));
            Ok(Outcome { cmp: Some(cmp), elements: we.len(), gpu_ms, cpu_ms })
        }
        Spec::Transpose { rows, cols } => {
            let x = rng.uniform_vec(rows * cols, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::transpose(&x, rows, cols));
            let n = rows * cols;
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::transpose(ctx, &mut enc, &bx, &y, rows, cols).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: n, gpu_ms, cpu_ms })
        }
        Spec::Relu { n } => {
            let mut x = rng.uniform_vec(n, -2.0, 2.0);
            for (i, v) in [0.0f32, -0.0, 1e-30, -1e-30].into_iter().enumerate().take(n) {
                x[i] = v;
            }
            let (want, cpu_ms) = timed!(cpu::relu(&x));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::relu(ctx, &mut enc, &bx, &y, n).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: n, gpu_ms, cpu_ms })
        }
        Spec::DepthToSpace { h, w, c, r } => {
            let n = h * w * r * r * c;
            let x = rng.uniform_vec(n, -1.0, 1.0);
            let bias = rng.uniform_vec(c, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::depth_to_space(&x, &bias, h, w, c, r));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bx, bb) = (ctx.upload("selftest", &x)?, ctx.upload("selftest", &bias)?);
                let y = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::depth_to_space(ctx, &mut enc, &bx, &bb, &y, h, w, c, r).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: n, gpu_ms, cpu_ms })
        }
    }
}
