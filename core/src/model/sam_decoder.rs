//! LiteMedSAM's prompt encoder (box prompts) and mask decoder (SAM's two-way transformer), from
//! `segment_anything`'s `PromptEncoder` / `MaskDecoder` / `TwoWayTransformer` as LiteMedSAM configures them
//! (../shared/fixtures/litemedsam/README.md): embedding dim 256 on a 64×64 grid, 2 layers, 8 heads, MLP 2048
//! with ReLU, cross-attention at internal dim 128, upscaling ConvT(256→64) → LayerNorm2d(1e-6) → GELU →
//! ConvT(64→32) → GELU, hypernetwork and IoU MLPs of 3 layers. Fields mirror `prompt_encoder.*` and
//! `mask_decoder.*` checkpoint keys.
//!
//! The transformer, the upscaling and the heads run on an [`Exec`] (the WGSL kernels, or their CPU twins).
//! The prompt encoding itself (two sin/cos corner tokens, a constant positional grid, the `no_mask_embed` added
//! to every pixel) is prepared on the host like the model's parameters: it is a few thousand sin/cos values.
//! A 2×2 stride-2 transposed convolution is a matmul to [H·W, 4·C] followed by `depth_to_space`.

use super::exec::{Exec, Tensor};
use super::{LayerNorm, Linear};
use crate::data::io::weights::Weights;
use crate::gpu::ops::CrossAttnGeom;
use crate::gpu::GpuContext;
use crate::{Error, Result};

pub const DIM: usize = 256;
pub const GRID: usize = 64;
pub const INPUT: usize = 256;
const HEADS: usize = 8;
const MLP_DIM: usize = 2048;
const MASK_TOKENS: usize = 4;
/// iou token, 4 mask tokens, 2 box corners.
pub const TOKENS: usize = 1 + MASK_TOKENS + 2;

/// SAM's `Attention`: q/k/v projections to `internal` channels, `HEADS` heads, output projection back.
#[derive(Clone, Debug)]
pub struct SamAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
}

impl SamAttention {
    fn load(w: &Weights, p: &str, internal: usize) -> Result<Self> {
        Ok(SamAttention {
            q_proj: Linear::load(w, &format!("{p}.q_proj"), internal, DIM, true)?,
            k_proj: Linear::load(w, &format!("{p}.k_proj"), internal, DIM, true)?,
            v_proj: Linear::load(w, &format!("{p}.v_proj"), internal, DIM, true)?,
            out_proj: Linear::load(w, &format!("{p}.out_proj"), DIM, internal, true)?,
        })
    }
}

/// `TwoWayAttentionBlock`.
#[derive(Clone, Debug)]
pub struct TwoWayBlock {
    pub self_attn: SamAttention,
    pub norm1: LayerNorm,
    pub cross_attn_token_to_image: SamAttention,
    pub norm2: LayerNorm,
    pub mlp_lin1: Linear,
    pub mlp_lin2: Linear,
    pub norm3: LayerNorm,
    pub cross_attn_image_to_token: SamAttention,
    pub norm4: LayerNorm,
}

/// `PromptEncoder` (the parts a box prompt uses).
#[derive(Clone, Debug)]
pub struct PromptEncoder {
    /// `pe_layer.positional_encoding_gaussian_matrix` [2, 128].
    pub gaussian: Vec<f32>,
    /// `point_embeddings.{0..3}` [256] each; a box uses 2 (top-left) and 3 (bottom-right).
    pub point_embeddings: Vec<Vec<f32>>,
    pub no_mask_embed: Vec<f32>,
}

impl PromptEncoder {
    /// SAM's random-Fourier positional encoding of a point in [0, 1]²: [sin(2π·(2p−1)·G), cos(…)].
    fn pe(&self, x: f64, y: f64) -> Vec<f32> {
        let g = &self.gaussian;
        let (cx, cy) = ((2.0 * x - 1.0) as f32, (2.0 * y - 1.0) as f32);
        let half = DIM / 2;
        let mut out = vec![0f32; DIM];
        for k in 0..half {
            // f32 arithmetic as PyTorch does it: coords @ G, then · 2π.
            let v = (cx * g[k] + cy * g[half + k]) * (2.0 * std::f32::consts::PI);
            out[k] = v.sin();
            out[half + k] = v.cos();
        }
        out
    }

