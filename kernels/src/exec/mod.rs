//! Where a model's forward pass runs: medpick's WGSL kernels on a `GpuContext`, or their CPU twins. The CPU
//! path is the browser's fallback when WebGPU is missing (and a whole-model oracle for the GPU path in tests);
//! both run the same layer code, so a model is written once against `Exec`.
//!
//! On the GPU, kernels are recorded into one command encoder and submitted at `flush` (or before a read).
//! On the CPU each call computes at once with `crate::cpu::*`.

mod scan;
mod train;

pub use scan::{Backend, Buf};

use crate::cpu;
use crate::gpu::ops::{self, AttnGeom, ConvGeom, CrossAttnGeom};
use crate::gpu::{read_f32, GpuBuffer, GpuContext};
use crate::{Error, Result};

/// A tensor living where its `Exec` computes.
pub enum Tensor {
    Gpu(GpuBuffer),
    Cpu(Vec<f32>),
    /// A matmul weight stored in f16 (`Exec::upload_weight` with half precision): only `matmul`'s B operand.
    GpuF16(GpuBuffer),
    /// The CPU twin's f16 weight: bit patterns, widened exactly where used.
    CpuF16(Vec<u16>),
    /// A matmul weight on the CPU backend (`Exec::upload_weight` in f32): read like `Cpu`, and kept packed for
    /// the GEMM after its first use as `matmul`'s B operand.
    CpuWeight(cpu::sgemm::PackedWeight),
}

impl Tensor {
    /// Bytes this tensor occupies where it lives.
    pub fn bytes(&self) -> u64 {
        match self {
            Tensor::Gpu(b) | Tensor::GpuF16(b) => b.size(),
            Tensor::Cpu(v) => (v.len() * 4) as u64,
            Tensor::CpuF16(v) => (v.len() * 2) as u64,
            Tensor::CpuWeight(w) => w.bytes(),
        }
    }
}

/// An execution target with its pending GPU work.
pub struct Exec<'a> {
    gpu: Option<(&'a GpuContext, wgpu::CommandEncoder)>,
    /// With checks on ([`Exec::with_checks`]): the first layer whose checkpointed output held NaN or Inf.
    checks: Option<Option<String>>,
}

fn mismatch(op: &'static str) -> Error {
    Error::Invalid(format!("{op}: a tensor lives on a different device than this forward pass"))
}

fn half_operand(op: &'static str) -> Error {
    Error::Invalid(format!("{op}: an f16 weight was given where the kernel reads f32 (f16 is for matmul weights only)"))
}

fn host<'t>(op: &'static str, t: &'t Tensor) -> Result<&'t [f32]> {
    match t {
        Tensor::Cpu(v) => Ok(v),
        Tensor::CpuWeight(w) => Ok(w.values()),
        Tensor::CpuF16(_) => Err(half_operand(op)),
        Tensor::Gpu(_) | Tensor::GpuF16(_) => Err(mismatch(op)),
    }
}

fn buf<'t>(op: &'static str, t: &'t Tensor) -> Result<&'t wgpu::Buffer> {
    match t {
        Tensor::Gpu(b) => Ok(b),
        Tensor::GpuF16(_) => Err(half_operand(op)),
        Tensor::Cpu(_) | Tensor::CpuF16(_) | Tensor::CpuWeight(_) => Err(mismatch(op)),
    }
}

fn host_len(op: &'static str, what: &str, t: &Tensor, want: usize) -> Result<()> {
    let n = host(op, t)?.len();
    if n < want {
        return Err(Error::shape(op, format!("{what} holds {n} values, needs {want}")));
    }
    Ok(())
}

impl<'a> Exec<'a> {
    pub fn gpu(ctx: &'a GpuContext) -> Self {
        Exec { gpu: Some((ctx, ctx.encoder())), checks: None }
    }

    pub fn cpu() -> Self {
        Exec { gpu: None, checks: None }
    }

