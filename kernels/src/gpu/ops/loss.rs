//! Losses and per-pixel scores: Dice, softmax cross-entropy, softmax MSE (mean teacher), entropy maps.

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::{Error, Result};

/// Rows per phase-0 workgroup of `dice_loss.wgsl` (its `CHUNK`).
pub const DICE_CHUNK: usize = 4096;

/// Number of f32 in the `sums` buffer of `dice_loss` for `rows` pixels: the partials, then the totals
/// (six sums and the loss at offset `dice_sums_len(rows) - 8 + 6`).
pub fn dice_sums_len(rows: usize) -> usize {
    (rows.div_ceil(DICE_CHUNK).max(1) + 1) * 8
}

/// The 2-class soft Dice loss of a batch (three dispatches): the loss lands in
/// `sums[dice_sums_len(rows) - 2]`, the gradient w.r.t. the logits, times `scale`, in `grad` [rows, 2].
#[allow(clippy::too_many_arguments)] // operands, outputs, size, mode and scale
pub async fn dice_loss(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    logits: &Buffer,
    labels: &Buffer,
    sums: &Buffer,
    grad: &Buffer,
    rows: usize,
    mode: crate::cpu::DiceMode,
    scale: f32,
) -> Result<()> {
    const OP: &str = "dice_loss";
    let (m, gamma) = mode.params();
    if m == 1 && !(gamma.is_finite() && gamma >= 1.0) {
        return Err(Error::shape(OP, format!("noise-robust Dice needs γ ≥ 1, got {gamma}")));
    }
    check_len(OP, "logits", logits, rows * 2)?;
    check_len(OP, "labels", labels, rows)?;
    check_len(OP, "sums", sums, dice_sums_len(rows))?;
    check_len(OP, "grad", grad, rows * 2)?;
    let groups = rows.div_ceil(DICE_CHUNK).max(1);
    let mut p = DiceLossParams {
        rows: u32_of(OP, "rows", rows)?,
        phase: 0,
        mode: m,
        groups: u32_of(OP, "groups", groups)?,
        gamma,
        scale,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[logits, labels, sums, grad], ctx.grid_threads(OP, groups * 256)?).await?;
    p.phase = 1;
    ctx.dispatch(enc, OP, &p, &[logits, labels, sums, grad], [1, 1, 1]).await?;
    p.phase = 2;
    ctx.dispatch(enc, OP, &p, &[logits, labels, sums, grad], ctx.grid_threads(OP, rows)?).await
}

/// Per-pixel normalised entropy and max probability of logits [B, C, P] (C == 1: sigmoid).
#[allow(clippy::too_many_arguments)] // operand, two outputs, three sizes
pub async fn entropy_map(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    logits: &Buffer,
    entropy: &Buffer,
    maxprob: &Buffer,
    images: usize,
    classes: usize,
    pixels: usize,
) -> Result<()> {
    const OP: &str = "entropy_map";
    if classes == 0 {
        return Err(Error::shape(OP, "classes must be ≥ 1"));
    }
    check_len(OP, "logits", logits, images * classes * pixels)?;
    check_len(OP, "entropy", entropy, images * pixels)?;
    check_len(OP, "maxprob", maxprob, images * pixels)?;
    let p = EntropyMapParams {
        images: u32_of(OP, "images", images)?,
        classes: u32_of(OP, "classes", classes)?,
        pixels: u32_of(OP, "pixels", pixels)?,
        _pad0: 0,
    };
    ctx.dispatch(enc, OP, &p, &[logits, entropy, maxprob], ctx.grid_threads(OP, images * pixels)?).await
}

/// Fused softmax cross-entropy (label smoothing ε) over logits [rows, classes]: per-row loss and
/// dlogits = scale·(softmax − target). Labels ≥ classes mark rows to ignore.
#[allow(clippy::too_many_arguments)] // operands, outputs, sizes and the two scalars
pub async fn softmax_xent(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    logits: &Buffer,
    labels: &Buffer,
    loss: &Buffer,
    dlogits: &Buffer,
    rows: usize,
    classes: usize,
    smoothing: f32,
    scale: f32,
) -> Result<()> {
    const OP: &str = "softmax_xent";
    if classes == 0 || !(0.0..1.0).contains(&smoothing) {
        return Err(Error::shape(OP, format!("{classes} classes, smoothing {smoothing} (needs ≥ 1 class, 0 ≤ ε < 1)")));
    }
    check_len(OP, "logits", logits, rows * classes)?;
    check_len(OP, "labels", labels, rows)?;
    check_len(OP, "loss", loss, rows)?;
    check_len(OP, "dlogits", dlogits, rows * classes)?;
    let p = SoftmaxXentParams {
        rows: u32_of(OP, "rows", rows)?,
        classes: u32_of(OP, "classes", classes)?,
        smoothing,
        scale,
    };
    ctx.dispatch(enc, OP, &p, &[logits, labels, loss, dlogits], ctx.grid_threads(OP, rows)?).await
}

/// Consistency loss per row, Σ_c (softmax(z) − softmax(zt))², and its gradient w.r.t. z (times `scale`).
#[allow(clippy::too_many_arguments)] // operands, outputs, sizes and scale
pub async fn softmax_mse(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    z: &Buffer,
    zt: &Buffer,
    loss: &Buffer,
    dz: &Buffer,
    rows: usize,
    classes: usize,
    scale: f32,
) -> Result<()> {
    const OP: &str = "softmax_mse";
    if classes == 0 {
        return Err(Error::shape(OP, "0 classes".to_string()));
    }
    check_len(OP, "z", z, rows * classes)?;
    check_len(OP, "zt", zt, rows * classes)?;
    check_len(OP, "loss", loss, rows)?;
    check_len(OP, "dz", dz, rows * classes)?;
    let p =
        SoftmaxMseParams { rows: u32_of(OP, "rows", rows)?, classes: u32_of(OP, "classes", classes)?, scale, _pad0: 0 };
    ctx.dispatch(enc, OP, &p, &[z, zt, loss, dz], ctx.grid_threads(OP, rows)?).await
}
