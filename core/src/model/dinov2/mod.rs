//! DINOv2 ViT encoders (HF `Dinov2Model` / `Dinov2WithRegistersModel`: dinov2-small/base/large, the
//! `-with-registers` variants, microsoft/rad-dino), from HF `model.safetensors` key names. Implemented from the
//! forward pass pinned by ../shared/fixtures/dinov2/README.md: 14×14 patch embedding, CLS (+ registers inserted
//! after CLS without position embedding), the 37×37 position table interpolated bicubically to the patch grid
//! (plain a = −0.75 for Dinov2Model, antialiased a = −0.5 for the registers model, coordinates in f32 as
//! PyTorch computes them), pre-norm blocks with LayerScale (λ folded into the output projections at load),
//! exact-erf GELU MLP, final LayerNorm. Official `dinov2_vit*14*_pretrain.pth` checkpoints load through
//! [`from_official_names`]; their position embedding is then interpolated the HF way (target size), not with the
//! original code's `scale_factor = (h + 0.1)/37` (a documented deviation, small in value). dinov2-giant's FFN is
//! SwiGLU (`use_swiglu_ffn`): `weights_in` (official `w12`) to 2·H, `silu(x1) · x2` (the `swiglu` kernel),
//! `weights_out` (official `w3`), H = (⌊⌊D·mlp_ratio⌋·2/3⌋ + 7) // 8 · 8 = 4096 for D = 1536.

use super::{LayerNorm, Linear, Precision};
mod forward;

pub use forward::{Dinov2Output, LoadedDinov2, LoadedDinov2Layer};

use super::exec::Exec;

use crate::data::io::weights::Weights;
use crate::gpu::GpuContext;
use crate::{Error, Result};

/// The shape hyper-parameters (from `config.json` when available).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Dinov2Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default)]
    pub num_register_tokens: usize,
    #[serde(default = "default_patch")]
    pub patch_size: usize,
    #[serde(default)]
    pub use_swiglu_ffn: bool,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// The FFN width read from a checkpoint by [`Dinov2Config::infer`]; overrides the one from `mlp_ratio`.
    #[serde(skip)]
    pub ffn_width: Option<usize>,
}

fn default_mlp_ratio() -> f64 {
    4.0
}

fn default_eps() -> f32 {
    1e-6
}

fn default_patch() -> usize {
    14
}

impl Dinov2Config {
    /// The shapes of a released model by size (`small`, `base`, `large`, `giant`; 14×14 patches, no registers),
    /// as in their HF `config.json`.
    pub fn released(size: &str) -> Option<Self> {
        let (d, layers, heads, swiglu) = match size {
            "small" => (384, 12, 6, false),
            "base" => (768, 12, 12, false),
            "large" => (1024, 24, 16, false),
            "giant" => (1536, 40, 24, true),
            _ => return None,
        };
        Some(Dinov2Config {
            hidden_size: d,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            layer_norm_eps: 1e-6,
            num_register_tokens: 0,
            patch_size: 14,
            use_swiglu_ffn: swiglu,
            mlp_ratio: 4.0,
            ffn_width: None,
        })
    }

    /// Width of the FFN's hidden layer: ⌊D·mlp_ratio⌋ for the GELU MLP; for SwiGLU two thirds of that rounded
    /// up to a multiple of 8, as HF `Dinov2SwiGLUFFN` and the official `SwiGLUFFN` compute it.
    pub fn ffn_hidden(&self) -> usize {
        if let Some(h) = self.ffn_width {
            return h;
        }
        let h = (self.hidden_size as f64 * self.mlp_ratio) as usize;
        if self.use_swiglu_ffn {
            ((h as f64 * 2.0 / 3.0) as usize).div_ceil(8) * 8
        } else {
            h
        }
    }

