//! The segmentation head (see [`super::seg`] for its architecture and loss): its parameters, the forward pass over
//! a batch of grids on an [`Exec`], the loss and the backward pass. The training loop lives in [`super::seg`].

use super::grid::{image_from_rows, targets_from_mask, GridShape};
use crate::cpu::DiceMode;
use crate::gpu::ops::ConvGeom;
use crate::gpu::GpuContext;
use crate::model::exec::{Exec, Tensor};
use crate::rng::Rng;
use crate::{Error, Result};

pub(super) const LN_EPS: f32 = 1e-5;

/// A segmentation head: the two layers' weights (PyTorch layouts) and the geometry it was trained for.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SegHead {
    pub grid: GridShape,
    pub hidden: usize,
    /// Pixel-shuffle factor: output (h·r)×(w·r).
    pub r: usize,
    /// [hidden, c, 3, 3]
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    /// [2·r², hidden]; output channel (i·r + j)·2 + class is class `class` at sub-pixel (i, j).
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
}

impl SegHead {
    /// PyTorch's default initialisation (uniform ±1/√fan_in for weights and biases).
    pub fn init(grid: GridShape, hidden: usize, r: usize, rng: &mut Rng) -> Result<SegHead> {
        if grid.is_empty() || hidden == 0 || r == 0 {
            return Err(Error::Invalid(format!("segmentation head: grid {grid:?}, hidden {hidden}, scale {r}")));
        }
        let k1 = grid.c * 9;
        let b1 = 1.0 / (k1 as f32).sqrt();
        let out = 2 * r * r;
        let b2 = 1.0 / (hidden as f32).sqrt();
        Ok(SegHead {
            grid,
            hidden,
            r,
            w1: rng.uniform_vec(hidden * k1, -b1, b1),
            b1: rng.uniform_vec(hidden, -b1, b1),
            w2: rng.uniform_vec(out * hidden, -b2, b2),
            b2: rng.uniform_vec(out, -b2, b2),
        })
    }

    /// Output size (h·r, w·r).
    pub fn out_hw(&self) -> (usize, usize) {
        (self.grid.h * self.r, self.grid.w * self.r)
    }

    pub(super) fn check_grid(&self, what: &str, x: &[f32]) -> Result<()> {
        if x.len() != self.grid.len() {
            return Err(Error::shape(
                "segmentation head",
                format!(
                    "{what}: {} values, the head expects a {}×{}×{} grid",
                    x.len(),
                    self.grid.h,
                    self.grid.w,
                    self.grid.c
                ),
            ));
        }
        Ok(())
    }

