//! The case list: every kernel in `gpu::shaders::ALL` at small odd sizes and at real model shapes.

use super::*;

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
