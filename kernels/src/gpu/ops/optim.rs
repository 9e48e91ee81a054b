//! Optimiser steps: AdamW, SGD with momentum, the mean teacher's EMA.

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::Result;

/// One AdamW step in place over n parameters (`s` carries the hyper-parameters and bias corrections).
#[allow(clippy::too_many_arguments)] // the four state buffers, the size and the step
pub async fn adamw(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    p: &Buffer,
    g: &Buffer,
    m: &Buffer,
    v: &Buffer,
    n: usize,
    s: crate::cpu::AdamwStep,
) -> Result<()> {
    const OP: &str = "adamw";
    for (what, b) in [("p", p), ("g", g), ("m", m), ("v", v)] {
        check_len(OP, what, b, n)?;
    }
    let prm = AdamwParams {
        n: u32_of(OP, "n", n)?,
        lr: s.lr,
        beta1: s.beta1,
        beta2: s.beta2,
        eps: s.eps,
        wd: s.wd,
        bc1: s.bc1,
        bc2: s.bc2,
    };
    ctx.dispatch(enc, OP, &prm, &[p, g, m, v], ctx.grid_threads(OP, n)?).await
}

/// One SGD-with-momentum step in place over n parameters.
#[allow(clippy::too_many_arguments)] // the three state buffers, the size and the hyper-parameters
pub async fn sgd_momentum(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    p: &Buffer,
    g: &Buffer,
    b: &Buffer,
    n: usize,
    lr: f32,
    momentum: f32,
    wd: f32,
) -> Result<()> {
    const OP: &str = "sgd_momentum";
    for (what, buf) in [("p", p), ("g", g), ("b", b)] {
        check_len(OP, what, buf, n)?;
    }
    let prm = SgdMomentumParams { n: u32_of(OP, "n", n)?, lr, momentum, wd };
    ctx.dispatch(enc, OP, &prm, &[p, g, b], ctx.grid_threads(OP, n)?).await
}

/// The mean teacher's EMA in place over n parameters: t ← α·t + (1 − α)·s.
pub async fn ema_update(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    t: &Buffer,
    s: &Buffer,
    n: usize,
    alpha: f32,
) -> Result<()> {
    const OP: &str = "ema_update";
    check_len(OP, "t", t, n)?;
    check_len(OP, "s", s, n)?;
    let p = EmaUpdateParams { n: u32_of(OP, "n", n)?, alpha, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[t, s], ctx.grid_threads(OP, n)?).await
}
