//! Self-test cases of the GEMM kernels: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
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
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
            Spec::Matmul { m, n, k, trans_b, bias } | Spec::MatmulGelu { m, n, k, trans_b, bias } => {
                format!(
                    "{m}x{k}·{}{}{}{}",
                    if *trans_b { "T" } else { "" },
                    if *trans_b { format!("{n}x{k}") } else { format!("{k}x{n}") },
                    if *bias { "+bias" } else { "" },
                    if matches!(self, Spec::MatmulGelu { .. }) { " gelu" } else { "" }
                )
            }
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Gemm(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
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
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    let spec_kind = spec;
    match spec.clone() {
        Spec::Matmul { m, n, k, trans_b, bias } | Spec::MatmulGelu { m, n, k, trans_b, bias } => {
            let fused_gelu = matches!(spec_kind, Spec::MatmulGelu { .. });
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
    }
}
