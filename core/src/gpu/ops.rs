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
        return Err(Error::shape(op, format!("buffer '{what}' holds {} bytes, the shape needs {need}", buf.size())));
    }
    Ok(())
}

fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape(op, format!("{what} = {v} does not fit in 32 bits")))
}

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
        self != GemmKernel::MatmulRegs4 || (k % 4 == 0 && (trans_b || n % 4 == 0))
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
    let pre = ctx.storage("gemm_gelu", (m * n * 4) as u64)?;
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
    let part = if splits > 1 { Some(ctx.storage(op, (m * n * splits * 4) as u64)?) } else { None };
    let bindings = [a, b, bias.unwrap_or(a), part.as_ref().unwrap_or(c)];
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
        let ones = ctx.upload(op, &vec![1f32; splits])?;
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
    if ctx.gemm_kernel() == GemmKernel::MatmulRegs4 && d % 4 == 0 {
        pairwise_sqdist_regs4(ctx, enc, a, b, out, n, m, d).await
    } else if ctx.gemm_kernel().is_register_blocked() {
        pairwise_sqdist_regs(ctx, enc, a, b, out, n, m, d).await
    } else {
        pairwise_sqdist(ctx, enc, a, b, out, n, m, d).await
    }
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
        return Err(Error::shape(OP, format!("centre {center} is outside the {n} rows")));
    }
    let p = MinDistUpdateParams {
        n: u32_of(OP, "n", n)?,
        d: u32_of(OP, "d", d)?,
        center: center as u32,
        init: init as u32,
    };
    // 32 rows per workgroup of 256 (eight threads per row).
    ctx.dispatch(enc, OP, &p, &[x, mind], ctx.grid_1d(n * 8, 256)).await
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
    let p = ArgmaxRowsParams { rows: u32_of(OP, "rows", rows)?, cols: u32_of(OP, "cols", cols)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, out_val, out_idx], ctx.grid_1d(rows, 1)).await
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
        return Err(Error::shape(OP, format!("k = {k}; the kernel supports 1 ≤ k ≤ 64")));
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
    ctx.dispatch(enc, OP, &p, &[x, out_val, out_idx], ctx.grid_1d(rows, 64)).await
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
    ctx.dispatch(enc, OP, &p, &[x, w, b, y], ctx.grid_1d(rows, 64)).await
}

/// Exact-erf GELU, elementwise over n values.
pub async fn gelu(ctx: &GpuContext, enc: &mut CommandEncoder, x: &Buffer, y: &Buffer, n: usize) -> Result<()> {
    const OP: &str = "gelu";
    check_len(OP, "x", x, n)?;
    check_len(OP, "y", y, n)?;
    let p = GeluParams { n: u32_of(OP, "n", n)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_1d(n, 256)).await
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
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_1d(rows * hidden, 256)).await
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
    ctx.dispatch(enc, OP, &p, &[x, dy, dx], ctx.grid_1d(n, 256)).await
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
    ctx.dispatch(enc, OP, &p, &[x, dy, dx], ctx.grid_1d(rows, 64)).await
}

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
    ctx.dispatch(enc, OP, &p, &[logits, labels, sums, grad], ctx.grid_1d(groups * 256, 256)).await?;
    p.phase = 1;
    ctx.dispatch(enc, OP, &p, &[logits, labels, sums, grad], [1, 1, 1]).await?;
    p.phase = 2;
    ctx.dispatch(enc, OP, &p, &[logits, labels, sums, grad], ctx.grid_1d(rows, 256)).await
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
    ctx.dispatch(enc, OP, &p, &[logits, entropy, maxprob], ctx.grid_1d(images * pixels, 256)).await
}

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
    ctx.dispatch(enc, OP, &p, &[x, wt, bias, y], ctx.grid_1d(ho * wo.div_ceil(4) * g.c, 256)).await
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
    if g.k != 3 || g.c % 4 != 0 {
        let what = format!("takes 3×3 kernels on a multiple of 4 channels, not k = {}, C = {}", g.k, g.c);
        return Err(Error::shape("im2col_k3c4", what));
    }
    im2col_with(ctx, enc, "im2col_k3c4", x, y, g).await
}