    /// A diagnostic pass: every [`Exec::checkpoint`] reads its tensor back and the first layer whose output is
    /// not finite is kept ([`Exec::first_non_finite`]). Slow (a readback per layer); for locating a fault.
    pub fn with_checks(mut self) -> Self {
        self.checks = Some(None);
        self
    }

    /// A model's layer boundary: with checks on, note `layer()` if `t`'s first `len` values hold NaN or Inf and
    /// no earlier layer did. Free when checks are off.
    pub async fn checkpoint(&mut self, t: &Tensor, len: usize, layer: impl FnOnce() -> String) -> Result<()> {
        if !matches!(self.checks, Some(None)) {
            return Ok(());
        }
        let finite = if self.gpu.is_none() {
            // On the CPU the tensor is read where it is (no copy of a whole activation per layer).
            host_len("checkpoint", "tensor", t, len)?;
            cpu::all_finite(&host("checkpoint", t)?[..len])
        } else {
            cpu::all_finite(&self.read(t, len).await?)
        };
        if !finite {
            self.checks = Some(Some(layer()));
        }
        Ok(())
    }

    /// The first checkpointed layer with a non-finite output, in a pass with checks on.
    pub fn first_non_finite(&self) -> Option<&str> {
        self.checks.as_ref().and_then(|c| c.as_deref())
    }

    /// On the GPU when a context is given, on the CPU twins otherwise.
    pub fn on(ctx: Option<&'a GpuContext>) -> Self {
        match ctx {
            Some(c) => Exec::gpu(c),
            None => Exec::cpu(),
        }
    }

    /// True when this pass runs the WGSL kernels.
    pub fn is_gpu(&self) -> bool {
        self.gpu.is_some()
    }

    /// A named error when a model whose parameters live on one device is run on the other.
    pub fn check_params(&self, model: &str, params_on_gpu: bool) -> Result<()> {
        if self.is_gpu() == params_on_gpu {
            return Ok(());
        }
        let (here, there) = if params_on_gpu { ("GPU", "CPU") } else { ("CPU", "GPU") };
        Err(Error::Invalid(format!("{model}: parameters are on the {here}, the forward pass on the {there}")))
    }

    /// Copy host values to this device (model parameters, inputs).
    pub fn upload(&self, label: &'static str, v: &[f32]) -> Result<Tensor> {
        Ok(match &self.gpu {
            Some((ctx, _)) => Tensor::Gpu(ctx.upload(label, v)?.into()),
            None => Tensor::Cpu(v.to_vec()),
        })
    }

    /// Copy a matmul weight to this device, in f16 when `half` (f32 otherwise). f16 on the GPU needs the
    /// device's `shader-f16` feature; values beyond f16's range (±65504) are refused, naming `name`.
    pub fn upload_weight(&self, label: &'static str, name: &str, v: &[f32], half: bool) -> Result<Tensor> {
        if !half {
            if self.gpu.is_none() && cpu::sgemm::avx512() {
                return Ok(Tensor::CpuWeight(cpu::sgemm::PackedWeight::new(v.to_vec())));
            }
            return self.upload(label, v);
        }
        check_f16_range(name, v)?;
        Ok(match &self.gpu {
            Some((ctx, _)) => Tensor::GpuF16(ctx.upload_f16(label, v)?.into()),
            None => Tensor::CpuF16(cpu::matmul_f16w::to_f16_bits(v)),
        })
    }

    /// The output buffer of a GPU op; on the CPU an empty placeholder (every CPU arm returns the vector its
    /// kernel made).
    fn alloc(&self, len: usize) -> Result<Tensor> {
        Ok(match &self.gpu {
            Some((ctx, _)) => Tensor::Gpu(ctx.storage("activation", (len * 4) as u64)?.into()),
            None => Tensor::Cpu(Vec::new()),
        })
    }

    /// Submit the recorded GPU work (a no-op on the CPU). Long passes flush per block so the driver gets work
    /// early and the encoder stays small.
    pub fn flush(&mut self) {
        if let Some((ctx, enc)) = &mut self.gpu {
            ctx.submit(std::mem::replace(enc, ctx.encoder()));
        }
    }

