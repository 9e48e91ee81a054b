//! Elementwise activations: GELU (forward and backward), SwiGLU, ReLU.

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::Result;

/// Exact-erf GELU, elementwise over n values.
pub async fn gelu(ctx: &GpuContext, enc: &mut CommandEncoder, x: &Buffer, y: &Buffer, n: usize) -> Result<()> {
    const OP: &str = "gelu";
    check_len(OP, "x", x, n)?;
    check_len(OP, "y", y, n)?;
    let p = GeluParams { n: u32_of(OP, "n", n)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_threads(OP, n)?).await
}

/// SwiGLU gate: y[rows, hidden] = silu(x1) · x2 where x = [x1 | x2] is [rows, 2·hidden] (dinov2-giant's FFN).
pub async fn swiglu(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    y: &Buffer,
    rows: usize,
    hidden: usize,
) -> Result<()> {
    const OP: &str = "swiglu";
    check_len(OP, "x", x, rows * 2 * hidden)?;
    check_len(OP, "y", y, rows * hidden)?;
    u32_of(OP, "rows·hidden", rows * 2 * hidden)?;
    let p =
        SwigluParams { rows: u32_of(OP, "rows", rows)?, hidden: u32_of(OP, "hidden", hidden)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_threads(OP, rows * hidden)?).await
}

/// dx = dy · GELU'(x) over n values (exact-erf GELU).
pub async fn gelu_backward(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    dy: &Buffer,
    dx: &Buffer,
    n: usize,
) -> Result<()> {
    const OP: &str = "gelu_backward";
    check_len(OP, "x", x, n)?;
    check_len(OP, "dy", dy, n)?;
    check_len(OP, "dx", dx, n)?;
    let p = GeluBackwardParams { n: u32_of(OP, "n", n)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, dy, dx], ctx.grid_threads(OP, n)?).await
}

/// y = max(x, 0) over n values.
pub async fn relu(ctx: &GpuContext, enc: &mut CommandEncoder, x: &Buffer, y: &Buffer, n: usize) -> Result<()> {
    const OP: &str = "relu";
    check_len(OP, "x", x, n)?;
    check_len(OP, "y", y, n)?;
    let p = ReluParams { n: u32_of(OP, "n", n)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_threads(OP, n)?).await
}
