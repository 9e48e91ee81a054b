//! Pairwise squared distances between feature rows (three kernels, one contract).

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::{Error, Result};

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
    pairwise_with(ctx, enc, PairwiseKernel::Tiled, [a, b, out], [n, m, d]).await
}

/// The `pairwise_sqdist_regs` kernel: `pairwise_sqdist`'s contract, register-blocked for CPU adapters (the same
/// 128×64 tile per workgroup, so the same grid).
#[allow(clippy::too_many_arguments)] // operands, output and the three sizes
pub async fn pairwise_sqdist_regs(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    a: &Buffer,
    b: &Buffer,
    out: &Buffer,
    n: usize,
    m: usize,
    d: usize,
) -> Result<()> {
    pairwise_with(ctx, enc, PairwiseKernel::Regs, [a, b, out], [n, m, d]).await
}

/// The `pairwise_sqdist_regs4` kernel: `pairwise_sqdist_regs` with vec4 loads; D must be a multiple of 4.
#[allow(clippy::too_many_arguments)] // operands, output and the three sizes
pub async fn pairwise_sqdist_regs4(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    a: &Buffer,
    b: &Buffer,
    out: &Buffer,
    n: usize,
    m: usize,
    d: usize,
) -> Result<()> {
    pairwise_with(ctx, enc, PairwiseKernel::Regs4, [a, b, out], [n, m, d]).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PairwiseKernel {
    Tiled,
    Regs,
    Regs4,
}

/// The three distance kernels share operands, params and grid.
async fn pairwise_with(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    kernel: PairwiseKernel,
    [a, b, out]: [&Buffer; 3],
    [n, m, d]: [usize; 3],
) -> Result<()> {
    let op = match kernel {
        PairwiseKernel::Tiled => "pairwise_sqdist",
        PairwiseKernel::Regs => "pairwise_sqdist_regs",
        PairwiseKernel::Regs4 => "pairwise_sqdist_regs4",
    };
    if kernel == PairwiseKernel::Regs4 && d % 4 != 0 {
        return Err(Error::shape(op, format!("reads vec4s: D = {d} must be a multiple of 4")));
    }
    check_len(op, "a", a, n * d)?;
    check_len(op, "b", b, m * d)?;
    check_len(op, "out", out, n * m)?;
    let p = PairwiseSqdistParams { n: u32_of(op, "n", n)?, m: u32_of(op, "m", m)?, d: u32_of(op, "d", d)?, _pad0: 0 };
    let groups = [m.div_ceil(64) as u32, n.div_ceil(128) as u32, 1];
    // Same members in the same order (each checked against its WGSL by the layout test).
    match kernel {
        PairwiseKernel::Tiled => ctx.dispatch(enc, op, &p, &[a, b, out], groups).await,
        PairwiseKernel::Regs => {
            ctx.dispatch(enc, op, &bytemuck::cast::<_, PairwiseSqdistRegsParams>(p), &[a, b, out], groups).await
        }
        PairwiseKernel::Regs4 => {
            ctx.dispatch(enc, op, &bytemuck::cast::<_, PairwiseSqdistRegs4Params>(p), &[a, b, out], groups).await
        }
    }
}

/// Squared distances with the kernel of this adapter's family ([`GpuContext::gemm_kernel`]): with `matmul_regs4`
/// (CPU adapters), `pairwise_sqdist_regs4` when D is a multiple of 4 and `pairwise_sqdist_regs` otherwise; with
/// `matmul_regs`, `pairwise_sqdist_regs`; with `matmul`, `pairwise_sqdist`.
#[allow(clippy::too_many_arguments)] // operands, output and the three sizes
pub async fn sqdist(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    a: &Buffer,
    b: &Buffer,
    out: &Buffer,
    n: usize,
    m: usize,
    d: usize,
) -> Result<()> {
    if ctx.gemm_kernel() == GemmKernel::MatmulRegs4 && d.is_multiple_of(4) {
        pairwise_sqdist_regs4(ctx, enc, a, b, out, n, m, d).await
    } else if ctx.gemm_kernel().is_register_blocked() {
        pairwise_sqdist_regs(ctx, enc, a, b, out, n, m, d).await
    } else {
        pairwise_sqdist(ctx, enc, a, b, out, n, m, d).await
    }
}