/// im2col with the kernel of this adapter's family: `im2col_k3c4` where the GEMM is `matmul_regs4` (CPU adapters)
/// and the shape allows it, `im2col` otherwise. What models and training call.
pub async fn unfold(ctx: &GpuContext, enc: &mut CommandEncoder, x: &Buffer, y: &Buffer, g: ConvGeom) -> Result<()> {
    if ctx.gemm_kernel() == GemmKernel::MatmulRegs4 && g.k == 3 && g.c % 4 == 0 {
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
        return ctx.dispatch(enc, op, &p, &[x, y], ctx.grid_1d(ho * wo * g.c / 4, 256)).await;
    }
    ctx.dispatch(enc, op, &p, &[x, y], ctx.grid_1d(ho * wo * g.c, 256)).await
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
    ctx.dispatch(enc, "pad2d", &Pad2dParams::from(p), &[x, y], ctx.grid_1d(hp * wp * c, 256)).await
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
    ctx.dispatch(enc, "crop_add2d", &p, &[x, y], ctx.grid_1d(h * w * c, 256)).await
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

/// Windowed multi-head attention layout (see `shaders/attention.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnGeom {
    /// Token grid width and height (padded to whole windows).
    pub grid_w: usize,
    pub grid_h: usize,
    pub ws_h: usize,
    pub ws_w: usize,
    pub heads: usize,
    pub hd: usize,
    /// Floats per qkv row, offset of head h's q (h·head_stride), and k/v offsets from it.
    pub qkv_stride: usize,
    pub head_stride: usize,
    pub k_off: usize,
    pub v_off: usize,
    pub scale: f32,
}

impl AttnGeom {
    /// TinyViT: qkv channels interleaved per head ([q_h | k_h | v_h] blocks of 3·hd).
    pub fn interleaved(grid_h: usize, grid_w: usize, ws: usize, heads: usize, hd: usize) -> Self {
        AttnGeom {
            grid_w,
            grid_h,
            ws_h: ws,
            ws_w: ws,
            heads,
            hd,
            qkv_stride: 3 * heads * hd,
            head_stride: 3 * hd,
            k_off: hd,
            v_off: 2 * hd,
            scale: (hd as f32).powf(-0.5),
        }
    }

    /// ViT: one window over a sequence of `s` tokens, qkv rows [all q | all k | all v].
    pub fn sequence(s: usize, heads: usize, hd: usize) -> Self {
        Self::sequences(1, s, heads, hd)
    }

    /// `b` ViT sequences of `s` tokens each, stored one after another: one 1 × s window per sequence.
    pub fn sequences(b: usize, s: usize, heads: usize, hd: usize) -> Self {
        let c = heads * hd;
        AttnGeom {
            grid_w: s,
            grid_h: b,
            ws_h: 1,
            ws_w: s,
            heads,
            hd,
            qkv_stride: 3 * c,
            head_stride: hd,
            k_off: c,
            v_off: 2 * c,
            scale: (hd as f32).powf(-0.5),
        }
    }

    pub fn tokens(&self) -> usize {
        self.grid_w * self.grid_h
    }

    pub fn windows(&self) -> (usize, usize) {
        (self.grid_w / self.ws_w, self.grid_h / self.ws_h)
    }
}

