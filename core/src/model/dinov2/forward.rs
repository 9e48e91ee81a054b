//! DINOv2 where it runs: the parameters on an [`Exec`] (GPU or CPU kernels) and the batched forward pass.

use super::Dinov2;
use crate::gpu::ops::{AttnGeom, ConvGeom};
use crate::gpu::GpuContext;
use crate::model::exec::{Exec, Tensor};
use crate::model::Precision;
use crate::{Error, Result};

/// DINOv2 outputs for one image.
pub struct Dinov2Output {
    /// [S, D] after the final LayerNorm (S = 1 + registers + patches).
    pub last_hidden_state: Vec<f32>,
    /// CLS after the final LayerNorm (= HF pooler_output).
    pub cls: Vec<f32>,
    /// Mean of the patch tokens of `last_hidden_state`.
    pub mean: Vec<f32>,
    /// hidden_state_0..L (before the final LayerNorm) when requested.
    pub hidden_states: Vec<Vec<f32>>,
    pub tokens: usize,
}

/// One block's parameters where they run; fields named as the checkpoint keys of [`Dinov2Layer`] (`mlp_in` /
/// `mlp_out`: `mlp.fc1` / `mlp.fc2`, or `mlp.weights_in` / `mlp.weights_out` for SwiGLU).
pub struct LoadedDinov2Layer {
    pub norm1_weight: Tensor,
    pub norm1_bias: Tensor,
    /// query | key | value stacked: [3D, D].
    pub qkv_weight: Tensor,
    pub qkv_bias: Tensor,
    pub attention_output_dense_weight: Tensor,
    pub attention_output_dense_bias: Tensor,
    pub norm2_weight: Tensor,
    pub norm2_bias: Tensor,
    pub mlp_in_weight: Tensor,
    pub mlp_in_bias: Tensor,
    pub mlp_out_weight: Tensor,
    pub mlp_out_bias: Tensor,
}

/// DINOv2 ready to run through [`Exec`]: on the GPU ([`Dinov2::to_gpu`]) or the CPU kernels ([`Dinov2::to_cpu`]).
pub struct LoadedDinov2 {
    /// Storage of the matmul weights; f16 runs `matmul_f16w` (or its CPU twin).
    pub(super) precision: Precision,
    pub(super) on_gpu: bool,
    /// [D, 3·p·p]
    pub patch_embeddings_projection_weight: Tensor,
    pub patch_embeddings_projection_bias: Tensor,
    pub layernorm_weight: Tensor,
    pub layernorm_bias: Tensor,
    pub layers: Vec<LoadedDinov2Layer>,
    pub model: Dinov2,
}

impl LoadedDinov2Layer {
    fn tensors(&self) -> [&Tensor; 12] {
        [
            &self.norm1_weight,
            &self.norm1_bias,
            &self.qkv_weight,
            &self.qkv_bias,
            &self.attention_output_dense_weight,
            &self.attention_output_dense_bias,
            &self.norm2_weight,
            &self.norm2_bias,
            &self.mlp_in_weight,
            &self.mlp_in_bias,
            &self.mlp_out_weight,
            &self.mlp_out_bias,
        ]
    }
}

impl LoadedDinov2 {
    /// Bytes of the parameter tensors where they live.
    pub fn param_bytes(&self) -> u64 {
        let layers: u64 = self.layers.iter().flat_map(|l| l.tensors()).map(Tensor::bytes).sum();
        let top = [
            &self.patch_embeddings_projection_weight,
            &self.patch_embeddings_projection_bias,
            &self.layernorm_weight,
            &self.layernorm_bias,
        ];
        layers + top.iter().map(|t| t.bytes()).sum::<u64>()
    }

