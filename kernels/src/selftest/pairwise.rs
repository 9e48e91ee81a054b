//! Self-test cases of the pairwise-distance kernels: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, rng: &mut Rng) -> Result<Outcome> {
    match c.spec.clone() {
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
        other => Err(misrouted(c, &other)),
    }
}
