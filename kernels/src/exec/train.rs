//! The training steps' ops on `Exec`: losses with their gradients, transposes and row sums for weight gradients,
//! the optimiser steps and the mean teacher's EMA.

use super::*;

impl Exec<'_> {
    /// Softmax cross-entropy with label smoothing over logits [rows, classes]: (per-row loss, dlogits scaled by
    /// `scale`). Labels ≥ classes are ignored rows.
    #[allow(clippy::too_many_arguments)] // operands, sizes and the two scalars
    pub async fn softmax_xent(
        &mut self,
        logits: &Tensor,
        labels: &[u32],
        rows: usize,
        classes: usize,
        smoothing: f32,
        scale: f32,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "softmax_xent";
        if labels.len() < rows {
            return Err(Error::shape(OP, format!("{} labels for {rows} rows", labels.len())));
        }
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let lb = crate::gpu::GpuBuffer::from(ctx.upload("labels", &labels[..rows])?);
                let loss = ctx.storage("loss", (rows * 4) as u64)?;
                let grad = ctx.storage("dlogits", (rows * classes * 4) as u64)?;
                ops::softmax_xent(ctx, enc, buf(OP, logits)?, &lb, &loss, &grad, rows, classes, smoothing, scale)
                    .await?;
                Ok((Tensor::Gpu(loss.into()), Tensor::Gpu(grad.into())))
            }
            None => {
                host_len(OP, "logits", logits, rows * classes)?;
                let (l, g) = cpu::softmax_xent(host(OP, logits)?, labels, rows, classes, smoothing, scale);
                Ok((Tensor::Cpu(l), Tensor::Cpu(g)))
            }
        }
    }

    /// Xᵀ of X [rows, cols].
    pub async fn transpose(&mut self, x: &Tensor, rows: usize, cols: usize) -> Result<Tensor> {
        const OP: &str = "transpose";
        let y = self.alloc(rows * cols)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::transpose(ctx, enc, buf(OP, x)?, buf(OP, &y)?, rows, cols).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, rows * cols)?;
                Ok(Tensor::Cpu(cpu::transpose(host(OP, x)?, rows, cols)))
            }
        }
    }

    /// Per-row sum of X [rows, cols].
    pub async fn row_sums(&mut self, x: &Tensor, rows: usize, cols: usize) -> Result<Tensor> {
        const OP: &str = "reduce_rows";
        let y = self.alloc(rows)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::reduce_rows(ctx, enc, buf(OP, x)?, buf(OP, &y)?, rows, cols, ops::Reduce::Sum).await?;
                Ok(y)
            }
            None => {
                host_len(OP, "x", x, rows * cols)?;
                Ok(Tensor::Cpu(cpu::reduce_rows(host(OP, x)?, rows, cols, ops::Reduce::Sum)))
            }
        }
    }

    /// One AdamW step on `p` with gradient `g` and moments `m`, `v` (all n values).
    pub async fn adamw(
        &mut self,
        p: &mut Tensor,
        g: &Tensor,
        m: &mut Tensor,
        v: &mut Tensor,
        n: usize,
        s: cpu::AdamwStep,
    ) -> Result<()> {
        const OP: &str = "adamw";
        match &mut self.gpu {
            Some((ctx, enc)) => ops::adamw(ctx, enc, buf(OP, p)?, buf(OP, g)?, buf(OP, m)?, buf(OP, v)?, n, s).await,
            None => {
                let g = host(OP, g)?;
                match (p, m, v) {
                    (Tensor::Cpu(p), Tensor::Cpu(m), Tensor::Cpu(v))
                        if p.len() >= n && m.len() >= n && v.len() >= n =>
                    {
                        cpu::adamw(&mut p[..n], &g[..n], &mut m[..n], &mut v[..n], s);
                        Ok(())
                    }
                    _ => Err(mismatch(OP)),
                }
            }
        }
    }
}