    /// Foreground probability [h·r, w·r] (row-major) for one grid [h, w, c].
    pub async fn predict(&self, ctx: Option<&GpuContext>, grid: &[f32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.predict_each(ctx, std::slice::from_ref(&grid), &mut |_, p| {
            out = p;
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// `predict` for every grid, the parameters uploaded once; `each(i, probabilities)` per grid.
    pub async fn predict_each<G: AsRef<[f32]>>(
        &self,
        ctx: Option<&GpuContext>,
        grids: &[G],
        each: &mut dyn FnMut(usize, Vec<f32>) -> Result<()>,
    ) -> Result<()> {
        let mut ex = Exec::on(ctx);
        let prm = Params::upload(&ex, self)?;
        let geom = [(self.grid.h, self.grid.w)];
        let p = self.grid.h * self.grid.w;
        for (i, grid) in grids.iter().enumerate() {
            let grid = grid.as_ref();
            self.check_grid("predict", grid)?;
            let x = ex.upload("grid", grid)?;
            let f = forward(&mut ex, self, &prm, &[x], &geom).await?;
            let z = ex.read(&f.logits, p * 2 * self.r * self.r).await?;
            let rows: Vec<f32> = z.chunks(2).map(|l| 1.0 / (1.0 + (l[0] - l[1]).exp())).collect();
            each(i, image_from_rows(&rows, self.grid.h, self.grid.w, self.r))?;
        }
        Ok(())
    }
}

/// The head's parameters on an `Exec`.
pub(super) struct Params {
    pub(super) w1: Tensor,
    pub(super) b1: Tensor,
    pub(super) w2: Tensor,
    pub(super) b2: Tensor,
    pub(super) ones: Tensor,
    pub(super) zeros: Tensor,
}

impl Params {
    pub(super) fn upload(ex: &Exec<'_>, h: &SegHead) -> Result<Params> {
        Ok(Params {
            w1: ex.upload("seg w1", &h.w1)?,
            b1: ex.upload("seg b1", &h.b1)?,
            w2: ex.upload("seg w2", &h.w2)?,
            b2: ex.upload("seg b2", &h.b2)?,
            ones: ex.upload("ln", &vec![1f32; h.hidden])?,
            zeros: ex.upload("ln", &vec![0f32; h.hidden])?,
        })
    }
}

/// What the forward pass keeps for the backward pass.
pub(super) struct Forward {
    pub(super) z1: Tensor,
    pub(super) n: Tensor,
    pub(super) a: Tensor,
    pub(super) logits: Tensor,
}

pub(super) fn conv_geom(h: usize, w: usize, c: usize) -> ConvGeom {
    ConvGeom { h, w, c, k: 3, stride: 1, pad: 1 }
}

/// Forward over a batch of grids [h_b, w_b, c] (all with h_b·w_b = h·w; a transposed grid has h and w swapped).
pub(super) async fn forward(
    ex: &mut Exec<'_>,
    head: &SegHead,
    prm: &Params,
    xs: &[Tensor],
    geom: &[(usize, usize)],
) -> Result<Forward> {
    let (c, hid) = (head.grid.c, head.hidden);
    let p = head.grid.h * head.grid.w;
    let mut z1s = Vec::with_capacity(xs.len());
    for (x, &(h, w)) in xs.iter().zip(geom) {
        z1s.push(ex.conv2d(x, conv_geom(h, w, c), &prm.w1, Some(&prm.b1), hid).await?);
        ex.flush();
    }
    let z1 = if z1s.len() == 1 {
        z1s.pop().unwrap_or_else(|| unreachable!())
    } else {
        let parts: Vec<(&Tensor, usize)> = z1s.iter().map(|t| (t, p * hid)).collect();
        ex.concat(&parts)?
    };
    let rows = xs.len() * p;
    let n = ex.layernorm(&z1, &prm.ones, &prm.zeros, rows, hid, LN_EPS).await?;
    let a = ex.gelu(&n, rows * hid).await?;
    let out = 2 * head.r * head.r;
    let logits = ex.matmul(&a, &prm.w2, Some(&prm.b2), rows, out, hid, true).await?;
    Ok(Forward { z1, n, a, logits })
}

/// Gradients of the four parameter tensors.
pub(super) struct Grads {
    pub(super) w1: Tensor,
    pub(super) b1: Tensor,
    pub(super) w2: Tensor,
    pub(super) b2: Tensor,
}

/// Loss (0.5·CE + 0.5·Dice over the batch) and gradients for a batch of grids with targets in loss-row order.
pub(super) async fn loss_and_grads(
    ex: &mut Exec<'_>,
    head: &SegHead,
    prm: &Params,
    xs: &[Tensor],
    geom: &[(usize, usize)],
    targets: &[u32],
    dice: DiceMode,
) -> Result<(f32, Grads)> {
    let r2 = head.r * head.r;
    let p = head.grid.h * head.grid.w;
    let rows = xs.len() * p * r2;
    if targets.len() != rows {
        return Err(Error::shape("segmentation loss", format!("{} targets for {rows} output pixels", targets.len())));
    }
    let f = forward(ex, head, prm, xs, geom).await?;
    let (ce_rows, dce) = ex.softmax_xent(&f.logits, targets, rows, 2, 0.0, 0.5 / rows as f32).await?;
    let ce_sum = ex.row_sums(&ce_rows, 1, rows).await?;
    let (dsums, dd) = ex.dice_loss(&f.logits, targets, rows, dice, 0.5).await?;
    let dl = ex.add(&dce, &dd, rows * 2).await?;
    let grads = backward(ex, head, prm, xs, geom, &f, &dl).await?;
    let ce = ex.read(&ce_sum, 1).await?[0] / rows as f32;
    let len = crate::gpu::ops::dice_sums_len(rows);
    let dl_val = ex.read(&dsums, len).await?[len - 2];
    Ok((0.5 * ce + 0.5 * dl_val, grads))
}

/// Gradients of the head's parameters from the gradient `dl` of its logits (rows of 2).
pub(super) async fn backward(
    ex: &mut Exec<'_>,
    head: &SegHead,
    prm: &Params,
    xs: &[Tensor],
    geom: &[(usize, usize)],
    f: &Forward,
    dl: &Tensor,
) -> Result<Grads> {
    let (c, hid, r2) = (head.grid.c, head.hidden, head.r * head.r);
    let p = head.grid.h * head.grid.w;
    let bsz = xs.len();
    // 1×1 conv: dW2 = dLᵀ·A, db2 = Σ dL, dA = dL·W2.
    let out = 2 * r2;
    let prow = bsz * p;
    let dlt = ex.transpose(dl, prow, out).await?;
    let w2 = ex.matmul(&dlt, &f.a, None, out, hid, prow, false).await?;
    let b2 = ex.row_sums(&dlt, out, prow).await?;
    let da = ex.matmul(dl, &prm.w2, None, prow, hid, out, false).await?;
    let dn = ex.gelu_backward(&f.n, &da, prow * hid).await?;
    let dz1 = ex.layernorm_backward(&f.z1, &dn, prow, hid, LN_EPS).await?;
    let dz1t = ex.transpose(&dz1, prow, hid).await?;
    let b1 = ex.row_sums(&dz1t, hid, prow).await?;
    // 3×3 conv: dW1 = Σ_b dZ1_bᵀ · im2col(X_b), the columns recomputed per image (per block of pixels on the CPU).
    let mut w1: Option<Tensor> = None;
    for (b, (x, &(h, w))) in xs.iter().zip(geom).enumerate() {
        let dzb = ex.slice(&dz1, b * p * hid, p * hid)?;
        let g = ex.conv2d_weight_grad(x, conv_geom(h, w, c), &dzb, hid).await?;
        match &mut w1 {
            None => w1 = Some(g),
            Some(acc) => ex.add_into(&g, acc, hid * 9 * c).await?,
        }
        ex.flush();
    }
    let w1 = w1.ok_or_else(|| Error::Invalid("segmentation loss: an empty batch".into()))?;
    Ok(Grads { w1, b1, w2, b2 })
}

/// Loss and gradients (w1, b1, w2, b2) for grids [h, w, c] and full-resolution masks [h·r, w·r], on the host:
/// for gradient checks and tests.
pub async fn head_loss_and_grads(
    ctx: Option<&GpuContext>,
    head: &SegHead,
    grids: &[Vec<f32>],
    masks: &[Vec<u8>],
    dice: DiceMode,
) -> Result<(f32, [Vec<f32>; 4])> {
    let mut ex = Exec::on(ctx);
    let prm = Params::upload(&ex, head)?;
    let mut xs = Vec::new();
    let mut targets = Vec::new();
    for (g, m) in grids.iter().zip(masks) {
        head.check_grid("grid", g)?;
        xs.push(ex.upload("grid", g)?);
        targets.extend(targets_from_mask(m, head.grid.h, head.grid.w, head.r));
    }
    let geom = vec![(head.grid.h, head.grid.w); xs.len()];
    let (loss, g) = loss_and_grads(&mut ex, head, &prm, &xs, &geom, &targets, dice).await?;
    let out = 2 * head.r * head.r;
    let k1 = head.hidden * 9 * head.grid.c;
    Ok((
        loss,
        [
            ex.read(&g.w1, k1).await?,
            ex.read(&g.b1, head.hidden).await?,
            ex.read(&g.w2, out * head.hidden).await?,
            ex.read(&g.b2, out).await?,
        ],
    ))
}