    /// How the matmul weights are stored.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// True when the parameters live on the GPU.
    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }

    /// `pixel_values` CHW [3, H, W] (H, W multiples of the patch size), already normalised; on the GPU.
    pub async fn forward(
        &self,
        ctx: &GpuContext,
        pixel_values: &[f32],
        h: usize,
        w: usize,
        keep_hidden: bool,
    ) -> Result<Dinov2Output> {
        self.forward_on(Some(ctx), pixel_values, h, w, keep_hidden).await
    }

    /// [`LoadedDinov2::forward`] on the CPU kernels (parameters from [`Dinov2::to_cpu`]).
    pub async fn forward_cpu(
        &self,
        pixel_values: &[f32],
        h: usize,
        w: usize,
        keep_hidden: bool,
    ) -> Result<Dinov2Output> {
        self.forward_on(None, pixel_values, h, w, keep_hidden).await
    }

    /// One image on the GPU when `ctx` is given, on the CPU kernels otherwise.
    pub async fn forward_on(
        &self,
        ctx: Option<&GpuContext>,
        pixel_values: &[f32],
        h: usize,
        w: usize,
        keep_hidden: bool,
    ) -> Result<Dinov2Output> {
        let mut out = self.forward_batch_on(ctx, &[pixel_values], h, w, keep_hidden, 1).await?;
        out.pop().ok_or_else(|| Error::Invalid("dinov2: no output".into()))
    }

    /// Where a forward pass of this image first produces NaN or Inf: `embeddings` (patch embedding),
    /// `encoder.layer.L`, or `layernorm` (the final norm), as in the checkpoint's keys; `None` when none does. A
    /// diagnostic pass (a readback per layer).
    pub async fn locate_non_finite(
        &self,
        ctx: Option<&GpuContext>,
        pixel_values: &[f32],
        h: usize,
        w: usize,
    ) -> Result<Option<String>> {
        let mut ex = Exec::on(ctx).with_checks();
        ex.check_params("dinov2", self.on_gpu)?;
        self.forward_part(&mut ex, &[pixel_values], h, w, false).await?;
        Ok(ex.first_non_finite().map(str::to_string))
    }

    /// Images per forward pass that keep every activation buffer within one storage binding (at least 1; a
    /// single image too large for the device fails when its buffer is allocated, naming it).
    pub fn max_batch(&self, ctx: &GpuContext, h: usize, w: usize) -> usize {
        let limit = (ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size) / 4) as usize;
        (limit / self.values_per_image(h, w)).max(1)
    }

    /// The largest activation of one image, in values.
    fn values_per_image(&self, h: usize, w: usize) -> usize {
        let c = &self.model.config;
        let (d, p) = (c.hidden_size, c.patch_size.max(1));
        let np = (h / p) * (w / p);
        let s = 1 + c.num_register_tokens + np;
        let f1 = if c.use_swiglu_ffn { 2 * c.ffn_hidden() } else { c.ffn_hidden() };
        (s * d * 3).max(s * f1).max(np * 3 * p * p).max(3 * h * w).max(1)
    }

    /// Several images of the same size on the GPU, at most `per_pass` per forward pass (and at most
    /// [`LoadedDinov2::max_batch`]): every linear layer runs on the tokens of a pass's images at once (one GEMM
    /// with M = images × tokens), attention runs one window per image. Each image's output equals
    /// [`LoadedDinov2::forward`] on it alone.
    pub async fn forward_batch(
        &self,
        ctx: &GpuContext,
        images: &[&[f32]],
        h: usize,
        w: usize,
        keep_hidden: bool,
        per_pass: usize,
    ) -> Result<Vec<Dinov2Output>> {
        self.forward_batch_on(Some(ctx), images, h, w, keep_hidden, per_pass).await
    }

    /// [`LoadedDinov2::forward_batch`] on the GPU when `ctx` is given, on the CPU kernels otherwise.
    pub async fn forward_batch_on(
        &self,
        ctx: Option<&GpuContext>,
        images: &[&[f32]],
        h: usize,
        w: usize,
        keep_hidden: bool,
        per_pass: usize,
    ) -> Result<Vec<Dinov2Output>> {
        let cap = match ctx {
            Some(ctx) => self.max_batch(ctx, h, w),
            None => images.len().max(1),
        };
        let mut out = Vec::with_capacity(images.len());
        for part in images.chunks(per_pass.clamp(1, cap)) {
            let mut ex = Exec::on(ctx);
            ex.check_params("dinov2", self.on_gpu)?;
            out.extend(self.forward_part(&mut ex, part, h, w, keep_hidden).await?);
        }
        Ok(out)
    }

    async fn forward_part(
        &self,
        ex: &mut Exec<'_>,
        images: &[&[f32]],
        h: usize,
        w: usize,
        keep_hidden: bool,
    ) -> Result<Vec<Dinov2Output>> {
        let c = &self.model.config;
        let (d, p) = (c.hidden_size, c.patch_size);
        let b = images.len();
        for (i, px) in images.iter().enumerate() {
            if px.len() != 3 * h * w || !h.is_multiple_of(p) || !w.is_multiple_of(p) {
                return Err(Error::shape(
                    "dinov2",
                    format!("input {i} of {} values for {h}x{w} (multiples of {p} needed)", px.len()),
                ));
            }
        }
        let (gh, gw) = (h / p, w / p);
        let np = gh * gw;
        let nreg = c.num_register_tokens;
        let s = 1 + nreg + np;
        let bs = b * s;
        // The images stacked vertically as one HWC image of b·h rows: as h is a multiple of the patch size and
        // patches do not overlap, its patches are image 0's, then image 1's, ... in row-major order.
        let mut hwc = vec![0f32; b * 3 * h * w];
        for (img, px) in images.iter().enumerate() {
            let base = img * 3 * h * w;
            for i in 0..h * w {
                for ch in 0..3 {
                    hwc[base + i * 3 + ch] = px[ch * h * w + i];
                }
            }
        }
        let xin = ex.upload("dinov2 input", &hwc)?;
        // [b·np, 3·p·p] patches → [b·np, D]
        let cols = ex.im2col(&xin, ConvGeom { h: b * h, w, c: 3, k: p, stride: p, pad: 0 }).await?;
        let (pw, pb) = (&self.patch_embeddings_projection_weight, &self.patch_embeddings_projection_bias);
        let patches = ex.matmul(&cols, pw, Some(pb), b * np, d, 3 * p * p, true).await?;
        let patches = ex.read(&patches, b * np * d).await?;
        // Tokens of each image: CLS + pos[0], registers (no position), patches + interpolated positions.
        let pos = self.model.interpolate_pos(gh, gw);
        let mut x0 = Vec::with_capacity(bs * d);
        for img in patches.chunks(np * d) {
            x0.extend(self.model.cls_token.iter().zip(&pos[..d]).map(|(a, b)| a + b));
            x0.extend_from_slice(&self.model.register_tokens);
            x0.extend(img.iter().zip(&pos[d..]).map(|(a, b)| a + b));
        }
        // [b·s, D]
        let mut x = ex.upload("dinov2 tokens", &x0)?;
        ex.checkpoint(&x, bs * d, || "embeddings".into()).await?;
        let mut hidden: Vec<Vec<f32>> = Vec::new();
        if keep_hidden {
            hidden.push(x0);
        }
        let heads = c.num_attention_heads;
        let geom = AttnGeom::sequences(b, s, heads, d / heads);
        let hid = c.ffn_hidden();
        let eps = c.layer_norm_eps;
        for (li, l) in self.layers.iter().enumerate() {
            let n1 = ex.layernorm(&x, &l.norm1_weight, &l.norm1_bias, bs, d, eps).await?;
            // [b·s, 3D] → attention → [b·s, D]
            let qkv = ex.matmul(&n1, &l.qkv_weight, Some(&l.qkv_bias), bs, 3 * d, d, true).await?;
            let att = ex.attention(&qkv, None, geom).await?;
            let (ow, ob) = (&l.attention_output_dense_weight, &l.attention_output_dense_bias);
            let o = ex.matmul(&att, ow, Some(ob), bs, d, d, true).await?;
            ex.add_into(&o, &mut x, bs * d).await?;
            let n2 = ex.layernorm(&x, &l.norm2_weight, &l.norm2_bias, bs, d, eps).await?;
            // [b·s, H] after the FFN's first linear and its activation
            let g1 = if c.use_swiglu_ffn {
                let f1 = ex.matmul(&n2, &l.mlp_in_weight, Some(&l.mlp_in_bias), bs, 2 * hid, d, true).await?;
                ex.swiglu(&f1, bs, hid).await?
            } else {
                // fc1 and the GELU in one kernel where the adapter's GEMM fuses it (Exec::matmul_gelu).
                ex.matmul_gelu(&n2, &l.mlp_in_weight, Some(&l.mlp_in_bias), bs, hid, d, true).await?
            };
            let f2 = ex.matmul(&g1, &l.mlp_out_weight, Some(&l.mlp_out_bias), bs, d, hid, true).await?;
            ex.add_into(&f2, &mut x, bs * d).await?;
            ex.checkpoint(&x, bs * d, || format!("encoder.layer.{li}")).await?;
            if keep_hidden {
                hidden.push(ex.read(&x, bs * d).await?);
            } else {
                ex.flush();
            }
        }
        let out = ex.layernorm(&x, &self.layernorm_weight, &self.layernorm_bias, bs, d, eps).await?;
        ex.checkpoint(&out, bs * d, || "layernorm".into()).await?;
        let last = ex.read(&out, bs * d).await?;
        let mut outs = Vec::with_capacity(b);
        for (img, seq) in last.chunks(s * d).enumerate() {
            let mut mean = vec![0f64; d];
            for t in 1 + nreg..s {
                for (m, &v) in mean.iter_mut().zip(&seq[t * d..(t + 1) * d]) {
                    *m += v as f64 / np as f64;
                }
            }
            outs.push(Dinov2Output {
                last_hidden_state: seq.to_vec(),
                cls: seq[..d].to_vec(),
                mean: mean.into_iter().map(|v| v as f32).collect(),
                hidden_states: hidden.iter().map(|hs| hs[img * s * d..(img + 1) * s * d].to_vec()).collect(),
                tokens: s,
            });
        }
        Ok(outs)
    }
}
