//! GEMM: C = A · op(B) + bias in four kernels (tiled, register-blocked, vec4, f16 weights) and the choice between them.

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::{Error, Result};

/// The four GEMM kernels: one contract (C = A · op(B) + bias, split-K partials), different data movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernel {
    /// `matmul`: 128×64 tiles staged in workgroup memory, 8×4 per thread (GPUs).
    Matmul,
    /// `matmul_f16w`: `matmul` with B stored as f16.
    MatmulF16w,
    /// `matmul_regs`: no workgroup memory, 16×8 per invocation in registers (CPU adapters such as lavapipe).
    MatmulRegs,
    /// `matmul_regs4`: `matmul_regs` reading A and op(B) as vec4s; K % 4 == 0, and N % 4 == 0 when B is not
    /// transposed ([`GemmKernel::fits`]).
    MatmulRegs4,
}

impl GemmKernel {
    pub fn name(self) -> &'static str {
        match self {
            GemmKernel::Matmul => "matmul",
            GemmKernel::MatmulF16w => "matmul_f16w",
            GemmKernel::MatmulRegs => "matmul_regs",
            GemmKernel::MatmulRegs4 => "matmul_regs4",
        }
    }

    /// Whether this kernel takes C[M,N] = A[M,K] · op(B): every kernel but `matmul_regs4` takes any shape.
    pub fn fits(self, n: usize, k: usize, trans_b: bool) -> bool {
        self != GemmKernel::MatmulRegs4 || (k.is_multiple_of(4) && (trans_b || n.is_multiple_of(4)))
    }

    /// The kernel that runs a GEMM of this shape for a context whose choice is `self`: `matmul_regs4` where the
    /// shape does not fit it runs `matmul_regs`; every other choice runs itself.
    pub fn for_shape(self, n: usize, k: usize, trans_b: bool) -> GemmKernel {
        if self.fits(n, k, trans_b) {
            self
        } else {
            GemmKernel::MatmulRegs
        }
    }

    /// `matmul_regs` or `matmul_regs4`: the kernels for CPU adapters.
    pub fn is_register_blocked(self) -> bool {
        matches!(self, GemmKernel::MatmulRegs | GemmKernel::MatmulRegs4)
    }
}

/// C[M,N] = A[M,K] · B (B [K,N]) or A · Bᵀ (B [N,K], `trans_b`), plus `bias[N]` when given, with the f32 kernel
/// chosen for this adapter ([`GpuContext::gemm_kernel`]: `matmul_regs4` on CPU adapters, `matmul_regs` for the
/// shapes it does not take ([`GemmKernel::for_shape`]), `matmul` elsewhere).
/// What models and training call; [`matmul`] and [`matmul_regs`] run one kernel whatever the adapter.
#[allow(clippy::too_many_arguments)] // the GEMM signature: operands, output, then the three sizes and a flag
pub async fn gemm(
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
    gemm_with(ctx, enc, ctx.gemm_kernel().for_shape(n, k, trans_b), [a, b, c], bias, [m, n, k], trans_b, false).await
}

/// C = GELU(A · op(B) + bias) (exact erf form) with the adapter's GEMM ([`gemm`]): `matmul_regs4` applies the GELU
/// as it stores C (no split-K there); every other case runs the GEMM into scratch and then [`gelu`].
#[allow(clippy::too_many_arguments)] // the GEMM signature
pub async fn gemm_gelu(
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
    let kernel = ctx.gemm_kernel().for_shape(n, k, trans_b);
    if kernel == GemmKernel::MatmulRegs4 && split_k(m, n, k).0 == 1 {
        return gemm_with(ctx, enc, kernel, [a, b, c], bias, [m, n, k], trans_b, true).await;
    }
    let pre = crate::gpu::GpuBuffer::from(ctx.storage("gemm_gelu", (m * n * 4) as u64)?);
    gemm(ctx, enc, a, b, bias, &pre, m, n, k, trans_b).await?;
    gelu(ctx, enc, &pre, c, m * n).await
}

/// The `matmul` kernel: C[M,N] = A[M,K] · B (B [K,N]) or A · Bᵀ (B [N,K], `trans_b`), plus `bias[N]` when given.
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
    gemm_with(ctx, enc, GemmKernel::Matmul, [a, b, c], bias, [m, n, k], trans_b, false).await
}

/// The `matmul_regs` kernel: `matmul`'s contract, register-blocked for CPU adapters.
#[allow(clippy::too_many_arguments)] // the GEMM signature
pub async fn matmul_regs(
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
    gemm_with(ctx, enc, GemmKernel::MatmulRegs, [a, b, c], bias, [m, n, k], trans_b, false).await
}

/// The `matmul_regs4` kernel: `matmul_regs` with vec4 loads. K must be a multiple of 4, and N too unless
/// `trans_b` (rows of A and op(B) then start on 16-byte boundaries); other shapes are an error.
#[allow(clippy::too_many_arguments)] // the GEMM signature
pub async fn matmul_regs4(
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
    gemm_with(ctx, enc, GemmKernel::MatmulRegs4, [a, b, c], bias, [m, n, k], trans_b, false).await
}

/// The `matmul_regs4` kernel with the GELU fused into its store: C = GELU(A · op(B) + bias). Shapes as
/// [`matmul_regs4`], and C small enough that it runs without split-K ([`split_k`]); otherwise an error.
#[allow(clippy::too_many_arguments)] // the GEMM signature
pub async fn matmul_regs4_gelu(
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
    gemm_with(ctx, enc, GemmKernel::MatmulRegs4, [a, b, c], bias, [m, n, k], trans_b, true).await
}

