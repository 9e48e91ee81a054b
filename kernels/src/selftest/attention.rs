//! Self-test cases of the attention kernels: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    Attention { g: ops::AttnGeom, bias: bool },
    CrossAttention { g: ops::CrossAttnGeom },
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
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
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Attention(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
    let mut v = Vec::new();
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
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, _c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    match spec.clone() {
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
    }
}
