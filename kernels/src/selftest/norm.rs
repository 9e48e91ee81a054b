//! Self-test cases of softmax, LayerNorm and row reductions: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, rng: &mut Rng) -> Result<Outcome> {
    match c.spec.clone() {
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
        other => Err(misrouted(c, &other)),
    }
}