    /// Read `len` values back to the host (submitting pending work first).
    pub async fn read(&mut self, t: &Tensor, len: usize) -> Result<Vec<f32>> {
        self.flush();
        match (&self.gpu, t) {
            (Some((ctx, _)), Tensor::Gpu(b)) => read_f32(ctx, b, len).await,
            (None, Tensor::Cpu(_) | Tensor::CpuWeight(_)) => {
                host_len("read", "tensor", t, len)?;
                Ok(host("read", t)?[..len].to_vec())
            }
            _ => Err(mismatch("read")),
        }
    }

    /// C[M,N] = A[M,K] · B (or Bᵀ) + bias.
    #[allow(clippy::too_many_arguments)] // the GEMM signature
    pub async fn matmul(
        &mut self,
        a: &Tensor,
        b: &Tensor,
        bias: Option<&Tensor>,
        m: usize,
        n: usize,
        k: usize,
        trans_b: bool,
    ) -> Result<Tensor> {
        const OP: &str = "matmul";
        let c = self.alloc(m * n)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let bias = bias.map(|t| buf(OP, t)).transpose()?;
                let (a, cb) = (buf(OP, a)?, buf(OP, &c)?);
                match b {
                    Tensor::GpuF16(bh) => ops::matmul_f16w(ctx, enc, a, bh, bias, cb, m, n, k, trans_b).await?,
                    _ => ops::gemm(ctx, enc, a, buf(OP, b)?, bias, cb, m, n, k, trans_b).await?,
                }
                Ok(c)
            }
            None => {
                host_len(OP, "a", a, m * k)?;
                let bias = bias.map(|t| host_len(OP, "bias", t, n).and_then(|_| host(OP, t))).transpose()?;
                if let Tensor::CpuF16(bh) = b {
                    if bh.len() < k * n {
                        return Err(Error::shape(OP, format!("b holds {} values, needs {}", bh.len(), k * n)));
                    }
                    return Ok(Tensor::Cpu(cpu::matmul_f16w(host(OP, a)?, bh, bias, m, n, k, trans_b)));
                }
                host_len(OP, "b", b, k * n)?;
                if let Tensor::CpuWeight(w) = b {
                    return Ok(Tensor::Cpu(cpu::matmul::matmul_weight(
                        host(OP, a)?,
                        w,
                        bias,
                        m,
                        n,
                        k,
                        trans_b,
                        |_| {},
                    )));
                }
                Ok(Tensor::Cpu(cpu::matmul(host(OP, a)?, host(OP, b)?, bias, m, n, k, trans_b)))
            }
        }
    }

    /// GELU(A · op(B) + bias) (exact erf form), the GELU fused into the GEMM where the adapter's kernel allows
    /// (`ops::gemm_gelu`).
    #[allow(clippy::too_many_arguments)] // the GEMM signature
    pub async fn matmul_gelu(
        &mut self,
        a: &Tensor,
        b: &Tensor,
        bias: Option<&Tensor>,
        m: usize,
        n: usize,
        k: usize,
        trans_b: bool,
    ) -> Result<Tensor> {
        const OP: &str = "matmul_gelu";
        if self.gpu.is_none() {
            if let (Tensor::Cpu(av), Tensor::Cpu(_) | Tensor::CpuWeight(_)) = (a, b) {
                host_len(OP, "a", a, m * k)?;
                host_len(OP, "b", b, k * n)?;
                let bias = bias.map(|t| host_len(OP, "bias", t, n).and_then(|_| host(OP, t))).transpose()?;
                let gelu = cpu::gelu_in_place;
                return Ok(Tensor::Cpu(match b {
                    Tensor::CpuWeight(w) => cpu::matmul::matmul_weight(av, w, bias, m, n, k, trans_b, gelu),
                    _ => cpu::matmul::matmul_then(av, host(OP, b)?, bias, m, n, k, trans_b, gelu),
                }));
            }
        }
        if matches!(b, Tensor::GpuF16(_) | Tensor::CpuF16(_)) || self.gpu.is_none() {
            let y = self.matmul(a, b, bias, m, n, k, trans_b).await?;
            return self.gelu(&y, m * n).await;
        }
        let c = self.alloc(m * n)?;
        if let Some((ctx, enc)) = &mut self.gpu {
            let bias = bias.map(|t| buf(OP, t)).transpose()?;
            ops::gemm_gelu(ctx, enc, buf(OP, a)?, buf(OP, b)?, bias, buf(OP, &c)?, m, n, k, trans_b).await?;
        }
        Ok(c)
    }

    /// Exact-erf GELU of n values.
    pub async fn gelu(&mut self, x: &Tensor, n: usize) -> Result<Tensor> {
        const OP: &str = "gelu";
        let y = self.alloc(n)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::gelu(ctx, enc, buf(OP, x)?, buf(OP, &y)?, n).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, n)?;
                Ok(Tensor::Cpu(cpu::gelu(&host(OP, x)?[..n])))
            }
        }
    }

    /// SwiGLU over rows of [x1 | x2] ([rows, 2·hidden] → [rows, hidden]): silu(x1) · x2.
    pub async fn swiglu(&mut self, x: &Tensor, rows: usize, hidden: usize) -> Result<Tensor> {
        const OP: &str = "swiglu";
        let y = self.alloc(rows * hidden)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::swiglu(ctx, enc, buf(OP, x)?, buf(OP, &y)?, rows, hidden).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, rows * 2 * hidden)?;
                Ok(Tensor::Cpu(cpu::swiglu(&host(OP, x)?[..rows * 2 * hidden], rows, hidden)))
            }
        }
    }

    /// dx = dy · GELU'(x) over n values.
    pub async fn gelu_backward(&mut self, x: &Tensor, dy: &Tensor, n: usize) -> Result<Tensor> {
        const OP: &str = "gelu_backward";
        let dx = self.alloc(n)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::gelu_backward(ctx, enc, buf(OP, x)?, buf(OP, dy)?, buf(OP, &dx)?, n).await?;
                Ok(dx)
            }
            None => {
                host_len(OP, "x", x, n)?;
                host_len(OP, "dy", dy, n)?;
                Ok(Tensor::Cpu(cpu::gelu_backward(&host(OP, x)?[..n], &host(OP, dy)?[..n])))
            }
        }
    }

    /// Gradient through a LayerNorm without affine parameters over the last dim of X [rows, d].
    pub async fn layernorm_backward(
        &mut self,
        x: &Tensor,
        dy: &Tensor,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<Tensor> {
        const OP: &str = "layernorm_backward";
        let dx = self.alloc(rows * d)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::layernorm_backward(ctx, enc, buf(OP, x)?, buf(OP, dy)?, buf(OP, &dx)?, rows, d, eps).await?;
                Ok(dx)
            }
            None => {
                host_len(OP, "x", x, rows * d)?;
                host_len(OP, "dy", dy, rows * d)?;
                Ok(Tensor::Cpu(cpu::layernorm_backward(host(OP, x)?, host(OP, dy)?, rows, d, eps)))
            }
        }
    }

    /// The 2-class soft Dice loss of a batch of pixels (logits [rows, 2], labels in {0, 1}, ≥ 2 ignored):
    /// (a tensor whose value at `ops::dice_sums_len(rows) - 2` is the loss, dlogits · `scale`).
    pub async fn dice_loss(
        &mut self,
        logits: &Tensor,
        labels: &[u32],
        rows: usize,
        mode: cpu::DiceMode,
        scale: f32,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "dice_loss";
        if labels.len() < rows {
            return Err(Error::shape(OP, format!("{} labels for {rows} rows", labels.len())));
        }
        let len = ops::dice_sums_len(rows);
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let lb = crate::gpu::GpuBuffer::from(ctx.upload("labels", &labels[..rows])?);
                let sums = ctx.storage("dice sums", (len * 4) as u64)?;
                let grad = ctx.storage("dlogits", (rows * 8) as u64)?;
                ops::dice_loss(ctx, enc, buf(OP, logits)?, &lb, &sums, &grad, rows, mode, scale).await?;
                Ok((Tensor::Gpu(sums.into()), Tensor::Gpu(grad.into())))
            }
            None => {
                host_len(OP, "logits", logits, rows * 2)?;
                let (l, g) = cpu::dice_loss(host(OP, logits)?, labels, rows, mode, scale);
                let mut sums = vec![0f32; len];
                sums[len - 2] = l;
                Ok((Tensor::Cpu(sums), Tensor::Cpu(g)))
            }
        }
    }

    /// The tensors' first `lens[i]` values, one after another, in a new tensor (a buffer copy on the GPU).
    pub fn concat(&mut self, parts: &[(&Tensor, usize)]) -> Result<Tensor> {
        const OP: &str = "concat";
        let total: usize = parts.iter().map(|p| p.1).sum();
        let y = self.alloc(total)?;
        match (&mut self.gpu, y) {
            (Some((_, enc)), Tensor::Gpu(yb)) => {
                let mut off = 0u64;
                for (t, n) in parts {
                    let b = buf(OP, t)?;
                    let bytes = (*n * 4) as u64;
                    if b.size() < bytes {
                        return Err(Error::shape(OP, format!("a part holds {} bytes, needs {bytes}", b.size())));
                    }
                    enc.copy_buffer_to_buffer(b, 0, &yb, off, bytes);
                    off += bytes;
                }
                Ok(Tensor::Gpu(yb))
            }
            _ => {
                let mut v = Vec::with_capacity(total);
                for (t, n) in parts {
                    host_len(OP, "part", t, *n)?;
                    v.extend_from_slice(&host(OP, t)?[..*n]);
                }
                Ok(Tensor::Cpu(v))
            }
        }
    }

    /// Values `offset..offset + len` of a tensor, in a new tensor.
    pub fn slice(&mut self, x: &Tensor, offset: usize, len: usize) -> Result<Tensor> {
        const OP: &str = "slice";
        let y = self.alloc(len)?;
        match (&mut self.gpu, y) {
            (Some((_, enc)), Tensor::Gpu(yb)) => {
                let b = buf(OP, x)?;
                let end = ((offset + len) * 4) as u64;
                if b.size() < end {
                    return Err(Error::shape(OP, format!("tensor holds {} bytes, the slice ends at {end}", b.size())));
                }
                enc.copy_buffer_to_buffer(b, (offset * 4) as u64, &yb, 0, (len * 4) as u64);
                Ok(Tensor::Gpu(yb))
            }
            _ => {
                host_len(OP, "x", x, offset + len)?;
                Ok(Tensor::Cpu(host(OP, x)?[offset..offset + len].to_vec()))
            }
        }
    }

    /// Depthwise convolution X [H,W,C] → [Ho,Wo,C].
    pub async fn dwconv2d(&mut self, x: &Tensor, w: &Tensor, bias: &Tensor, g: ConvGeom) -> Result<Tensor> {
        const OP: &str = "dwconv2d";
        g.check(OP)?;
        let (ho, wo) = g.out_hw();
        let y = self.alloc(ho * wo * g.c)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::dwconv2d(ctx, enc, buf(OP, x)?, buf(OP, w)?, buf(OP, bias)?, buf(OP, &y)?, g).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, g.h * g.w * g.c)?;
                host_len(OP, "w", w, g.c * g.k * g.k)?;
                host_len(OP, "bias", bias, g.c)?;
                Ok(Tensor::Cpu(cpu::dwconv2d(host(OP, x)?, host(OP, w)?, host(OP, bias)?, g)))
            }
        }
    }

    /// LayerNorm over the last dim of X [rows, d].
    /// GELU(depthwise convolution): on the CPU fused (the GELU runs on each block of rows while it is in cache),
    /// on the GPU the two kernels.
    pub async fn dwconv2d_gelu(&mut self, x: &Tensor, w: &Tensor, bias: &Tensor, g: ConvGeom) -> Result<Tensor> {
        const OP: &str = "dwconv2d";
        if self.gpu.is_some() {
            let y = self.dwconv2d(x, w, bias, g).await?;
            let (ho, wo) = g.out_hw();
            return self.gelu(&y, ho * wo * g.c).await;
        }
        g.check(OP)?;
        host_len(OP, "x", x, g.h * g.w * g.c)?;
        host_len(OP, "w", w, g.c * g.k * g.k)?;
        host_len(OP, "bias", bias, g.c)?;
        Ok(Tensor::Cpu(cpu::dwconv2d::dwconv2d_then(
            host(OP, x)?,
            host(OP, w)?,
            host(OP, bias)?,
            g,
            cpu::gelu_in_place,
        )))
    }

    pub async fn layernorm(
        &mut self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<Tensor> {
        const OP: &str = "layernorm";
        let y = self.alloc(rows * d)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::layernorm(ctx, enc, buf(OP, x)?, buf(OP, w)?, buf(OP, b)?, buf(OP, &y)?, rows, d, eps).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, rows * d)?;
                host_len(OP, "w", w, d)?;
                host_len(OP, "b", b, d)?;
                Ok(Tensor::Cpu(cpu::layernorm(host(OP, x)?, host(OP, w)?, host(OP, b)?, rows, d, eps)))
            }
        }
    }

    /// Zero-pad X [H,W,C] to [Hp,Wp,C] (bottom/right).
    #[allow(clippy::too_many_arguments)] // the two shapes
    pub async fn pad2d(&mut self, x: &Tensor, h: usize, w: usize, c: usize, hp: usize, wp: usize) -> Result<Tensor> {
        const OP: &str = "pad2d";
        let y = self.alloc(hp * wp * c)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::pad2d(ctx, enc, buf(OP, x)?, buf(OP, &y)?, h, w, c, hp, wp).await?;
                Ok(y)
            }
            None => {
                check_fits(OP, h, w, hp, wp)?;
                host_len(OP, "x", x, h * w * c)?;
                Ok(Tensor::Cpu(cpu::pad2d(host(OP, x)?, h, w, c, hp, wp)))
            }
        }
    }

    /// Y [H,W,C] += top-left crop of X [Hp,Wp,C].
    #[allow(clippy::too_many_arguments)] // operands and the two shapes
    pub async fn crop_add2d(
        &mut self,
        x: &Tensor,
        y: &mut Tensor,
        h: usize,
        w: usize,
        c: usize,
        hp: usize,
        wp: usize,
    ) -> Result<()> {
        const OP: &str = "crop_add2d";
        match &mut self.gpu {
            Some((ctx, enc)) => ops::crop_add2d(ctx, enc, buf(OP, x)?, buf(OP, y)?, h, w, c, hp, wp).await,
            None => {
                check_fits(OP, h, w, hp, wp)?;
                host_len(OP, "x", x, hp * wp * c)?;
                host_len(OP, "y", y, h * w * c)?;
                let xs = host(OP, x)?;
                match y {
                    Tensor::Cpu(yv) => cpu::crop_add2d(xs, yv, h, w, c, wp),
                    _ => return Err(mismatch(OP)),
                }
                Ok(())
            }
        }
    }

    /// Windowed multi-head attention over interleaved or sequence qkv.
    pub async fn attention(&mut self, qkv: &Tensor, biases: Option<&Tensor>, g: AttnGeom) -> Result<Tensor> {
        const OP: &str = "attention";
        let out = self.alloc(g.tokens() * g.heads * g.hd)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let biases = biases.map(|t| buf(OP, t)).transpose()?;
                ops::attention(ctx, enc, buf(OP, qkv)?, biases, buf(OP, &out)?, g).await?;
                Ok(out)
            }
            None => {
                host_len(OP, "qkv", qkv, g.tokens() * g.qkv_stride)?;
                let biases = biases.map(|t| host(OP, t)).transpose()?;
                Ok(Tensor::Cpu(cpu::attention(host(OP, qkv)?, biases, g)))
            }
        }
    }

    /// im2col of X [H,W,C] for a k×k convolution → [Ho·Wo, C·k·k].
    pub async fn im2col(&mut self, x: &Tensor, g: ConvGeom) -> Result<Tensor> {
        const OP: &str = "im2col";
        g.check(OP)?;
        let (ho, wo) = g.out_hw();
        let y = self.alloc(ho * wo * g.c * g.k * g.k)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::unfold(ctx, enc, buf(OP, x)?, buf(OP, &y)?, g).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, g.h * g.w * g.c)?;
                Ok(Tensor::Cpu(cpu::im2col(host(OP, x)?, g)))
            }
        }
    }
}

