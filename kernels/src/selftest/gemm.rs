//! Self-test cases of the GEMM kernels: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, rng: &mut Rng) -> Result<Outcome> {
    let spec_kind = &c.spec;
    match c.spec.clone() {
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
        other => Err(misrouted(c, &other)),
    }
}
