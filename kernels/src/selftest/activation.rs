//! Self-test cases of the activations: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, rng: &mut Rng) -> Result<Outcome> {
    match c.spec.clone() {
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
        other => Err(misrouted(c, &other)),
    }
}
