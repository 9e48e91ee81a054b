//! Self-test cases of the activations: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    Gelu { n: usize },
    Swiglu { rows: usize, hidden: usize },
    Relu { n: usize },
    GeluBackward { n: usize },
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
            Spec::Gelu { n } => format!("n{n}"),
            Spec::Swiglu { rows, hidden } => format!("{rows}x{hidden}"),
            Spec::Relu { n } => format!("n{n}"),
            Spec::GeluBackward { n } => format!("n{n}"),
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Activation(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
    let mut v = Vec::new();
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("gelu", Small, Gelu { n }));
    }
    v.push(case("gelu", Model, Gelu { n: 257 * 1536 }));
    for (rows, hidden) in [(1, 1), (7, 7), (3, 64), (64, 65), (5, 1000)] {
        v.push(case("swiglu", Small, Swiglu { rows, hidden }));
    }
    // dinov2-giant: 257 tokens, hidden (int(1536·4·2/3) + 7) // 8 · 8 = 4096.
    v.push(case("swiglu", Model, Swiglu { rows: 257, hidden: 4096 }));
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("relu", Small, Relu { n }));
    }
    v.push(case("relu", Model, Relu { n: 7 * 2048 }));
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("gelu_backward", Small, GeluBackward { n }));
    }
    // The segmentation head's hidden layer: a batch of 8 at 64×64 × 32 channels.
    v.push(case("gelu_backward", Model, GeluBackward { n: 8 * 4096 * 32 }));
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, _c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    match spec.clone() {
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
    }
}
