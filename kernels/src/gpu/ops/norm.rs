//! Row normalisations and reductions: softmax, LayerNorm (forward and backward), row sums / maxima.

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::{Error, Result};

/// Row-wise softmax of X [R,C].
pub async fn softmax_rows(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    y: &Buffer,
    rows: usize,
    cols: usize,
) -> Result<()> {
    const OP: &str = "softmax_rows";
    check_len(OP, "x", x, rows * cols)?;
    check_len(OP, "y", y, rows * cols)?;
    let p =
        SoftmaxRowsParams { rows: u32_of(OP, "rows", rows)?, cols: u32_of(OP, "cols", cols)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_1d(rows, 1)).await
}

/// LayerNorm over the last dim of X [R,D] with weight and bias [D].
#[allow(clippy::too_many_arguments)] // operands, output, sizes and eps
pub async fn layernorm(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    w: &Buffer,
    b: &Buffer,
    y: &Buffer,
    rows: usize,
    d: usize,
    eps: f32,
) -> Result<()> {
    const OP: &str = "layernorm";
    check_len(OP, "x", x, rows * d)?;
    check_len(OP, "w", w, d)?;
    check_len(OP, "b", b, d)?;
    check_len(OP, "y", y, rows * d)?;
    let p = LayernormParams { rows: u32_of(OP, "rows", rows)?, d: u32_of(OP, "d", d)?, eps, _pad0: 0 };
    ctx.dispatch(enc, OP, &p, &[x, w, b, y], ctx.grid_threads(OP, rows)?).await
}

/// Gradient through a LayerNorm without affine parameters over the last dim of X [rows, d].
#[allow(clippy::too_many_arguments)] // operands, output, sizes and eps
pub async fn layernorm_backward(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    dy: &Buffer,
    dx: &Buffer,
    rows: usize,
    d: usize,
    eps: f32,
) -> Result<()> {
    const OP: &str = "layernorm_backward";
    check_len(OP, "x", x, rows * d)?;
    check_len(OP, "dy", dy, rows * d)?;
    check_len(OP, "dx", dx, rows * d)?;
    let p = LayernormBackwardParams { rows: u32_of(OP, "rows", rows)?, d: u32_of(OP, "d", d)?, eps, _pad0: 0 };
    ctx.dispatch(enc, OP, &p, &[x, dy, dx], ctx.grid_threads(OP, rows)?).await
}

/// Row reduction of X [R,C].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum = 0,
    Mean = 1,
    Max = 2,
}

pub async fn reduce_rows(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    out: &Buffer,
    rows: usize,
    cols: usize,
    op: Reduce,
) -> Result<()> {
    const OP: &str = "reduce_rows";
    check_len(OP, "x", x, rows * cols)?;
    check_len(OP, "out", out, rows)?;
    if cols == 0 {
        return Err(Error::shape(OP, "cannot reduce rows of zero columns"));
    }
    let p =
        ReduceRowsParams { rows: u32_of(OP, "rows", rows)?, cols: u32_of(OP, "cols", cols)?, op: op as u32, _pad0: 0 };
    ctx.dispatch(enc, OP, &p, &[x, out], ctx.grid_1d(rows, 1)).await
}