impl Exec<'_> {
    /// a + b (n values) into a new tensor.
    pub async fn add(&mut self, a: &Tensor, b: &Tensor, n: usize) -> Result<Tensor> {
        let mut y = self.pad2d(a, n, 1, 1, n, 1).await?;
        self.crop_add2d(b, &mut y, n, 1, 1, n, 1).await?;
        Ok(y)
    }

    /// y += x (n values).
    pub async fn add_into(&mut self, x: &Tensor, y: &mut Tensor, n: usize) -> Result<()> {
        self.crop_add2d(x, y, n, 1, 1, n, 1).await
    }

    /// max(x, 0) of n values.
    pub async fn relu(&mut self, x: &Tensor, n: usize) -> Result<Tensor> {
        const OP: &str = "relu";
        let y = self.alloc(n)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::relu(ctx, enc, buf(OP, x)?, buf(OP, &y)?, n).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, n)?;
                Ok(Tensor::Cpu(cpu::relu(&host(OP, x)?[..n])))
            }
        }
    }

    /// Multi-head attention of `q` rows over `k`/`v` rows.
    pub async fn cross_attention(&mut self, q: &Tensor, k: &Tensor, v: &Tensor, g: CrossAttnGeom) -> Result<Tensor> {
        const OP: &str = "cross_attention";
        let out = self.alloc(g.nq * g.out_stride)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::cross_attention(ctx, enc, buf(OP, q)?, buf(OP, k)?, buf(OP, v)?, buf(OP, &out)?, g).await?;
                Ok(out)
            }
            None => {
                host_len(OP, "q", q, g.nq * g.q_stride)?;
                host_len(OP, "k", k, g.nk * g.k_stride)?;
                host_len(OP, "v", v, g.nk * g.v_stride)?;
                Ok(Tensor::Cpu(cpu::cross_attention(host(OP, q)?, host(OP, k)?, host(OP, v)?, g)))
            }
        }
    }

    /// X [H·W, r·r·C] → [r·H·r·W, C] plus bias.
    #[allow(clippy::too_many_arguments)] // operands and the shape
    pub async fn depth_to_space(
        &mut self,
        x: &Tensor,
        bias: &Tensor,
        h: usize,
        w: usize,
        c: usize,
        r: usize,
    ) -> Result<Tensor> {
        const OP: &str = "depth_to_space";
        let n = h * w * r * r * c;
        let y = self.alloc(n)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::depth_to_space(ctx, enc, buf(OP, x)?, buf(OP, bias)?, buf(OP, &y)?, h, w, c, r).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, n)?;
                host_len(OP, "bias", bias, c)?;
                Ok(Tensor::Cpu(cpu::depth_to_space(host(OP, x)?, host(OP, bias)?, h, w, c, r)))
            }
        }
    }
}

fn check_fits(op: &'static str, h: usize, w: usize, hp: usize, wp: usize) -> Result<()> {
    if hp < h || wp < w {
        return Err(Error::shape(op, format!("an {h}x{w} image does not fit inside {hp}x{wp}")));
    }
    Ok(())
}

/// Refuse a weight tensor f16 cannot hold (a finite value beyond ±65504 would become ±inf), naming it.
pub fn check_f16_range(name: &str, v: &[f32]) -> Result<()> {
    match cpu::matmul_f16w::f16_overflow(v) {
        Some((i, x)) => Err(Error::Invalid(format!(
            "{name}: value {x} at index {i} is beyond f16's range (±65504); run this model in f32"
        ))),
        None => Ok(()),
    }
}
