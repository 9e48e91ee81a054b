//! Self-test cases of the losses and per-pixel scores: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    Entropy { images: usize, classes: usize, pixels: usize },
    SoftmaxXent { rows: usize, classes: usize, smoothing: f32 },
    DiceLoss { rows: usize, robust: bool },
    SoftmaxMse { rows: usize, classes: usize },
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
            Spec::Entropy { images, classes, pixels } => format!("{images}x{classes}x{pixels}"),
            Spec::SoftmaxXent { rows, classes, smoothing } => format!("{rows}x{classes} eps {smoothing}"),
            Spec::DiceLoss { rows, robust } => {
                format!("{rows}x2 {}", if *robust { "noise-robust γ 1.5" } else { "soft" })
            }
            Spec::SoftmaxMse { rows, classes } => format!("{rows}x{classes}"),
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Loss(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
    let mut v = Vec::new();
    for (images, classes, pixels) in [(1, 1, 1), (1, 2, 7), (2, 3, 63), (1, 4, 64), (3, 2, 65), (1, 1, 1000)] {
        v.push(case("entropy_map", Small, Entropy { images, classes, pixels }));
    }
    v.push(case("entropy_map", Model, Entropy { images: 2, classes: 2, pixels: 256 * 256 }));
    for (rows, classes, smoothing) in
        [(1, 1, 0.0), (7, 2, 0.1), (63, 3, 0.0), (64, 7, 0.2), (65, 11, 0.1), (1000, 2, 0.0)]
    {
        v.push(case("softmax_xent", Small, SoftmaxXent { rows, classes, smoothing }));
    }
    // A segmentation batch of 8 at 256×256 with 2 classes.
    v.push(case("softmax_xent", Model, SoftmaxXent { rows: 8 * 256 * 256, classes: 2, smoothing: 0.0 }));
    for (rows, robust) in [(1, false), (7, true), (65, false), (1000, true), (4097, false), (9000, true)] {
        v.push(case("dice_loss", Small, DiceLoss { rows, robust }));
    }
    // A segmentation batch of 8 at 256×256.
    v.push(case("dice_loss", Model, DiceLoss { rows: 8 * 256 * 256, robust: false }));
    v.push(case("dice_loss", Model, DiceLoss { rows: 8 * 256 * 256, robust: true }));
    for (rows, classes) in [(1, 1), (7, 2), (63, 3), (64, 7), (65, 11), (1000, 2)] {
        v.push(case("softmax_mse", Small, SoftmaxMse { rows, classes }));
    }
    v.push(case("softmax_mse", Model, SoftmaxMse { rows: 8 * 256 * 256, classes: 2 }));
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, _c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    match spec.clone() {
        Spec::SoftmaxMse { rows, classes } => {
            let z = rng.uniform_vec(rows * classes, -8.0, 8.0);
            let zt = rng.uniform_vec(rows * classes, -8.0, 8.0);
            let scale = 1.0 / rows as f32;
            let ((wl, wg), cpu_ms) = timed!(cpu::softmax_mse(&z, &zt, rows, classes, scale));
            let n = rows * (classes + 1);
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let ((gl, gg), gpu_ms) = timed!({
                let (bz, bt) = (ctx.upload("selftest", &z)?, ctx.upload("selftest", &zt)?);
                let loss = ctx.storage("selftest", (rows * 4) as u64)?;
                let dz = ctx.storage("selftest", (rows * classes * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::softmax_mse(ctx, &mut enc, &bz, &bt, &loss, &dz, rows, classes, scale).await?;
                ctx.submit(enc);
                (read_f32(ctx, &loss, rows).await?, read_f32(ctx, &dz, rows * classes).await?)
            });
            let cmp = merge(
                compare(&gl, &wl, Tolerance::new(1e-5, 1e-6)),
                compare(&gg, &wg, Tolerance::new(1e-4, 1e-6 * scale)),
            );
            Ok(Outcome { cmp: Some(cmp), elements: n, gpu_ms, cpu_ms })
        }
        Spec::DiceLoss { rows, robust } => {
            let logits = rng.uniform_vec(rows * 2, -6.0, 6.0);
            // Every 7th pixel ignored (label 2); foreground where a smooth pattern says so.
            let labels: Vec<u32> = (0..rows).map(|r| if r % 7 == 6 { 2 } else { rng.below(2) }).collect();
            let mode = if robust { cpu::DiceMode::NoiseRobust { gamma: 1.5 } } else { cpu::DiceMode::Soft };
            let scale = 0.5;
            let ((wl, wg), cpu_ms) = timed!(cpu::dice_loss(&logits, &labels, rows, mode, scale));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: rows * 2, gpu_ms: 0.0, cpu_ms }) };
            let len = ops::dice_sums_len(rows);
            let ((gl, gg), gpu_ms) = timed!({
                let (bz, by) = (ctx.upload("selftest", &logits)?, ctx.upload("selftest", &labels)?);
                let sums = ctx.storage("selftest", (len * 4) as u64)?;
                let grad = ctx.storage("selftest", (rows * 8) as u64)?;
                let mut enc = ctx.encoder();
                ops::dice_loss(ctx, &mut enc, &bz, &by, &sums, &grad, rows, mode, scale).await?;
                ctx.submit(enc);
                (read_f32(ctx, &sums, len).await?[len - 2], read_f32(ctx, &grad, rows * 2).await?)
            });
            // The gradient's size is about 1/rows: compare relative to its largest value.
            let gmax = wg.iter().fold(0f32, |a, &v| a.max(v.abs()));
            let cmp = merge(
                compare(&[gl], &[wl], Tolerance::new(1e-4, 1e-5)),
                compare(&gg, &wg, Tolerance::new(1e-3, 1e-4 * gmax)),
            );
            Ok(Outcome { cmp: Some(cmp), elements: rows * 2, gpu_ms, cpu_ms })
        }
        Spec::Entropy { images, classes, pixels } => {
            let x = rng.uniform_vec(images * classes * pixels, -8.0, 8.0);
            let ((we, wm), cpu_ms) = timed!(cpu::entropy_map(&x, images, classes, pixels));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: we.len(), gpu_ms: 0.0, cpu_ms });
            };
            let ((ge, gm), gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let e = ctx.storage("selftest", (images * pixels * 4) as u64)?;
                let mx = ctx.storage("selftest", (images * pixels * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::entropy_map(ctx, &mut enc, &bx, &e, &mx, images, classes, pixels).await?;
                ctx.submit(enc);
                (read_f32(ctx, &e, images * pixels).await?, read_f32(ctx, &mx, images * pixels).await?)
            });
            let tol = Tolerance::new(1e-4, 1e-5);
            let cmp = merge(compare(&ge, &we, tol), compare(&gm, &wm, tol));
            Ok(Outcome { cmp: Some(cmp), elements: we.len(), gpu_ms, cpu_ms })
        }
        Spec::SoftmaxXent { rows, classes, smoothing } => {
            let logits = rng.uniform_vec(rows * classes, -8.0, 8.0);
            // Every 5th row ignored (label = classes).
            let labels: Vec<u32> =
                (0..rows).map(|r| if r % 5 == 4 { classes as u32 } else { rng.below(classes as u32) }).collect();
            let scale = 1.0 / rows as f32;
            let ((wl, wg), cpu_ms) = timed!(cpu::softmax_xent(&logits, &labels, rows, classes, smoothing, scale));
            let n = rows * (classes + 1);
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let ((gl, gg), gpu_ms) = timed!({
                let (bz, by) = (ctx.upload("selftest", &logits)?, ctx.upload("selftest", &labels)?);
                let loss = ctx.storage("selftest", (rows * 4) as u64)?;
                let grad = ctx.storage("selftest", (rows * classes * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::softmax_xent(ctx, &mut enc, &bz, &by, &loss, &grad, rows, classes, smoothing, scale).await?;
                ctx.submit(enc);
                (read_f32(ctx, &loss, rows).await?, read_f32(ctx, &grad, rows * classes).await?)
            });
            let cmp = merge(
                compare(&gl, &wl, Tolerance::new(1e-5, 1e-5)),
                compare(&gg, &wg, Tolerance::new(1e-5, 1e-6 * scale)),
            );
            Ok(Outcome { cmp: Some(cmp), elements: n, gpu_ms, cpu_ms })
        }
    }
}