/// O [tokens, heads·hd] = softmax(Q·Kᵀ·scale (+ relative bias)) · V per window and head.
pub async fn attention(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    qkv: &Buffer,
    biases: Option<&Buffer>,
    out: &Buffer,
    g: AttnGeom,
) -> Result<()> {
    const OP: &str = "attention";
    if g.hd == 0 || g.hd > 64 || g.hd % 4 != 0 {
        return Err(Error::shape(OP, format!("head dim {} (the kernel supports multiples of 4 up to 64)", g.hd)));
    }
    if g.grid_w % g.ws_w != 0 || g.grid_h % g.ws_h != 0 {
        return Err(Error::shape(
            OP,
            format!("grid {}x{} is not a whole number of {}x{} windows", g.grid_h, g.grid_w, g.ws_h, g.ws_w),
        ));
    }
    let n = g.ws_h * g.ws_w;
    check_len(OP, "qkv", qkv, g.tokens() * g.qkv_stride)?;
    check_len(OP, "out", out, g.tokens() * g.heads * g.hd)?;
    if let Some(b) = biases {
        check_len(OP, "biases", b, g.heads * n)?;
    }
    let (nx, ny) = g.windows();
    let p = AttentionParams {
        grid_w: u32_of(OP, "grid_w", g.grid_w)?,
        ws_h: g.ws_h as u32,
        ws_w: g.ws_w as u32,
        n_win_x: nx as u32,
        heads: g.heads as u32,
        hd: g.hd as u32,
        qkv_stride: g.qkv_stride as u32,
        head_stride: g.head_stride as u32,
        k_off: g.k_off as u32,
        v_off: g.v_off as u32,
        out_stride: (g.heads * g.hd) as u32,
        has_bias: biases.is_some() as u32,
        scale: g.scale,
        // Two queries per thread for head dims 32 and 64 on CPU adapters (the kernel's header says why).
        pair: ctx.gemm_kernel().is_register_blocked() as u32,
        ..Default::default()
    };
    let groups = [n.div_ceil(64) as u32, g.heads as u32, (nx * ny) as u32];
    ctx.dispatch(enc, OP, &p, &[qkv, biases.unwrap_or(qkv), out], groups).await
}

/// Layout of a two-sequence attention (see `shaders/cross_attention.wgsl`): `nq` queries, `nk` keys/values,
/// `heads` heads of `hd` channels at column h·hd of each row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossAttnGeom {
    pub nq: usize,
    pub nk: usize,
    pub heads: usize,
    pub hd: usize,
    pub q_stride: usize,
    pub k_stride: usize,
    pub v_stride: usize,
    pub out_stride: usize,
    pub scale: f32,
}

impl CrossAttnGeom {
    /// Dense rows of heads·hd channels everywhere, scale 1/√hd (SAM's `Attention`).
    pub fn dense(nq: usize, nk: usize, heads: usize, hd: usize) -> Self {
        let c = heads * hd;
        CrossAttnGeom {
            nq,
            nk,
            heads,
            hd,
            q_stride: c,
            k_stride: c,
            v_stride: c,
            out_stride: c,
            scale: 1.0 / (hd as f32).sqrt(),
        }
    }
}

/// O [nq, heads·hd] = softmax(Q·Kᵀ·scale)·V per head, Q and K/V from different sequences.
pub async fn cross_attention(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    q: &Buffer,
    k: &Buffer,
    v: &Buffer,
    out: &Buffer,
    g: CrossAttnGeom,
) -> Result<()> {
    const OP: &str = "cross_attention";
    if g.hd == 0 || g.hd > 64 || g.hd % 4 != 0 {
        return Err(Error::shape(OP, format!("head dim {} (the kernel supports multiples of 4 up to 64)", g.hd)));
    }
    if g.nq == 0 || g.nk == 0 || g.heads == 0 {
        return Err(Error::shape(OP, format!("empty attention: {} queries, {} keys, {} heads", g.nq, g.nk, g.heads)));
    }
    let c = g.heads * g.hd;
    if g.q_stride < c || g.k_stride < c || g.v_stride < c || g.out_stride < c {
        return Err(Error::shape(OP, format!("row strides must hold {c} channels: {g:?}")));
    }
    check_len(OP, "q", q, (g.nq - 1) * g.q_stride + c)?;
    check_len(OP, "k", k, (g.nk - 1) * g.k_stride + c)?;
    check_len(OP, "v", v, (g.nk - 1) * g.v_stride + c)?;
    check_len(OP, "out", out, (g.nq - 1) * g.out_stride + c)?;
    let p = CrossAttentionParams {
        nq: u32_of(OP, "nq", g.nq)?,
        nk: u32_of(OP, "nk", g.nk)?,
        heads: u32_of(OP, "heads", g.heads)?,
        hd: u32_of(OP, "hd", g.hd)?,
        q_stride: u32_of(OP, "q_stride", g.q_stride)?,
        k_stride: u32_of(OP, "k_stride", g.k_stride)?,
        v_stride: u32_of(OP, "v_stride", g.v_stride)?,
        out_stride: u32_of(OP, "out_stride", g.out_stride)?,
        scale: g.scale,
        ..Default::default()
    };
    let groups = u32_of(OP, "query groups", g.nq.div_ceil(64))?;
    ctx.dispatch(enc, OP, &p, &[q, k, v, out], [groups, g.heads as u32, 1]).await
}