    /// The two corner tokens of a box (x0, y0, x1, y1) in the 256×256 input frame.
    pub fn box_tokens(&self, bx: [f32; 4]) -> Vec<f32> {
        let mut out = Vec::with_capacity(2 * DIM);
        for (corner, (x, y)) in [(bx[0], bx[1]), (bx[2], bx[3])].into_iter().enumerate() {
            let nx = (x + 0.5) / INPUT as f32;
            let ny = (y + 0.5) / INPUT as f32;
            let mut t = self.pe(nx as f64, ny as f64);
            for (v, e) in t.iter_mut().zip(&self.point_embeddings[2 + corner]) {
                *v += e;
            }
            out.extend(t);
        }
        out
    }

    /// `image_pe` as tokens [64·64, 256] (row-major grid, (x, y) = ((j + 0.5)/64, (i + 0.5)/64)).
    pub fn image_pe(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(GRID * GRID * DIM);
        for i in 0..GRID {
            for j in 0..GRID {
                let x = ((j as f32 + 0.5) / GRID as f32) as f64;
                let y = ((i as f32 + 0.5) / GRID as f32) as f64;
                out.extend(self.pe(x, y));
            }
        }
        out
    }
}

/// A 2×2 stride-2 `ConvTranspose2d`, weight rearranged to [in, (di·2 + dj)·out + o] for the matmul.
#[derive(Clone, Debug)]
pub struct ConvT2x2<P = Vec<f32>> {
    pub weight: P,
    pub bias: P,
    pub in_dim: usize,
    pub out_dim: usize,
}

impl ConvT2x2 {
    fn load(w: &Weights, p: &str, in_dim: usize, out_dim: usize) -> Result<Self> {
        let wt = w.f32(&format!("{p}.weight"), Some(&[in_dim, out_dim, 2, 2]))?;
        let mut weight = vec![0f32; in_dim * 4 * out_dim];
        for c in 0..in_dim {
            for o in 0..out_dim {
                for d in 0..4 {
                    weight[c * 4 * out_dim + d * out_dim + o] = wt[(c * out_dim + o) * 4 + d];
                }
            }
        }
        Ok(ConvT2x2 { weight, bias: w.f32(&format!("{p}.bias"), Some(&[out_dim]))?.to_vec(), in_dim, out_dim })
    }
}

/// `MaskDecoder`.
#[derive(Clone, Debug)]
pub struct MaskDecoder {
    pub iou_token: Vec<f32>,
    /// [4, 256]
    pub mask_tokens: Vec<f32>,
    pub layers: Vec<TwoWayBlock>,
    pub final_attn_token_to_image: SamAttention,
    pub norm_final_attn: LayerNorm,
    pub upscaling0: ConvT2x2,
    pub upscaling1: LayerNorm,
    pub upscaling3: ConvT2x2,
    /// `output_hypernetworks_mlps.{m}.layers.{0,1,2}`: 256 → 256 → 256 → 32.
    pub hypernetworks: Vec<[Linear; 3]>,
    /// `iou_prediction_head.layers.{0,1,2}`: 256 → 256 → 256 → 4.
    pub iou_head: [Linear; 3],
}

/// Prompt encoder and mask decoder together.
#[derive(Clone, Debug)]
pub struct SamDecoder {
    pub prompt_encoder: PromptEncoder,
    pub mask_decoder: MaskDecoder,
}

fn mlp3(w: &Weights, p: &str, dims: [usize; 4]) -> Result<[Linear; 3]> {
    Ok([
        Linear::load(w, &format!("{p}.layers.0"), dims[1], dims[0], true)?,
        Linear::load(w, &format!("{p}.layers.1"), dims[2], dims[1], true)?,
        Linear::load(w, &format!("{p}.layers.2"), dims[3], dims[2], true)?,
    ])
}

