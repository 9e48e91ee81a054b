//! Self-test cases of the attention kernels: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, rng: &mut Rng) -> Result<Outcome> {
    match c.spec.clone() {
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
        other => Err(misrouted(c, &other)),
    }
}
