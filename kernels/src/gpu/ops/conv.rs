//! Convolution and layout: depthwise conv, im2col, padding, crops, depth-to-space, transpose (HWC layouts).

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::{Error, Result};

/// Geometry of a channels-last convolution: input H×W×C, square kernel k, stride, zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeom {
    /// Output (Ho, Wo) as PyTorch computes it.
    pub fn out_hw(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
    }

    pub(crate) fn check(&self, op: &'static str) -> Result<()> {
        if self.k == 0 || self.stride == 0 || self.h + 2 * self.pad < self.k || self.w + 2 * self.pad < self.k {
            return Err(Error::shape(op, format!("bad convolution geometry {self:?}")));
        }
        Ok(())
    }
}

/// Depthwise convolution of X [H,W,C] with W [C,k,k] and bias [C] → Y [Ho,Wo,C].
pub async fn dwconv2d(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    wt: &Buffer,
    bias: &Buffer,
    y: &Buffer,
    g: ConvGeom,
) -> Result<()> {
    const OP: &str = "dwconv2d";
    g.check(OP)?;
    let (ho, wo) = g.out_hw();
    check_len(OP, "x", x, g.h * g.w * g.c)?;
    check_len(OP, "w", wt, g.c * g.k * g.k)?;
    check_len(OP, "bias", bias, g.c)?;
    check_len(OP, "y", y, ho * wo * g.c)?;
    let p = Dwconv2dParams {
        h: u32_of(OP, "h", g.h)?,
        w: u32_of(OP, "w", g.w)?,
        c: u32_of(OP, "c", g.c)?,
        k: g.k as u32,
        stride: g.stride as u32,
        pad: g.pad as u32,
        ho: ho as u32,
        wo: wo as u32,
    };
    // One thread per channel and run of four outputs along x.
    ctx.dispatch(enc, OP, &p, &[x, wt, bias, y], ctx.grid_threads(OP, ho * wo.div_ceil(4) * g.c)?).await
}

/// Unfold X [H,W,C] into [Ho·Wo, C·k·k] (column order c, ky, kx) for convolution as a matmul.
pub async fn im2col(ctx: &GpuContext, enc: &mut CommandEncoder, x: &Buffer, y: &Buffer, g: ConvGeom) -> Result<()> {
    im2col_with(ctx, enc, "im2col", x, y, g).await
}

/// The `im2col_k3c4` kernel: `im2col` for a 3×3 kernel on C % 4 == 0 channels, four channels per thread with vec4
/// loads and stores (for CPU adapters); other shapes are an error.
pub async fn im2col_k3c4(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    y: &Buffer,
    g: ConvGeom,
) -> Result<()> {
    if g.k != 3 || !g.c.is_multiple_of(4) {
        let what = format!("takes 3×3 kernels on a multiple of 4 channels, not k = {}, C = {}", g.k, g.c);
        return Err(Error::shape("im2col_k3c4", what));
    }
    im2col_with(ctx, enc, "im2col_k3c4", x, y, g).await
}

/// im2col with the kernel of this adapter's family: `im2col_k3c4` where the GEMM is `matmul_regs4` (CPU adapters)
/// and the shape allows it, `im2col` otherwise. What models and training call.
pub async fn unfold(ctx: &GpuContext, enc: &mut CommandEncoder, x: &Buffer, y: &Buffer, g: ConvGeom) -> Result<()> {
    if ctx.gemm_kernel() == GemmKernel::MatmulRegs4 && g.k == 3 && g.c.is_multiple_of(4) {
        im2col_k3c4(ctx, enc, x, y, g).await
    } else {
        im2col(ctx, enc, x, y, g).await
    }
}

/// The two im2col kernels share operands, params and the checks; `im2col_k3c4` runs a thread per 4 channels.
async fn im2col_with(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    op: &'static str,
    x: &Buffer,
    y: &Buffer,
    g: ConvGeom,
) -> Result<()> {
    g.check(op)?;
    let (ho, wo) = g.out_hw();
    check_len(op, "x", x, g.h * g.w * g.c)?;
    check_len(op, "y", y, ho * wo * g.c * g.k * g.k)?;
    let p = Im2colParams {
        h: u32_of(op, "h", g.h)?,
        w: u32_of(op, "w", g.w)?,
        c: u32_of(op, "c", g.c)?,
        k: g.k as u32,
        stride: g.stride as u32,
        pad: g.pad as u32,
        ho: ho as u32,
        wo: wo as u32,
    };
    if op == "im2col_k3c4" {
        // Same members in the same order (checked against the WGSL by the layout test).
        let p = bytemuck::cast::<_, Im2colK3c4Params>(p);
        return ctx.dispatch(enc, op, &p, &[x, y], ctx.grid_threads(op, ho * wo * g.c / 4)?).await;
    }
    ctx.dispatch(enc, op, &p, &[x, y], ctx.grid_threads(op, ho * wo * g.c)?).await
}

