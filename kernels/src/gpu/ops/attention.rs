//! Attention: windowed / global self-attention with relative-position bias, and cross-attention.

use wgpu::{Buffer, CommandEncoder};

use super::*;
use crate::gpu::params::*;
use crate::gpu::GpuContext;
use crate::{Error, Result};

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
    if g.hd == 0 || g.hd > 64 || !g.hd.is_multiple_of(4) {
        return Err(Error::shape(OP, format!("head dim {} (the kernel supports multiples of 4 up to 64)", g.hd)));
    }
    if !g.grid_w.is_multiple_of(g.ws_w) || !g.grid_h.is_multiple_of(g.ws_h) {
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
    if g.hd == 0 || g.hd > 64 || !g.hd.is_multiple_of(4) {
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