    /// Infer from the tensors: hidden size from the CLS token, layers from the keys, 64-wide heads, the FFN
    /// kind and width from layer 0's first FFN weight.
    pub fn infer(w: &Weights) -> Result<Self> {
        let cls = w.tensors.get("embeddings.cls_token").ok_or_else(|| {
            Error::Invalid(format!("{}: no embeddings.cls_token (not a DINOv2 checkpoint?)", w.source))
        })?;
        let d = *cls.shape.last().unwrap_or(&0);
        let layers =
            (0..1000).take_while(|i| w.tensors.contains_key(&format!("encoder.layer.{i}.norm1.weight"))).count();
        let regs =
            w.tensors.get("embeddings.register_tokens").map(|t| t.shape.get(1).copied().unwrap_or(0)).unwrap_or(0);
        let swiglu = w.tensors.get("encoder.layer.0.mlp.weights_in.weight");
        let ffn_width = swiglu
            .or_else(|| w.tensors.get("encoder.layer.0.mlp.fc1.weight"))
            .and_then(|t| t.shape.first())
            .map(|&rows| if swiglu.is_some() { rows / 2 } else { rows });
        Ok(Dinov2Config {
            hidden_size: d,
            num_hidden_layers: layers,
            num_attention_heads: (d / 64).max(1),
            layer_norm_eps: 1e-6,
            num_register_tokens: regs,
            patch_size: 14,
            use_swiglu_ffn: swiglu.is_some(),
            mlp_ratio: 4.0,
            ffn_width,
        })
    }
}

/// Random weights with the shapes `c` describes, in HF key names (a 37×37 position table), uniform in ±0.05
/// (±0.1 for tokens and LayerNorm biases, ±1 for LayerNorm weights): for benchmarks and tests, not features.
pub fn random_weights(c: &Dinov2Config, seed: u64) -> Weights {
    use crate::data::io::weights::{Tensor, TensorData};
    let (d, p, hid) = (c.hidden_size, c.patch_size, c.ffn_hidden());
    let mut rng = crate::rng::Rng::new(seed);
    let mut t = |shape: &[usize], scale: f32| Tensor {
        shape: shape.to_vec(),
        data: TensorData::F32(rng.uniform_vec(shape.iter().product(), -scale, scale)),
    };
    let mut pairs = vec![
        ("embeddings.cls_token".to_string(), t(&[1, 1, d], 0.1)),
        ("embeddings.position_embeddings".to_string(), t(&[1, 1370, d], 0.1)),
        ("embeddings.patch_embeddings.projection.weight".to_string(), t(&[d, 3, p, p], 0.02)),
        ("embeddings.patch_embeddings.projection.bias".to_string(), t(&[d], 0.02)),
        ("layernorm.weight".to_string(), t(&[d], 1.0)),
        ("layernorm.bias".to_string(), t(&[d], 0.1)),
    ];
    if c.num_register_tokens > 0 {
        pairs.push(("embeddings.register_tokens".to_string(), t(&[1, c.num_register_tokens, d], 0.1)));
    }
    let (ffn_in, ffn_out, in_rows) =
        if c.use_swiglu_ffn { ("weights_in", "weights_out", 2 * hid) } else { ("fc1", "fc2", hid) };
    for i in 0..c.num_hidden_layers {
        let pre = format!("encoder.layer.{i}");
        for (n, shape, scale) in [
            ("norm1.weight".to_string(), vec![d], 1.0),
            ("norm1.bias".to_string(), vec![d], 0.1),
            ("attention.attention.query.weight".to_string(), vec![d, d], 0.05),
            ("attention.attention.query.bias".to_string(), vec![d], 0.05),
            ("attention.attention.key.weight".to_string(), vec![d, d], 0.05),
            ("attention.attention.key.bias".to_string(), vec![d], 0.05),
            ("attention.attention.value.weight".to_string(), vec![d, d], 0.05),
            ("attention.attention.value.bias".to_string(), vec![d], 0.05),
            ("attention.output.dense.weight".to_string(), vec![d, d], 0.05),
            ("attention.output.dense.bias".to_string(), vec![d], 0.05),
            ("layer_scale1.lambda1".to_string(), vec![d], 0.05),
            ("norm2.weight".to_string(), vec![d], 1.0),
            ("norm2.bias".to_string(), vec![d], 0.1),
            (format!("mlp.{ffn_in}.weight"), vec![in_rows, d], 0.05),
            (format!("mlp.{ffn_in}.bias"), vec![in_rows], 0.05),
            (format!("mlp.{ffn_out}.weight"), vec![d, hid], 0.05),
            (format!("mlp.{ffn_out}.bias"), vec![d], 0.05),
            ("layer_scale2.lambda1".to_string(), vec![d], 0.05),
        ] {
            pairs.push((format!("{pre}.{n}"), t(&shape, scale)));
        }
    }
    let mut w = Weights::from_pairs(pairs);
    w.source = "random dinov2 weights".into();
    w
}