impl Exec<'_> {
    /// The mean teacher's EMA: t ← α·t + (1 − α)·s (n values).
    pub async fn ema_update(&mut self, t: &mut Tensor, s: &Tensor, n: usize, alpha: f32) -> Result<()> {
        const OP: &str = "ema_update";
        match &mut self.gpu {
            Some((ctx, enc)) => ops::ema_update(ctx, enc, buf(OP, t)?, buf(OP, s)?, n, alpha).await,
            None => {
                let s = host(OP, s)?;
                match t {
                    Tensor::Cpu(t) if t.len() >= n && s.len() >= n => {
                        cpu::ema_update(&mut t[..n], &s[..n], alpha);
                        Ok(())
                    }
                    _ => Err(mismatch(OP)),
                }
            }
        }
    }

    /// Consistency loss Σ_c (softmax(z) − softmax(zt))² per row and its gradient w.r.t. z, times `scale`.
    pub async fn softmax_mse(
        &mut self,
        z: &Tensor,
        zt: &Tensor,
        rows: usize,
        classes: usize,
        scale: f32,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "softmax_mse";
        let loss = self.alloc(rows)?;
        let dz = self.alloc(rows * classes)?;
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::softmax_mse(
                    ctx,
                    enc,
                    buf(OP, z)?,
                    buf(OP, zt)?,
                    buf(OP, &loss)?,
                    buf(OP, &dz)?,
                    rows,
                    classes,
                    scale,
                )
                .await?;
                Ok((loss, dz))
            }
            None => {
                host_len(OP, "z", z, rows * classes)?;
                host_len(OP, "zt", zt, rows * classes)?;
                let (l, g) = cpu::softmax_mse(host(OP, z)?, host(OP, zt)?, rows, classes, scale);
                Ok((Tensor::Cpu(l), Tensor::Cpu(g)))
            }
        }
    }

    /// One SGD-with-momentum step on `p` (n values) with gradient `g` and momentum buffer `b`.
    #[allow(clippy::too_many_arguments)] // the three state tensors, the size and the hyper-parameters
    pub async fn sgd_momentum(
        &mut self,
        p: &mut Tensor,
        g: &Tensor,
        b: &mut Tensor,
        n: usize,
        lr: f32,
        momentum: f32,
        wd: f32,
    ) -> Result<()> {
        const OP: &str = "sgd_momentum";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::sgd_momentum(ctx, enc, buf(OP, p)?, buf(OP, g)?, buf(OP, b)?, n, lr, momentum, wd).await
            }
            None => {
                let g = host(OP, g)?;
                match (p, b) {
                    (Tensor::Cpu(p), Tensor::Cpu(b)) if p.len() >= n && b.len() >= n && g.len() >= n => {
                        cpu::sgd_momentum(&mut p[..n], &g[..n], &mut b[..n], lr, momentum, wd);
                        Ok(())
                    }
                    _ => Err(mismatch(OP)),
                }
            }
        }
    }
}

impl Exec<'_> {
    /// Convolution as im2col + GEMM: Y [P, N] = im2col(X, g) · Wᵀ + bias (W [N, k²·C]). On the GPU the `im2col`
    /// and `matmul` kernels; on the CPU a block of output pixels at a time (`cpu::im2col::conv2d`).
    pub async fn conv2d(
        &mut self,
        x: &Tensor,
        g: ConvGeom,
        w: &Tensor,
        bias: Option<&Tensor>,
        n: usize,
    ) -> Result<Tensor> {
        const OP: &str = "conv2d";
        g.check(OP)?;
        let (ho, wo) = g.out_hw();
        let k = g.c * g.k * g.k;
        if self.gpu.is_some() || matches!(w, Tensor::CpuF16(_)) {
            let cols = self.im2col(x, g).await?;
            return self.matmul(&cols, w, bias, ho * wo, n, k, true).await;
        }
        host_len(OP, "x", x, g.h * g.w * g.c)?;
        host_len(OP, "w", w, n * k)?;
        let bias = bias.map(|t| host_len(OP, "bias", t, n).and_then(|_| host(OP, t))).transpose()?;
        Ok(Tensor::Cpu(cpu::im2col::conv2d(host(OP, x)?, g, host(OP, w)?, bias, n)))
    }

    /// The weight gradient of [`Exec::conv2d`]: dW [N, k²·C] = dYᵀ · im2col(X, g) for dY [P, N].
    pub async fn conv2d_weight_grad(&mut self, x: &Tensor, g: ConvGeom, dy: &Tensor, n: usize) -> Result<Tensor> {
        const OP: &str = "conv2d_weight_grad";
        g.check(OP)?;
        let (ho, wo) = g.out_hw();
        let (p, k) = (ho * wo, g.c * g.k * g.k);
        if self.gpu.is_some() {
            let cols = self.im2col(x, g).await?;
            let dyt = self.transpose(dy, p, n).await?;
            return self.matmul(&dyt, &cols, None, n, k, p, false).await;
        }
        host_len(OP, "x", x, g.h * g.w * g.c)?;
        host_len(OP, "dy", dy, p * n)?;
        Ok(Tensor::Cpu(cpu::im2col::conv2d_weight_grad(host(OP, x)?, g, host(OP, dy)?, n)))
    }
}