/// y = max(x, 0) over n values.
pub async fn relu(ctx: &GpuContext, enc: &mut CommandEncoder, x: &Buffer, y: &Buffer, n: usize) -> Result<()> {
    const OP: &str = "relu";
    check_len(OP, "x", x, n)?;
    check_len(OP, "y", y, n)?;
    let p = ReluParams { n: u32_of(OP, "n", n)?, ..Default::default() };
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_1d(n, 256)).await
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
    ctx.dispatch(enc, OP, &p, &[x, bias, y], ctx.grid_1d(n, 256)).await
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
    ctx.dispatch(enc, OP, &p, &[logits, labels, loss, dlogits], ctx.grid_1d(rows, 64)).await
}

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
    ctx.dispatch(enc, OP, &prm, &[p, g, m, v], ctx.grid_1d(n, 256)).await
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
    ctx.dispatch(enc, OP, &prm, &[p, g, b], ctx.grid_1d(n, 256)).await
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
    ctx.dispatch(enc, OP, &p, &[t, s], ctx.grid_1d(n, 256)).await
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
    ctx.dispatch(enc, OP, &p, &[z, zt, loss, dz], ctx.grid_1d(rows, 64)).await
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
    ctx.dispatch(enc, OP, &p, &[x, y], ctx.grid_1d(rows * cols, 256)).await
}

/// k-means centre update: centers[c] = mean of the rows `order[offsets[c]..offsets[c+1]]` (empty: unchanged).
#[allow(clippy::too_many_arguments)] // operands, output, sizes
pub async fn segment_mean(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    x: &Buffer,
    order: &Buffer,
    offsets: &Buffer,
    centers: &Buffer,
    n: usize,
    k: usize,
    d: usize,
) -> Result<()> {
    const OP: &str = "segment_mean";
    check_len(OP, "x", x, n * d)?;
    check_len(OP, "order", order, n)?;
    check_len(OP, "offsets", offsets, k + 1)?;
    check_len(OP, "centers", centers, k * d)?;
    let p = SegmentMeanParams { k: u32_of(OP, "k", k)?, d: u32_of(OP, "d", d)?, ..Default::default() };
    u32_of(OP, "k·d", k * d)?;
    ctx.dispatch(enc, OP, &p, &[x, order, offsets, centers], ctx.grid_1d(k * d, 256)).await
}

/// Facility-location marginal gain of each row of a squared-distance tile [R,C] between L2-normalised rows,
/// given `mind` [C] (squared distance of each column to its nearest chosen row); with `potential`, k-means++'s
/// potential decrease Σ_j max(0, mind_j − D_rj) of each candidate centre instead; `mode.accumulate` adds.
#[allow(clippy::too_many_arguments)] // operands, output, sizes, the mode
pub async fn facility_gain(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    dist: &Buffer,
    mind: &Buffer,
    gain: &Buffer,
    rows: usize,
    cols: usize,
    mode: crate::cpu::GainMode,
) -> Result<()> {
    const OP: &str = "facility_gain";
    check_len(OP, "dist", dist, rows * cols)?;
    check_len(OP, "mind", mind, cols)?;
    check_len(OP, "gain", gain, rows)?;
    let p = FacilityGainParams {
        rows: u32_of(OP, "rows", rows)?,
        cols: u32_of(OP, "cols", cols)?,
        mode: mode.bits(),
        _pad0: 0,
    };
    ctx.dispatch(enc, OP, &p, &[dist, mind, gain], ctx.grid_1d(rows, 1)).await
}