/// One pre-norm block; `attention.output.dense` and the FFN's output linear carry LayerScale λ folded in.
#[derive(Clone, Debug)]
pub struct Dinov2Layer {
    pub norm1: LayerNorm,
    /// query | key | value stacked: [3D, D].
    pub qkv: Linear,
    pub attention_output_dense: Linear,
    pub norm2: LayerNorm,
    pub mlp: Dinov2Ffn,
}

/// The block's FFN, fields named as the checkpoint's `mlp.*` keys.
#[derive(Clone, Debug)]
pub enum Dinov2Ffn {
    /// `mlp.fc1` [H, D] → exact GELU → `mlp.fc2` [D, H].
    Mlp { fc1: Linear, fc2: Linear },
    /// `mlp.weights_in` [2H, D] → silu(x1) · x2 → `mlp.weights_out` [D, H] (dinov2-giant).
    SwiGlu { weights_in: Linear, weights_out: Linear },
}

impl Dinov2Ffn {
    /// The first and the second linear layer.
    pub fn linears(&self) -> (&Linear, &Linear) {
        match self {
            Dinov2Ffn::Mlp { fc1, fc2 } => (fc1, fc2),
            Dinov2Ffn::SwiGlu { weights_in, weights_out } => (weights_in, weights_out),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Dinov2 {
    pub config: Dinov2Config,
    pub cls_token: Vec<f32>,
    pub register_tokens: Vec<f32>,
    /// [1 + 37·37, D]
    pub position_embeddings: Vec<f32>,
    pub pos_grid: usize,
    /// [D, 3·p·p] and [D]
    pub patch_weight: Vec<f32>,
    pub patch_bias: Vec<f32>,
    pub layers: Vec<Dinov2Layer>,
    pub layernorm: LayerNorm,
}

fn fold_scale(mut l: Linear, lambda: &[f32]) -> Linear {
    for o in 0..l.out_dim {
        for i in 0..l.in_dim {
            l.weight[o * l.in_dim + i] *= lambda[o];
        }
        if let Some(b) = &mut l.bias {
            b[o] *= lambda[o];
        }
    }
    l
}

/// Rename the official facebookresearch checkpoint keys (`dinov2_vit*14*_pretrain.pth`: `blocks.N.attn.qkv`,
/// `ls1.gamma`, `pos_embed`, ...) to the HF names this loader reads; the fused qkv is split into query, key and
/// value. Weights already in HF naming are returned unchanged.
pub fn from_official_names(w: &Weights) -> Result<Weights> {
    use crate::data::io::weights::{Tensor, TensorData};
    if !w.tensors.contains_key("cls_token") {
        return Ok(w.clone());
    }
    let mut out = Vec::new();
    for (k, t) in &w.tensors {
        let name = match k.as_str() {
            "cls_token" => "embeddings.cls_token".to_string(),
            "pos_embed" => "embeddings.position_embeddings".to_string(),
            "register_tokens" => "embeddings.register_tokens".to_string(),
            "mask_token" => "embeddings.mask_token".to_string(),
            "norm.weight" => "layernorm.weight".to_string(),
            "norm.bias" => "layernorm.bias".to_string(),
            k if k.starts_with("patch_embed.proj.") => {
                k.replace("patch_embed.proj.", "embeddings.patch_embeddings.projection.")
            }
            k if k.starts_with("blocks.") => {
                let rest = &k["blocks.".len()..];
                let (i, field) = rest.split_once('.').unwrap_or((rest, ""));
                let p = format!("encoder.layer.{i}");
                if field == "attn.qkv.weight" || field == "attn.qkv.bias" {
                    let TensorData::F32(v) = &t.data else { continue };
                    let third = v.len() / 3;
                    let kind = if field.ends_with("weight") { "weight" } else { "bias" };
                    let shape = if kind == "weight" { vec![t.shape[0] / 3, t.shape[1]] } else { vec![t.shape[0] / 3] };
                    for (j, part) in ["query", "key", "value"].iter().enumerate() {
                        out.push((
                            format!("{p}.attention.attention.{part}.{kind}"),
                            Tensor {
                                shape: shape.clone(),
                                data: TensorData::F32(v[j * third..(j + 1) * third].to_vec()),
                            },
                        ));
                    }
                    continue;
                }
                let mapped = match field {
                    "attn.proj.weight" => "attention.output.dense.weight",
                    "attn.proj.bias" => "attention.output.dense.bias",
                    "mlp.w12.weight" => "mlp.weights_in.weight",
                    "mlp.w12.bias" => "mlp.weights_in.bias",
                    "mlp.w3.weight" => "mlp.weights_out.weight",
                    "mlp.w3.bias" => "mlp.weights_out.bias",
                    "ls1.gamma" => "layer_scale1.lambda1",
                    "ls2.gamma" => "layer_scale2.lambda1",
                    other => other,
                };
                format!("{p}.{mapped}")
            }
            other => other.to_string(),
        };
        out.push((name, t.clone()));
    }
    let mut mapped = Weights::from_pairs(out);
    mapped.source = w.source.clone();
    Ok(mapped)
}

impl Dinov2 {
    pub fn load(w: &Weights, config: Option<Dinov2Config>) -> Result<Self> {
        let mapped = from_official_names(w)?;
        let w = &mapped;
        let c = match config {
            Some(c) => c,
            None => Dinov2Config::infer(w)?,
        };
        let d = c.hidden_size;
        let hid = c.ffn_hidden();
        let p = c.patch_size;
        let pos = w.f32("embeddings.position_embeddings", None)?.to_vec();
        let rows = pos.len() / d;
        let grid = ((rows - 1) as f64).sqrt().round() as usize;
        if grid * grid + 1 != rows {
            return Err(Error::Invalid(format!(
                "{}: position table of {rows} rows is not 1 + a square grid",
                w.source
            )));
        }
        let mut layers = Vec::new();
        for i in 0..c.num_hidden_layers {
            let pre = format!("encoder.layer.{i}");
            let q = Linear::load(w, &format!("{pre}.attention.attention.query"), d, d, true)?;
            let k = Linear::load(w, &format!("{pre}.attention.attention.key"), d, d, true)?;
            let v = Linear::load(w, &format!("{pre}.attention.attention.value"), d, d, true)?;
            let mut weight = q.weight;
            weight.extend(k.weight);
            weight.extend(v.weight);
            let mut bias = q.bias.unwrap_or_default();
            bias.extend(k.bias.unwrap_or_default());
            bias.extend(v.bias.unwrap_or_default());
            let l1 = w.f32(&format!("{pre}.layer_scale1.lambda1"), Some(&[d]))?;
            let l2 = w.f32(&format!("{pre}.layer_scale2.lambda1"), Some(&[d]))?;
            layers.push(Dinov2Layer {
                norm1: LayerNorm::load(w, &format!("{pre}.norm1"), d, c.layer_norm_eps)?,
                qkv: Linear { weight, bias: Some(bias), out_dim: 3 * d, in_dim: d },
                attention_output_dense: fold_scale(
                    Linear::load(w, &format!("{pre}.attention.output.dense"), d, d, true)?,
                    l1,
                ),
                norm2: LayerNorm::load(w, &format!("{pre}.norm2"), d, c.layer_norm_eps)?,
                mlp: if c.use_swiglu_ffn {
                    Dinov2Ffn::SwiGlu {
                        weights_in: Linear::load(w, &format!("{pre}.mlp.weights_in"), 2 * hid, d, true)?,
                        weights_out: fold_scale(Linear::load(w, &format!("{pre}.mlp.weights_out"), d, hid, true)?, l2),
                    }
                } else {
                    Dinov2Ffn::Mlp {
                        fc1: Linear::load(w, &format!("{pre}.mlp.fc1"), hid, d, true)?,
                        fc2: fold_scale(Linear::load(w, &format!("{pre}.mlp.fc2"), d, hid, true)?, l2),
                    }
                },
            });
        }
        Ok(Dinov2 {
            cls_token: w.f32("embeddings.cls_token", None)?.to_vec(),
            register_tokens: if c.num_register_tokens > 0 {
                w.f32("embeddings.register_tokens", None)?.to_vec()
            } else {
                vec![]
            },
            position_embeddings: pos,
            pos_grid: grid,
            patch_weight: w.f32("embeddings.patch_embeddings.projection.weight", Some(&[d, 3, p, p]))?.to_vec(),
            patch_bias: w.f32("embeddings.patch_embeddings.projection.bias", Some(&[d]))?.to_vec(),
            layers,
            layernorm: LayerNorm::load(w, "layernorm", d, c.layer_norm_eps)?,
            config: c,
        })
    }

    /// The position table for an (h, w) patch grid: [1 + h·w, D], row 0 = CLS (unchanged).
    pub fn interpolate_pos(&self, h: usize, w: usize) -> Vec<f32> {
        let d = self.config.hidden_size;
        let g = self.pos_grid;
        if h == g && w == g {
            return self.position_embeddings.clone();
        }
        let src = &self.position_embeddings[d..];
        let antialias = self.config.num_register_tokens > 0;
        let mut out = self.position_embeddings[..d].to_vec();
        let wy = if antialias { aa_weights(g, h) } else { cubic_weights(g, h) };
        let wx = if antialias { aa_weights(g, w) } else { cubic_weights(g, w) };
        let mut grid = vec![0f32; h * w * d];
        if antialias {
            // Separable in f64 (horizontal, then vertical), as the reference.
            let mut tmp = vec![0f64; g * w * d];
            for y in 0..g {
                for (ox, (ix, wts)) in wx.iter().enumerate() {
                    for c in 0..d {
                        tmp[(y * w + ox) * d + c] =
                            ix.iter().zip(wts).map(|(&i, &wt)| wt * src[(y * g + i) * d + c] as f64).sum();
                    }
                }
            }
            for (oy, (iy, wts)) in wy.iter().enumerate() {
                for ox in 0..w {
                    for c in 0..d {
                        grid[(oy * w + ox) * d + c] =
                            iy.iter().zip(wts).map(|(&i, &wt)| wt * tmp[(i * w + ox) * d + c]).sum::<f64>() as f32;
                    }
                }
            }
        } else {
            // PyTorch's CPU bicubic: along x within each of the 4 source rows, then along y, in f32.
            for (oy, (iy, wyv)) in wy.iter().enumerate() {
                for (ox, (ix, wxv)) in wx.iter().enumerate() {
                    for c in 0..d {
                        let mut acc = 0f32;
                        for (r, &yy) in iy.iter().enumerate() {
                            let mut row = 0f32;
                            for (k, &xx) in ix.iter().enumerate() {
                                row += wxv[k] as f32 * src[(yy * g + xx) * d + c];
                            }
                            acc += wyv[r] as f32 * row;
                        }
                        grid[(oy * w + ox) * d + c] = acc;
                    }
                }
            }
        }
        out.extend(grid);
        out
    }

    /// The parameters on the GPU, matmul weights in f32.
    pub fn to_gpu(&self, ctx: &GpuContext) -> Result<LoadedDinov2> {
        self.load_on(Some(ctx), Precision::F32)
    }

    /// [`Dinov2::to_gpu`] with the matmul weights in `precision`.
    pub fn to_gpu_with(&self, ctx: &GpuContext, precision: Precision) -> Result<LoadedDinov2> {
        self.load_on(Some(ctx), precision)
    }

    /// The parameters on the host, for the forward pass on the CPU kernels (the browser without WebGPU).
    pub fn to_cpu(&self) -> Result<LoadedDinov2> {
        self.load_on(None, Precision::F32)
    }

    /// The parameters where `ctx` says (the GPU, or the host when None), the matmul weights (patch embedding,
    /// qkv, attention output, both FFN linears) in `precision` (f16 on the GPU needs `shader-f16`);
    /// LayerNorms, biases and tokens stay f32.
    pub fn load_on(&self, ctx: Option<&GpuContext>, precision: Precision) -> Result<LoadedDinov2> {
        let ex = Exec::on(ctx);
        let half = precision.half();
        let up = |v: &[f32]| ex.upload("dinov2 weights", v);
        let upw = |name: String, v: &[f32]| ex.upload_weight("dinov2 weights", &format!("dinov2 {name}"), v, half);
        let bias = |l: &Linear| up(l.bias.as_deref().unwrap_or_default());
        let mut layers = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let (f1, f2) = l.mlp.linears();
            layers.push(LoadedDinov2Layer {
                norm1_weight: up(&l.norm1.weight)?,
                norm1_bias: up(&l.norm1.bias)?,
                qkv_weight: upw(format!("layer {i} qkv"), &l.qkv.weight)?,
                qkv_bias: bias(&l.qkv)?,
                attention_output_dense_weight: upw(
                    format!("layer {i} attention output"),
                    &l.attention_output_dense.weight,
                )?,
                attention_output_dense_bias: bias(&l.attention_output_dense)?,
                norm2_weight: up(&l.norm2.weight)?,
                norm2_bias: up(&l.norm2.bias)?,
                mlp_in_weight: upw(format!("layer {i} ffn in"), &f1.weight)?,
                mlp_in_bias: bias(f1)?,
                mlp_out_weight: upw(format!("layer {i} ffn out"), &f2.weight)?,
                mlp_out_bias: bias(f2)?,
            });
        }
        Ok(LoadedDinov2 {
            precision,
            on_gpu: ctx.is_some(),
            patch_embeddings_projection_weight: upw("patch embedding".into(), &self.patch_weight)?,
            patch_embeddings_projection_bias: up(&self.patch_bias)?,
            layernorm_weight: up(&self.layernorm.weight)?,
            layernorm_bias: up(&self.layernorm.bias)?,
            layers,
            model: self.clone(),
        })
    }
}

/// Non-antialiased bicubic (A = −0.75) taps: 4 clamped indices and weights per output, coordinates in f32.
fn cubic_weights(inp: usize, out: usize) -> Vec<(Vec<usize>, Vec<f64>)> {
    let a = -0.75f32;
    let cubic1 = |x: f32| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let cubic2 = |x: f32| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    let scale = inp as f32 / out as f32;
    (0..out)
        .map(|o| {
            let src = scale * (o as f32 + 0.5) - 0.5;
            let i = src.floor();
            let t = src - i;
            let w = [cubic2(t + 1.0), cubic1(t), cubic1(1.0 - t), cubic2(2.0 - t)];
            let idx = [-1i64, 0, 1, 2].map(|k| (i as i64 + k).clamp(0, inp as i64 - 1) as usize);
            (idx.to_vec(), w.map(|v| v as f64).to_vec())
        })
        .collect()
}

/// Antialiased bicubic (PIL-style A = −0.5, support 2·scale when downsampling, normalised), in f64.
fn aa_weights(inp: usize, out: usize) -> Vec<(Vec<usize>, Vec<f64>)> {
    let cubic = |t: f64| crate::data::preprocess::cubic(t, -0.5);
    let s = inp as f64 / out as f64;
    let support = if s >= 1.0 { 2.0 * s } else { 2.0 };
    let inv = if s >= 1.0 { 1.0 / s } else { 1.0 };
    (0..out)
        .map(|o| {
            let center = s * (o as f64 + 0.5);
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(inp as i64) as usize;
            let mut w: Vec<f64> =
                (0..xmax.saturating_sub(xmin)).map(|j| cubic((j as f64 + xmin as f64 - center + 0.5) * inv)).collect();
            let tot: f64 = w.iter().sum();
            if tot != 0.0 {
                for v in &mut w {
                    *v /= tot;
                }
            }
            ((xmin..xmax).collect(), w)
        })
        .collect()
}