/// Zero-pad X [H,W,C] to Y [Hp,Wp,C] (bottom/right).
#[allow(clippy::too_many_arguments)] // operands and the two shapes
pub async fn pad2d(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    y: &Buffer,
    h: usize,
    w: usize,
    c: usize,
    hp: usize,
    wp: usize,
) -> Result<()> {
    let p = padded_params("pad2d", (x, h * w * c), (y, hp * wp * c), h, w, c, hp, wp)?;
    ctx.dispatch(enc, "pad2d", &Pad2dParams::from(p), &[x, y], ctx.grid_threads("pad2d", hp * wp * c)?).await
}

/// Y [H,W,C] += top-left crop of X [Hp,Wp,C].
#[allow(clippy::too_many_arguments)] // operands and the two shapes
pub async fn crop_add2d(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    y: &Buffer,
    h: usize,
    w: usize,
    c: usize,
    hp: usize,
    wp: usize,
) -> Result<()> {
    let p = padded_params("crop_add2d", (x, hp * wp * c), (y, h * w * c), h, w, c, hp, wp)?;
    ctx.dispatch(enc, "crop_add2d", &p, &[x, y], ctx.grid_threads("crop_add2d", h * w * c)?).await
}

/// Checks and parameters shared by pad2d and crop_add2d (same layout: an H×W image inside an Hp×Wp one).
#[allow(clippy::too_many_arguments)] // the two (buffer, length) pairs and the two shapes
fn padded_params(
    op: &'static str,
    x: (&Buffer, usize),
    y: (&Buffer, usize),
    h: usize,
    w: usize,
    c: usize,
    hp: usize,
    wp: usize,
) -> Result<CropAdd2dParams> {
    if hp < h || wp < w {
        return Err(Error::shape(op, format!("an {h}x{w} image does not fit inside {hp}x{wp}")));
    }
    check_len(op, "x", x.0, x.1)?;
    check_len(op, "y", y.0, y.1)?;
    Ok(CropAdd2dParams {
        h: u32_of(op, "h", h)?,
        w: u32_of(op, "w", w)?,
        c: u32_of(op, "c", c)?,
        hp: u32_of(op, "hp", hp)?,
        wp: u32_of(op, "wp", wp)?,
        ..Default::default()
    })
}

/// Y [r·H·r·W, C] from X [H·W, r·r·C] (a stride-r r×r transposed convolution's matmul output) plus bias [C].
#[allow(clippy::too_many_arguments)] // operands and the shape
pub async fn depth_to_space(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    bias: &Buffer,
    y: &Buffer,
    h: usize,
    w: usize,
    c: usize,
    r: usize,
) -> Result<()> {
    const OP: &str = "depth_to_space";
    if r == 0 || c == 0 {
        return Err(Error::shape(OP, format!("factor {r}, {c} channels")));
    }
    let n = h * w * r * r * c;
    check_len(OP, "x", x, n)?;
    check_len(OP, "bias", bias, c)?;
    check_len(OP, "y", y, n)?;
    let p = DepthToSpaceParams {
        h: u32_of(OP, "h", h)?,
        w: u32_of(OP, "w", w)?,
        c: u32_of(OP, "c", c)?,
        r: u32_of(OP, "r", r)?,
    };
    ctx.dispatch(enc, OP, &p, &[x, bias, y], ctx.grid_threads(OP, n)?).await
}

/// Y [cols, rows] = Xᵀ.
pub async fn transpose(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    y: &Buffer,
    rows: usize,
    cols: usize,
) -> Result<()> {
    const OP: &str = "transpose";
    check_len(OP, "x", x, rows * cols)?;
    check_len(OP, "y", y, rows * cols)?;
    let p = TransposeParams { rows: u32_of(OP, "rows", rows)?, cols: u32_of(OP, "cols", cols)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_threads(OP, rows * cols)?).await
}
