//! One async function per WGSL kernel (same name as the shader file and its CPU twin in `crate::cpu`). Each
//! checks the shapes against the buffers, records one dispatch into the caller's encoder and returns; nothing
//! is submitted here, so a caller can chain many ops into one submission.

use wgpu::{Buffer, CommandEncoder};

use super::params::*;
use super::GpuContext;
use crate::{Error, Result};

fn check_len(op: &'static str, what: &str, buf: &Buffer, elems: usize) -> Result<()> {
    let need = (elems as u64) * 4;
    if buf.size() < need {
        return Err(Error::shape(
            op,
            format!(
                "buffer '{what}' holds {} bytes, the shape needs {need}",
                buf.size()
            ),
        ));
    }
    Ok(())
}

fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape(op, format!("{what} = {v} does not fit in 32 bits")))
}

/// C[M,N] = A[M,K] · B (B [K,N]) or A · Bᵀ (B [N,K], `trans_b`), plus `bias[N]` when given.
#[allow(clippy::too_many_arguments)] // the GEMM signature: operands, output, then the three sizes and a flag
pub async fn matmul(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    a: &Buffer,
    b: &Buffer,
    bias: Option<&Buffer>,
    c: &Buffer,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
) -> Result<()> {
    const OP: &str = "matmul";
    check_len(OP, "a", a, m * k)?;
    check_len(OP, "b", b, k * n)?;
    check_len(OP, "c", c, m * n)?;
    if let Some(bias) = bias {
        check_len(OP, "bias", bias, n)?;
    }
    let p = MatmulParams {
        m: u32_of(OP, "m", m)?,
        n: u32_of(OP, "n", n)?,
        k: u32_of(OP, "k", k)?,
        trans_b: trans_b as u32,
        use_bias: bias.is_some() as u32,
        ..Default::default()
    };
    let groups = [n.div_ceil(64) as u32, m.div_ceil(128) as u32, 1];
    ctx.dispatch(enc, OP, &p, &[a, b, bias.unwrap_or(a), c], groups)
        .await
}

/// D[i,j] = max(‖a_i‖² + ‖b_j‖² − 2·a_i·b_j, 0) for A [N,D], B [M,D] → D [N,M].
#[allow(clippy::too_many_arguments)] // operands, output, sizes
pub async fn pairwise_sqdist(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    a: &Buffer,
    b: &Buffer,
    out: &Buffer,
    n: usize,
    m: usize,
    d: usize,
) -> Result<()> {
    const OP: &str = "pairwise_sqdist";
    check_len(OP, "a", a, n * d)?;
    check_len(OP, "b", b, m * d)?;
    check_len(OP, "out", out, n * m)?;
    let p = PairwiseSqdistParams {
        n: u32_of(OP, "n", n)?,
        m: u32_of(OP, "m", m)?,
        d: u32_of(OP, "d", d)?,
        _pad0: 0,
    };
    ctx.dispatch(
        enc,
        OP,
        &p,
        &[a, b, out],
        [m.div_ceil(64) as u32, n.div_ceil(128) as u32, 1],
    )
    .await
}

/// k-center step: mind[i] = min(mind[i], ‖x_i − x_center‖²), or = when `init`.
#[allow(clippy::too_many_arguments)] // operands, sizes, the centre and the init flag
pub async fn min_dist_update(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    mind: &Buffer,
    n: usize,
    d: usize,
    center: usize,
    init: bool,
) -> Result<()> {
    const OP: &str = "min_dist_update";
    check_len(OP, "x", x, n * d)?;
    check_len(OP, "mind", mind, n)?;
    if center >= n {
        return Err(Error::shape(
            OP,
            format!("centre {center} is outside the {n} rows"),
        ));
    }
    let p = MinDistUpdateParams {
        n: u32_of(OP, "n", n)?,
        d: u32_of(OP, "d", d)?,
        center: center as u32,
        init: init as u32,
    };
    ctx.dispatch(enc, OP, &p, &[x, mind], ctx.grid_1d(n, 256))
        .await
}

/// Per row of X [R,C]: max value and its lowest column index (u32::MAX when the row has no comparable value).
pub async fn argmax_rows(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    out_val: &Buffer,
    out_idx: &Buffer,
    rows: usize,
    cols: usize,
) -> Result<()> {
    const OP: &str = "argmax_rows";
    check_len(OP, "x", x, rows * cols)?;
    check_len(OP, "out_val", out_val, rows)?;
    check_len(OP, "out_idx", out_idx, rows)?;
    let p = ArgmaxRowsParams {
        rows: u32_of(OP, "rows", rows)?,
        cols: u32_of(OP, "cols", cols)?,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[x, out_val, out_idx], ctx.grid_1d(rows, 1))
        .await
}

/// Per row of X [R,C]: the k smallest values (ascending, ties to the lower column) and their columns +
/// `col_offset`; with `merge`, extend the lists already in the outputs (tiles in increasing column order).
#[allow(clippy::too_many_arguments)] // operands, sizes, streaming offset and flag
pub async fn topk_rows(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    out_val: &Buffer,
    out_idx: &Buffer,
    rows: usize,
    cols: usize,
    k: usize,
    col_offset: usize,
    merge: bool,
) -> Result<()> {
    const OP: &str = "topk_rows";
    if k == 0 || k > 64 {
        return Err(Error::shape(
            OP,
            format!("k = {k}; the kernel supports 1 ≤ k ≤ 64"),
        ));
    }
    check_len(OP, "x", x, rows * cols)?;
    check_len(OP, "out_val", out_val, rows * k)?;
    check_len(OP, "out_idx", out_idx, rows * k)?;
    let p = TopkRowsParams {
        rows: u32_of(OP, "rows", rows)?,
        cols: u32_of(OP, "cols", cols)?,
        k: k as u32,
        col_offset: u32_of(OP, "col_offset", col_offset)?,
        merge: merge as u32,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[x, out_val, out_idx], ctx.grid_1d(rows, 64))
        .await
}

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
    let p = SoftmaxRowsParams {
        rows: u32_of(OP, "rows", rows)?,
        cols: u32_of(OP, "cols", cols)?,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_1d(rows, 1))
        .await
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
    let p = LayernormParams {
        rows: u32_of(OP, "rows", rows)?,
        d: u32_of(OP, "d", d)?,
        eps,
        _pad0: 0,
    };
    ctx.dispatch(enc, OP, &p, &[x, w, b, y], ctx.grid_1d(rows, 1))
        .await
}

/// Exact-erf GELU, elementwise over n values.
pub async fn gelu(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    y: &Buffer,
    n: usize,
) -> Result<()> {
    const OP: &str = "gelu";
    check_len(OP, "x", x, n)?;
    check_len(OP, "y", y, n)?;
    let p = GeluParams {
        n: u32_of(OP, "n", n)?,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_1d(n, 256))
        .await
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
    let p = ReduceRowsParams {
        rows: u32_of(OP, "rows", rows)?,
        cols: u32_of(OP, "cols", cols)?,
        op: op as u32,
        _pad0: 0,
    };
    ctx.dispatch(enc, OP, &p, &[x, out], ctx.grid_1d(rows, 1))
        .await
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
    ctx.dispatch(
        enc,
        OP,
        &p,
        &[logits, entropy, maxprob],
        ctx.grid_1d(images * pixels, 256),
    )
    .await
}
