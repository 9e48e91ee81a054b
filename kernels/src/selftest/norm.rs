//! Self-test cases of softmax, LayerNorm and row reductions: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    Softmax { rows: usize, cols: usize },
    Layernorm { rows: usize, d: usize },
    Reduce { rows: usize, cols: usize, op: ops::Reduce },
    LayernormBackward { rows: usize, d: usize },
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
            Spec::Softmax { rows, cols } => format!("{rows}x{cols}"),
            Spec::Layernorm { rows, d } => format!("{rows}x{d}"),
            Spec::Reduce { rows, cols, op } => format!("{rows}x{cols} {op:?}"),
            Spec::LayernormBackward { rows, d } => format!("{rows}x{d}"),
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Norm(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
    let mut v = Vec::new();
    for (rows, cols) in [(1, 1), (7, 7), (63, 64), (64, 65), (65, 1000), (1000, 63)] {
        v.push(case("softmax_rows", Small, Softmax { rows, cols }));
    }
    v.push(case("softmax_rows", Model, Softmax { rows: 6 * 257, cols: 257 }));
    for (rows, d) in [(1, 1), (7, 7), (63, 64), (64, 65), (65, 1000), (1000, 63)] {
        v.push(case("layernorm", Small, Layernorm { rows, d }));
    }
    v.push(case("layernorm", Model, Layernorm { rows: 257, d: 384 }));
    v.push(case("layernorm", Model, Layernorm { rows: 257, d: 1536 }));
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
    for (rows, d) in [(1, 1), (7, 7), (63, 32), (64, 64), (65, 3), (1000, 65)] {
        v.push(case("layernorm_backward", Small, LayernormBackward { rows, d }));
    }
    v.push(case("layernorm_backward", Model, LayernormBackward { rows: 8 * 4096, d: 32 }));
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, _c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    match spec.clone() {
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
    }
}