/// `matmul` with B stored as f16 (`GpuContext::upload_f16`), A, bias, C and accumulation in f32. Needs the
/// device's `shader-f16` feature ([`GpuContext::has_f16`]).
#[allow(clippy::too_many_arguments)] // the GEMM signature
pub async fn matmul_f16w(
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
    gemm_with(ctx, enc, GemmKernel::MatmulF16w, [a, b, c], bias, [m, n, k], trans_b, false).await
}

/// The GEMM kernels share operands, the 128×64 output tile per workgroup, split-K and dispatch; B's element size
/// and the data movement inside a workgroup differ.
#[allow(clippy::too_many_arguments)] // operands, sizes, the layout of B and the fused GELU
async fn gemm_with(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    kernel: GemmKernel,
    [a, b, c]: [&Buffer; 3],
    bias: Option<&Buffer>,
    [m, n, k]: [usize; 3],
    trans_b: bool,
    gelu: bool,
) -> Result<()> {
    let op = kernel.name();
    if !kernel.fits(n, k, trans_b) {
        let what = if trans_b {
            format!("reads vec4s: K = {k} must be a multiple of 4")
        } else {
            format!("reads vec4s: K = {k} and, with B not transposed, N = {n} must be multiples of 4")
        };
        return Err(Error::shape(op, what));
    }
    let half_b = kernel == GemmKernel::MatmulF16w;
    check_len(op, "a", a, m * k)?;
    if half_b {
        check_len(op, "b (f16, two per word)", b, (k * n).div_ceil(2))?;
    } else {
        check_len(op, "b", b, k * n)?;
    }
    check_len(op, "c", c, m * n)?;
    if let Some(bias) = bias {
        check_len(op, "bias", bias, n)?;
    }
    let (splits, k_chunk) = split_k(m, n, k);
    if gelu && (kernel != GemmKernel::MatmulRegs4 || splits > 1) {
        let why =
            format!("a fused GELU needs matmul_regs4 without split-K ({m}x{n} with K = {k} splits {splits} ways)");
        return Err(Error::shape(op, why));
    }
    let p = MatmulParams {
        m: u32_of(op, "m", m)?,
        n: u32_of(op, "n", n)?,
        k: u32_of(op, "k", k)?,
        trans_b: trans_b as u32,
        use_bias: bias.is_some() as u32,
        splits: splits as u32,
        k_chunk: k_chunk as u32,
        ..Default::default()
    };
    let groups = [n.div_ceil(64) as u32, m.div_ceil(128) as u32, splits as u32];
    // Split-K writes [M·N, splits] partials into a scratch buffer (small: it is used only when C has few tiles),
    // summed into C in the same encoder.
    let part = if splits > 1 {
        Some(crate::gpu::GpuBuffer::from(ctx.storage(op, (m * n * splits * 4) as u64)?))
    } else {
        None
    };
    let bindings = [a, b, bias.unwrap_or(a), part.as_deref().unwrap_or(c)];
    // Same members in the same order (each checked against its WGSL by the layout test).
    match kernel {
        GemmKernel::Matmul => ctx.dispatch(enc, op, &p, &bindings, groups).await?,
        GemmKernel::MatmulF16w => {
            ctx.dispatch(enc, op, &bytemuck::cast::<_, MatmulF16wParams>(p), &bindings, groups).await?
        }
        GemmKernel::MatmulRegs => {
            ctx.dispatch(enc, op, &bytemuck::cast::<_, MatmulRegsParams>(p), &bindings, groups).await?
        }
        GemmKernel::MatmulRegs4 => {
            let p = MatmulRegs4Params { act: gelu as u32, ..bytemuck::cast::<_, MatmulRegs4Params>(p) };
            ctx.dispatch(enc, op, &p, &bindings, groups).await?
        }
    }
    // The partials' sum is itself a GEMM, [M·N, splits] · ones[splits]: a handful of workgroups (one per 128
    // outputs), where a row reduction would start a workgroup per output. f32 partials: `matmul_f16w` sums
    // them with `matmul`.
    if let Some(part) = &part {
        let ones = crate::gpu::GpuBuffer::from(ctx.upload(op, &vec![1f32; splits])?);
        let sum = if half_b { GemmKernel::Matmul } else { kernel.for_shape(1, splits, false) };
        Box::pin(gemm_with(ctx, enc, sum, [part, &ones, c], None, [m * n, 1, splits], false, false)).await?;
    }
    Ok(())
}

/// Split-K for a small output with a long K (a weight gradient: M, N the layer's sizes, K the batch's pixels),
/// where the 128×64 tiles are few and each would walk all of K alone: K is cut into chunks of at least 256 (a
/// multiple of the 16-deep K tile) so that about 64 workgroups run. Only for outputs of at most 16,384 values
/// (beyond that the tiles are enough). Returns (splits, chunk); (1, K) = none.
pub fn split_k(m: usize, n: usize, k: usize) -> (usize, usize) {
    const TARGET: usize = 64;
    let tiles = n.div_ceil(64) * m.div_ceil(128);
    if tiles >= TARGET / 4 || m * n > 16_384 || k < 1024 {
        return (1, k);
    }
    let per = TARGET.div_ceil(tiles.max(1));
    let chunk = k.div_ceil(per).next_multiple_of(16).max(256);
    (k.div_ceil(chunk), chunk)
}