impl SamDecoder {
    /// From a LiteMedSAM (SAM-family, 256-d, 64×64 grid) checkpoint.
    pub fn load(w: &Weights) -> Result<Self> {
        let pe = "prompt_encoder";
        let prompt_encoder = PromptEncoder {
            gaussian: w
                .f32(&format!("{pe}.pe_layer.positional_encoding_gaussian_matrix"), Some(&[2, DIM / 2]))?
                .to_vec(),
            point_embeddings: (0..4)
                .map(|i| Ok(w.f32(&format!("{pe}.point_embeddings.{i}.weight"), Some(&[1, DIM]))?.to_vec()))
                .collect::<Result<_>>()?,
            no_mask_embed: w.f32(&format!("{pe}.no_mask_embed.weight"), Some(&[1, DIM]))?.to_vec(),
        };
        let md = "mask_decoder";
        let t = format!("{md}.transformer");
        let layers = (0..2)
            .map(|i| {
                let p = format!("{t}.layers.{i}");
                Ok(TwoWayBlock {
                    self_attn: SamAttention::load(w, &format!("{p}.self_attn"), DIM)?,
                    norm1: LayerNorm::load(w, &format!("{p}.norm1"), DIM, 1e-5)?,
                    cross_attn_token_to_image: SamAttention::load(
                        w,
                        &format!("{p}.cross_attn_token_to_image"),
                        DIM / 2,
                    )?,
                    norm2: LayerNorm::load(w, &format!("{p}.norm2"), DIM, 1e-5)?,
                    mlp_lin1: Linear::load(w, &format!("{p}.mlp.lin1"), MLP_DIM, DIM, true)?,
                    mlp_lin2: Linear::load(w, &format!("{p}.mlp.lin2"), DIM, MLP_DIM, true)?,
                    norm3: LayerNorm::load(w, &format!("{p}.norm3"), DIM, 1e-5)?,
                    cross_attn_image_to_token: SamAttention::load(
                        w,
                        &format!("{p}.cross_attn_image_to_token"),
                        DIM / 2,
                    )?,
                    norm4: LayerNorm::load(w, &format!("{p}.norm4"), DIM, 1e-5)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mask_decoder = MaskDecoder {
            iou_token: w.f32(&format!("{md}.iou_token.weight"), Some(&[1, DIM]))?.to_vec(),
            mask_tokens: w.f32(&format!("{md}.mask_tokens.weight"), Some(&[MASK_TOKENS, DIM]))?.to_vec(),
            layers,
            final_attn_token_to_image: SamAttention::load(w, &format!("{t}.final_attn_token_to_image"), DIM / 2)?,
            norm_final_attn: LayerNorm::load(w, &format!("{t}.norm_final_attn"), DIM, 1e-5)?,
            upscaling0: ConvT2x2::load(w, &format!("{md}.output_upscaling.0"), DIM, DIM / 4)?,
            upscaling1: LayerNorm::load(w, &format!("{md}.output_upscaling.1"), DIM / 4, 1e-6)?,
            upscaling3: ConvT2x2::load(w, &format!("{md}.output_upscaling.3"), DIM / 4, DIM / 8)?,
            hypernetworks: (0..MASK_TOKENS)
                .map(|m| mlp3(w, &format!("{md}.output_hypernetworks_mlps.{m}"), [DIM, DIM, DIM, DIM / 8]))
                .collect::<Result<_>>()?,
            iou_head: mlp3(w, &format!("{md}.iou_prediction_head"), [DIM, DIM, DIM, MASK_TOKENS])?,
        };
        Ok(SamDecoder { prompt_encoder, mask_decoder })
    }

    /// Upload every parameter once to the GPU.
    pub fn to_gpu(&self, ctx: &GpuContext) -> Result<LoadedSamDecoder> {
        self.prepare(&Exec::gpu(ctx))
    }

    /// Keep the parameters on the host for the CPU forward pass.
    pub fn to_cpu(&self) -> Result<LoadedSamDecoder> {
        self.prepare(&Exec::cpu())
    }

    fn prepare(&self, ex: &Exec) -> Result<LoadedSamDecoder> {
        let up = |v: &[f32]| ex.upload("decoder weights", v);
        // Every decoder linear has a bias (uploaded as given; an empty one where a checkpoint had none).
        let lin = |l: &Linear| -> Result<Linear<Tensor>> {
            let bias = Some(up(l.bias.as_deref().unwrap_or_default())?);
            Ok(Linear { weight: up(&l.weight)?, bias, out_dim: l.out_dim, in_dim: l.in_dim })
        };
        let ln = |l: &LayerNorm| -> Result<LayerNorm<Tensor>> {
            Ok(LayerNorm { weight: up(&l.weight)?, bias: up(&l.bias)?, eps: l.eps })
        };
        let attn = |a: &SamAttention| -> Result<LoadedAttention> {
            Ok(LoadedAttention { q: lin(&a.q_proj)?, k: lin(&a.k_proj)?, v: lin(&a.v_proj)?, out: lin(&a.out_proj)? })
        };
        let md = &self.mask_decoder;
        let layers = md
            .layers
            .iter()
            .map(|b| {
                Ok(LoadedBlock {
                    self_attn: attn(&b.self_attn)?,
                    norm1: ln(&b.norm1)?,
                    t2i: attn(&b.cross_attn_token_to_image)?,
                    norm2: ln(&b.norm2)?,
                    lin1: lin(&b.mlp_lin1)?,
                    lin2: lin(&b.mlp_lin2)?,
                    norm3: ln(&b.norm3)?,
                    i2t: attn(&b.cross_attn_image_to_token)?,
                    norm4: ln(&b.norm4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let convt = |c: &ConvT2x2| -> Result<ConvT2x2<Tensor>> {
            Ok(ConvT2x2 { weight: up(&c.weight)?, bias: up(&c.bias)?, in_dim: c.in_dim, out_dim: c.out_dim })
        };
        Ok(LoadedSamDecoder {
            prompt_encoder: self.prompt_encoder.clone(),
            output_tokens: [&md.iou_token[..], &md.mask_tokens[..]].concat(),
            image_pe: ex.upload("decoder image pe", &self.prompt_encoder.image_pe())?,
            layers,
            final_attn: attn(&md.final_attn_token_to_image)?,
            norm_final: ln(&md.norm_final_attn)?,
            up0: convt(&md.upscaling0)?,
            up1: ln(&md.upscaling1)?,
            up3: convt(&md.upscaling3)?,
            hyper: md
                .hypernetworks
                .iter()
                .map(|m| Ok([lin(&m[0])?, lin(&m[1])?, lin(&m[2])?]))
                .collect::<Result<Vec<_>>>()?,
            iou_head: [lin(&md.iou_head[0])?, lin(&md.iou_head[1])?, lin(&md.iou_head[2])?],
            on_gpu: ex.is_gpu(),
        })
    }
}

struct LoadedAttention {
    q: Linear<Tensor>,
    k: Linear<Tensor>,
    v: Linear<Tensor>,
    out: Linear<Tensor>,
}

struct LoadedBlock {
    self_attn: LoadedAttention,
    norm1: LayerNorm<Tensor>,
    t2i: LoadedAttention,
    norm2: LayerNorm<Tensor>,
    lin1: Linear<Tensor>,
    lin2: Linear<Tensor>,
    norm3: LayerNorm<Tensor>,
    i2t: LoadedAttention,
    norm4: LayerNorm<Tensor>,
}

/// The decoder's parameters on the GPU or the host.
pub struct LoadedSamDecoder {
    /// Host side of the prompt encoding (small: the Fourier matrix and five embeddings).
    prompt_encoder: PromptEncoder,
    /// `[iou_token, mask_tokens]` [5, 256], the fixed head of the decoder's token sequence.
    output_tokens: Vec<f32>,
    image_pe: Tensor,
    layers: Vec<LoadedBlock>,
    final_attn: LoadedAttention,
    norm_final: LayerNorm<Tensor>,
    up0: ConvT2x2<Tensor>,
    up1: LayerNorm<Tensor>,
    up3: ConvT2x2<Tensor>,
    hyper: Vec<[Linear<Tensor>; 3]>,
    iou_head: [Linear<Tensor>; 3],
    on_gpu: bool,
}

/// What the decoder returns for one box.
#[derive(Clone, Debug)]
pub struct MaskOutput {
    /// Logits of mask 0 (`multimask_output=False`), [256, 256] row-major.
    pub low_res_logits: Vec<f32>,
    /// IoU predictions of the four mask tokens (index 0 goes with `low_res_logits`).
    pub iou_pred: Vec<f32>,
    /// The prompt encoder's box tokens [2, 256].
    pub sparse_embeddings: Vec<f32>,
    /// The transformer's token output [7, 256].
    pub tokens_out: Vec<f32>,
}

impl MaskOutput {
    /// The mask at 256×256: logit > 0 (sigmoid > 0.5).
    pub fn mask_256(&self) -> Vec<u8> {
        self.low_res_logits.iter().map(|&v| (v > 0.0) as u8).collect()
    }

    /// The mask at the original image size: bilinear (align_corners=False) resize of the logits, then > 0.
    pub fn mask_at(&self, h: usize, w: usize) -> Vec<u8> {
        crate::data::preprocess::resize_bilinear_chw(&self.low_res_logits, 1, INPUT, INPUT, h, w)
            .into_iter()
            .map(|v| (v > 0.0) as u8)
            .collect()
    }
}

/// `box_256` from a box in original pixels (x0, y0, x1, y1) of an image h × w: each axis scaled separately,
/// in f64, not rounded (as MedSAM).
pub fn box_to_256(bx: [f64; 4], h: usize, w: usize) -> [f32; 4] {
    let (sx, sy) = (INPUT as f64 / w as f64, INPUT as f64 / h as f64);
    [(bx[0] * sx) as f32, (bx[1] * sy) as f32, (bx[2] * sx) as f32, (bx[3] * sy) as f32]
}

impl LoadedSamDecoder {
    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }

    /// Decode a mask for `box_256` from an image embedding [256, 64, 64] (as the encoder returns it) on the GPU.
    pub async fn forward(&self, ctx: &GpuContext, embedding_chw: &[f32], box_256: [f32; 4]) -> Result<MaskOutput> {
        self.forward_on(Exec::gpu(ctx), embedding_chw, box_256).await
    }

    /// The same on the CPU twins (a decoder loaded with `to_cpu`).
    pub async fn forward_cpu(&self, embedding_chw: &[f32], box_256: [f32; 4]) -> Result<MaskOutput> {
        self.forward_on(Exec::cpu(), embedding_chw, box_256).await
    }

    async fn linear(&self, ex: &mut Exec<'_>, x: &Tensor, rows: usize, l: &Linear<Tensor>) -> Result<Tensor> {
        ex.matmul(x, &l.weight, l.bias.as_ref(), rows, l.out_dim, l.in_dim, true).await
    }

    async fn norm(&self, ex: &mut Exec<'_>, x: &Tensor, rows: usize, n: &LayerNorm<Tensor>) -> Result<Tensor> {
        ex.layernorm(x, &n.weight, &n.bias, rows, DIM, n.eps).await
    }

    /// SAM `Attention(q, k, v)`: nq query rows, nk key/value rows, 256 channels in and out.
    async fn attention(
        &self,
        ex: &mut Exec<'_>,
        a: &LoadedAttention,
        (q, nq): (&Tensor, usize),
        k: &Tensor,
        (v, nk): (&Tensor, usize),
    ) -> Result<Tensor> {
        let internal = a.q.out_dim;
        let qp = self.linear(ex, q, nq, &a.q).await?;
        let kp = self.linear(ex, k, nk, &a.k).await?;
        let vp = self.linear(ex, v, nk, &a.v).await?;
        let o = ex.cross_attention(&qp, &kp, &vp, CrossAttnGeom::dense(nq, nk, HEADS, internal / HEADS)).await?;
        self.linear(ex, &o, nq, &a.out).await
    }

    async fn forward_on(&self, mut ex: Exec<'_>, embedding_chw: &[f32], box_256: [f32; 4]) -> Result<MaskOutput> {
        ex.check_params("decoder", self.on_gpu)?;
        let hw = GRID * GRID;
        if embedding_chw.len() != DIM * hw {
            return Err(Error::shape(
                "decoder",
                format!("embedding has {} values, expected 256x64x64", embedding_chw.len()),
            ));
        }
        if box_256.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("decoder: box {box_256:?} is not finite")));
        }
        let ex = &mut ex;
        let pe = &self.prompt_encoder;
        // Host-side prompt encoding: tokens [iou, mask×4, corner×2]; src = embedding + no_mask_embed (tokens).
        let sparse = pe.box_tokens(box_256);
        let tokens = [&self.output_tokens[..], &sparse[..]].concat();
        let mut src = vec![0f32; hw * DIM];
        for c in 0..DIM {
            let add = pe.no_mask_embed[c];
            for p in 0..hw {
                src[p * DIM + c] = embedding_chw[c * hw + p] + add;
            }
        }
        let qpe = ex.upload("decoder tokens", &tokens)?;
        let mut queries = ex.upload("decoder tokens", &tokens)?;
        let mut keys = ex.upload("decoder image", &src)?;
        let kpe = &self.image_pe;
        let (nt, nq) = (TOKENS * DIM, TOKENS);

        for (i, b) in self.layers.iter().enumerate() {
            // Self-attention: layer 0 takes no PE and has no residual.
            if i == 0 {
                queries = self.attention(ex, &b.self_attn, (&queries, nq), &queries, (&queries, nq)).await?;
            } else {
                let q = ex.add(&queries, &qpe, nt).await?;
                let a = self.attention(ex, &b.self_attn, (&q, nq), &q, (&queries, nq)).await?;
                ex.add_into(&a, &mut queries, nt).await?;
            }
            queries = self.norm(ex, &queries, nq, &b.norm1).await?;
            // Tokens attend to the image.
            let q = ex.add(&queries, &qpe, nt).await?;
            let k = ex.add(&keys, kpe, hw * DIM).await?;
            let a = self.attention(ex, &b.t2i, (&q, nq), &k, (&keys, hw)).await?;
            ex.add_into(&a, &mut queries, nt).await?;
            queries = self.norm(ex, &queries, nq, &b.norm2).await?;
            // MLP (ReLU).
            let m1 = self.linear(ex, &queries, nq, &b.lin1).await?;
            let m1 = ex.relu(&m1, nq * MLP_DIM).await?;
            let m2 = self.linear(ex, &m1, nq, &b.lin2).await?;
            ex.add_into(&m2, &mut queries, nt).await?;
            queries = self.norm(ex, &queries, nq, &b.norm3).await?;
            // The image attends to the tokens.
            let q = ex.add(&queries, &qpe, nt).await?;
            let a = self.attention(ex, &b.i2t, (&k, hw), &q, (&queries, nq)).await?;
            ex.add_into(&a, &mut keys, hw * DIM).await?;
            keys = self.norm(ex, &keys, hw, &b.norm4).await?;
            ex.flush();
        }
        let q = ex.add(&queries, &qpe, nt).await?;
        let k = ex.add(&keys, kpe, hw * DIM).await?;
        let a = self.attention(ex, &self.final_attn, (&q, nq), &k, (&keys, hw)).await?;
        ex.add_into(&a, &mut queries, nt).await?;
        queries = self.norm(ex, &queries, nq, &self.norm_final).await?;

        // Upscaling: ConvT 256→64 (64² → 128²), LayerNorm2d, GELU, ConvT 64→32 (→ 256²), GELU.
        let ConvT2x2 { weight: w0, bias: b0, in_dim: cin0, out_dim: c0 } = &self.up0;
        let u = ex.matmul(&keys, w0, None, hw, 4 * c0, *cin0, false).await?;
        let u = ex.depth_to_space(&u, b0, GRID, GRID, *c0, 2).await?;
        let n1 = 4 * hw;
        let u = ex.layernorm(&u, &self.up1.weight, &self.up1.bias, n1, *c0, self.up1.eps).await?;
        let u = ex.gelu(&u, n1 * c0).await?;
        let ConvT2x2 { weight: w3, bias: b3, in_dim: cin3, out_dim: c3 } = &self.up3;
        let u = ex.matmul(&u, w3, None, n1, 4 * c3, *cin3, false).await?;
        let u = ex.depth_to_space(&u, b3, 2 * GRID, 2 * GRID, *c3, 2).await?;
        let n2 = 4 * n1;
        let upscaled = ex.gelu(&u, n2 * c3).await?;

        // Heads on every token row (7 rows; the rows that matter are picked on the host).
        let mut hyper_in = Vec::with_capacity(MASK_TOKENS * c3);
        for (m, mlp) in self.hyper.iter().enumerate() {
            let x = self.linear(ex, &queries, nq, &mlp[0]).await?;
            let x = ex.relu(&x, nq * mlp[0].out_dim).await?;
            let x = self.linear(ex, &x, nq, &mlp[1]).await?;
            let x = ex.relu(&x, nq * mlp[1].out_dim).await?;
            let x = self.linear(ex, &x, nq, &mlp[2]).await?;
            let rows = ex.read(&x, nq * c3).await?;
            hyper_in.extend_from_slice(&rows[(1 + m) * c3..(2 + m) * c3]);
        }
        let x = self.linear(ex, &queries, nq, &self.iou_head[0]).await?;
        let x = ex.relu(&x, nq * DIM).await?;
        let x = self.linear(ex, &x, nq, &self.iou_head[1]).await?;
        let x = ex.relu(&x, nq * DIM).await?;
        let x = self.linear(ex, &x, nq, &self.iou_head[2]).await?;
        let iou_all = ex.read(&x, nq * MASK_TOKENS).await?;
        let hyper = ex.upload("decoder hyper_in", &hyper_in)?;
        let masks = ex.matmul(&upscaled, &hyper, None, n2, MASK_TOKENS, *c3, true).await?;
        let masks = ex.read(&masks, n2 * MASK_TOKENS).await?;
        let tokens_out = ex.read(&queries, nt).await?;
        Ok(MaskOutput {
            low_res_logits: (0..n2).map(|p| masks[p * MASK_TOKENS]).collect(),
            iou_pred: iou_all[..MASK_TOKENS].to_vec(),
            sparse_embeddings: sparse,
            tokens_out,
        })
    }
}
