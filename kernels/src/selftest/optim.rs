//! Self-test cases of the optimiser steps: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    Adamw { n: usize, steps: usize },
    Sgd { n: usize, steps: usize },
    Ema { n: usize },
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
            Spec::Adamw { n, steps } | Spec::Sgd { n, steps } => format!("n{n} {steps} steps"),
            Spec::Ema { n } => format!("n{n}"),
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Optim(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
    let mut v = Vec::new();
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("adamw", Small, Adamw { n, steps: 3 }));
        v.push(case("sgd_momentum", Small, Sgd { n, steps: 3 }));
    }
    // A 256-channel 3×3 conv layer's weights.
    v.push(case("adamw", Model, Adamw { n: 256 * 256 * 9, steps: 2 }));
    v.push(case("sgd_momentum", Model, Sgd { n: 256 * 256 * 9, steps: 2 }));
    for n in [1, 7, 63, 64, 65, 1000] {
        v.push(case("ema_update", Small, Ema { n }));
    }
    // The LiteMedSAM segmentation head's 3×3 conv weights.
    v.push(case("ema_update", Model, Ema { n: 32 * 256 * 9 }));
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, _c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    match spec.clone() {
        Spec::Ema { n } => {
            let t0 = rng.uniform_vec(n, -1.0, 1.0);
            let st = rng.uniform_vec(n, -1.0, 1.0);
            let (want, cpu_ms) = timed!({
                let mut t = t0.clone();
                cpu::ema_update(&mut t, &st, 0.99);
                cpu::ema_update(&mut t, &st, 0.5);
                t
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bt, bs) = (ctx.upload("selftest", &t0)?, ctx.upload("selftest", &st)?);
                let mut enc = ctx.encoder();
                ops::ema_update(ctx, &mut enc, &bt, &bs, n, 0.99).await?;
                ops::ema_update(ctx, &mut enc, &bt, &bs, n, 0.5).await?;
                ctx.submit(enc);
                read_f32(ctx, &bt, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(1e-6, 1e-6))), elements: n, gpu_ms, cpu_ms })
        }
        Spec::Adamw { n, steps } => {
            let p0 = rng.uniform_vec(n, -1.0, 1.0);
            let grads: Vec<Vec<f32>> = (0..steps).map(|_| rng.uniform_vec(n, -0.1, 0.1)).collect();
            let step = |t: usize| cpu::AdamwStep {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                wd: 0.01,
                bc1: 1.0 - 0.9f32.powi(t as i32),
                bc2: 1.0 - 0.999f32.powi(t as i32),
            };
            let (want, cpu_ms) = timed!({
                let (mut p, mut m, mut v) = (p0.clone(), vec![0f32; n], vec![0f32; n]);
                for (t, g) in grads.iter().enumerate() {
                    cpu::adamw(&mut p, g, &mut m, &mut v, step(t + 1));
                }
                [p, m, v].concat()
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: 3 * n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let p = ctx.upload("selftest", &p0)?;
                let (m, v) = (ctx.upload("selftest", &vec![0f32; n])?, ctx.upload("selftest", &vec![0f32; n])?);
                let mut enc = ctx.encoder();
                let gb: Vec<_> = grads.iter().map(|g| ctx.upload("selftest", g)).collect::<Result<_>>()?;
                for (t, g) in gb.iter().enumerate() {
                    ops::adamw(ctx, &mut enc, &p, g, &m, &v, n, step(t + 1)).await?;
                }
                ctx.submit(enc);
                [read_f32(ctx, &p, n).await?, read_f32(ctx, &m, n).await?, read_f32(ctx, &v, n).await?].concat()
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(1e-5, 1e-7))), elements: 3 * n, gpu_ms, cpu_ms })
        }
        Spec::Sgd { n, steps } => {
            let p0 = rng.uniform_vec(n, -1.0, 1.0);
            let grads: Vec<Vec<f32>> = (0..steps).map(|_| rng.uniform_vec(n, -0.1, 0.1)).collect();
            let (lr, mom, wd) = (0.01, 0.9, 1e-4);
            let (want, cpu_ms) = timed!({
                let (mut p, mut b) = (p0.clone(), vec![0f32; n]);
                for g in &grads {
                    cpu::sgd_momentum(&mut p, g, &mut b, lr, mom, wd);
                }
                [p, b].concat()
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: 2 * n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (p, b) = (ctx.upload("selftest", &p0)?, ctx.upload("selftest", &vec![0f32; n])?);
                let gb: Vec<_> = grads.iter().map(|g| ctx.upload("selftest", g)).collect::<Result<_>>()?;
                let mut enc = ctx.encoder();
                for g in &gb {
                    ops::sgd_momentum(ctx, &mut enc, &p, g, &b, n, lr, mom, wd).await?;
                }
                ctx.submit(enc);
                [read_f32(ctx, &p, n).await?, read_f32(ctx, &b, n).await?].concat()
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(1e-5, 1e-7))), elements: 2 * n, gpu_ms, cpu_ms })
        }
    }
}