/// Where a squared-distance tile sits in the pool: rows `row_offset..+rows`, columns `col_offset..+cols`.
#[derive(Clone, Copy, Debug)]
pub struct Tile {
    pub rows: usize,
    pub cols: usize,
    pub row_offset: usize,
    pub col_offset: usize,
}

/// ProbCover's purity scan over one tile: per row the smallest distance to another label and the largest
/// distance, extending earlier column tiles when `merge`.
#[allow(clippy::too_many_arguments)] // the tile, the labels, both outputs and the flag
pub async fn other_label_min(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    dist: &Buffer,
    labels: &Buffer,
    other_min: &Buffer,
    row_max: &Buffer,
    n: usize,
    t: Tile,
    merge: bool,
) -> Result<()> {
    const OP: &str = "other_label_min";
    check_len(OP, "dist", dist, t.rows * t.cols)?;
    if t.row_offset + t.rows > n || t.col_offset + t.cols > n {
        return Err(Error::shape(OP, format!("tile {t:?} reaches outside the {n} rows")));
    }
    check_len(OP, "labels", labels, n)?;
    check_len(OP, "other_min", other_min, n)?;
    check_len(OP, "row_max", row_max, n)?;
    let p = OtherLabelMinParams {
        rows: u32_of(OP, "rows", t.rows)?,
        cols: u32_of(OP, "cols", t.cols)?,
        row_offset: u32_of(OP, "row_offset", t.row_offset)?,
        col_offset: u32_of(OP, "col_offset", t.col_offset)?,
        merge: merge as u32,
        ..Default::default()
    };
    ctx.dispatch(enc, OP, &p, &[dist, labels, other_min, row_max], ctx.grid_1d(t.rows, 64)).await
}

/// The δ-graph of one tile: count the entries ≤ `radius2` per row into `cursor` (`write` false), or write their
/// columns at `edges[cursor[i] − base..]` and advance `cursor` (`write` true; only the positions
/// `base..base + capacity` are kept, `capacity` = edges' length: one chunk of a graph larger than a buffer).
#[allow(clippy::too_many_arguments)] // the tile, the pass, the threshold and both buffers
pub async fn radius_edges(
    ctx: &GpuContext,
    enc: &mut CommandEncoder,
    dist: &Buffer,
    cursor: &Buffer,
    edges: &Buffer,
    n: usize,
    t: Tile,
    write: bool,
    radius2: f32,
    capacity: usize,
    base: usize,
) -> Result<()> {
    const OP: &str = "radius_edges";
    check_len(OP, "dist", dist, t.rows * t.cols)?;
    if t.row_offset + t.rows > n || t.col_offset + t.cols > n {
        return Err(Error::shape(OP, format!("tile {t:?} reaches outside the {n} rows")));
    }
    check_len(OP, "cursor", cursor, n)?;
    check_len(OP, "edges", edges, capacity)?;
    let p = RadiusEdgesParams {
        rows: u32_of(OP, "rows", t.rows)?,
        cols: u32_of(OP, "cols", t.cols)?,
        row_offset: u32_of(OP, "row_offset", t.row_offset)?,
        col_offset: u32_of(OP, "col_offset", t.col_offset)?,
        mode: write as u32,
        radius2,
        capacity: u32_of(OP, "capacity", capacity)?,
        base: u32_of(OP, "base", base)?,
    };
    ctx.dispatch(enc, OP, &p, &[dist, cursor, edges], ctx.grid_1d(t.rows, 64)).await
}
