//! Segmentation head on frozen encoder feature grids, trained in the WGSL kernels (or their CPU twins).
//!
//! Architecture (for a grid of C channels at h×w, e.g. LiteMedSAM's 256×64×64 or DINOv2's patch grid):
//!   3×3 conv C → `hidden` (im2col + matmul, PyTorch's weight layout [hidden, C, 3, 3])
//!   → LayerNorm over channels without affine (its scale folds into the next layer)
//!   → GELU
//!   → 1×1 conv hidden → 2·r² (`matmul`)
//!   → pixel shuffle by r (a learned ×r upsampling, as a transposed conv with stride = kernel = r)
//!   → 2-class logits at (h·r)×(w·r), r = ⌈256 / max(h, w)⌉ (256×256 for LiteMedSAM and DINOv2 /14 at 224).
//!
//! The pixel shuffle is never computed in training: the logits [h·w, 2·r²] are read as [h·w·r², 2] rows, and the
//! target mask is reordered once into the same row order (`targets_from_mask`), so the loss kernels see one row
//! per output pixel. Deviation from the "bilinear upsample" for DINOv2: the same learned pixel shuffle is
//! used for every encoder.
//!
//! Loss: 0.5·CE + 0.5·Dice (MedCAL, METHODS §4.1; Dice over the whole batch) or 0.5·CE + 0.5·noise-robust Dice
//! (FM-ABS, γ = 1.5). Optimiser: AdamW, or SGD with momentum 0.9 and MedCAL's poly schedule lr·(1 − t/T)^0.9.
//! Backward kernels: `softmax_xent` and `dice_loss` give dlogits; dW = dYᵀ·X (`transpose` + `matmul`); the
//! hidden layer through `gelu_backward` and `layernorm_backward`; the 3×3 conv's weight gradient from the
//! im2col columns, recomputed per image in the backward pass rather than kept (37.7 MB each for LiteMedSAM).
//! The encoder is frozen, so no gradient flows into the grid.
//!
//! Augmentation (`augment`, off by default): one of the 8 flips / 90° rotations per sample and epoch, applied to
//! the cached feature grid and to the mask together. Exact for the `pixels` encoder; for a learned encoder it is
//! an approximation (its features are not equivariant to flips), which is why it is off by default. Intensity
//! augmentation (brightness, contrast, gamma) happens before encoding: K cached variants per labelled image
//! ([`crate::augment`], [`SegConfig::intensity_variants`]), one drawn per sample and epoch.
//!
//! Deterministic for a seed: initialisation, batch order and augmentation come from one `Rng`, and every
//! kernel reduces in a fixed order.

use crate::cpu::{AdamwStep, DiceMode};
use crate::gpu::ops::ConvGeom;
use crate::gpu::GpuContext;
use crate::model::exec::{Exec, Tensor};
use crate::rng::Rng;
use crate::train::cls::TrainLog;
use crate::train::pseudo::{self, PseudoLabels, SamPseudo};
use crate::{Error, Result};

const LN_EPS: f32 = 1e-5;

/// Channels and spatial size of a feature grid, stored channels-last [h, w, c].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GridShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl GridShape {
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mean over positions of each channel of a grid [h, w, c].
    pub fn spatial_mean(&self, grid: &[f32]) -> Vec<f32> {
        let p = (self.h * self.w).max(1);
        (0..self.c).map(|c| ((0..p).map(|k| grid[k * self.c + c] as f64).sum::<f64>() / p as f64) as f32).collect()
    }

    /// The upsampling factor r that brings the grid to at least 256 pixels a side.
    pub fn default_scale(&self) -> usize {
        256usize.div_ceil(self.h.max(self.w).max(1))
    }
}

/// [h, w, c] → [c, h, w] (the inverse of `chw_to_hwc`).
pub fn hwc_to_chw(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut y = vec![0f32; c * h * w];
    for p in 0..h * w {
        for ch in 0..c {
            y[ch * h * w + p] = x[p * c + ch];
        }
    }
    y
}

/// [c, h, w] → [h, w, c].
pub fn chw_to_hwc(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut y = vec![0f32; c * h * w];
    for ch in 0..c {
        for p in 0..h * w {
            y[p * c + ch] = x[ch * h * w + p];
        }
    }
    y
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    AdamW,
    Sgd,
}

/// Training settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SegConfig {
    pub hidden: usize,
    /// Output upsampling factor r (0: `GridShape::default_scale`).
    pub scale: usize,
    pub epochs: usize,
    pub batch: usize,
    pub optimizer: Optimizer,
    pub lr: f32,
    pub weight_decay: f32,
    pub dice: DiceMode,
    pub augment: bool,
    /// Intensity variants per labelled image ([`crate::augment`]): the grids come to [`train_with_val`] as
    /// `variants`, and every epoch each sample uses its original grid or one of them, drawn uniformly. 0 = off
    /// (recorded here so head files and results say how a head was trained).
    pub intensity_variants: usize,
    /// Semi-supervised training on unlabelled grids (off when `None`).
    pub mean_teacher: Option<MeanTeacher>,
    /// Generalist pseudo-labels with the selective filter (off when `None`; needs `train`'s `sam`).
    pub pseudo: Option<PseudoLabels>,
    pub seed: u64,
}

/// FM-ABS's mean teacher (METHODS §6.3), on cached feature grids:
/// - teacher = EMA of the student, α_t = min(1 − 1/(t + 1), `ema`) (0.99);
/// - consistency = mean over pixels and classes of (softmax(student(u)) − softmax(teacher(u + ε)))², on a batch
///   of unlabelled grids per step, weighted by λ_c(t) = `weight`·exp(−5(1 − t/T)²) for t < T (sigmoid ramp-up,
///   0.1 in FM-ABS);
/// - ε = clamp(N(0, (0.1·σ)²), ±0.2·σ), σ the grid's standard deviation: FM-ABS's image noise (0.1, ±0.2 on
///   normalised intensities) moved to the feature grid, since the encoder is frozen and its features cached.
///
/// Deviations: FM-ABS ramps over t//150 with length 40 in a 10,000-iteration run, i.e. over its first 60 %;
/// here T = 60 % of this run's steps, so short runs ramp up too. Its second perturbation (random gamma on the
/// image) needs a new encoder pass and is not applied.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MeanTeacher {
    pub ema: f32,
    pub weight: f32,
    pub noise: f32,
}

impl Default for MeanTeacher {
    fn default() -> Self {
        MeanTeacher { ema: 0.99, weight: 0.1, noise: 0.1 }
    }
}

impl Default for SegConfig {
    fn default() -> Self {
        SegConfig {
            hidden: 32,
            scale: 0,
            epochs: 50,
            batch: 8,
            optimizer: Optimizer::AdamW,
            lr: 1e-3,
            weight_decay: 1e-4,
            dice: DiceMode::Soft,
            augment: false,
            intensity_variants: 0,
            mean_teacher: None,
            pseudo: None,
            seed: 0,
        }
    }
}

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

    fn check_grid(&self, what: &str, x: &[f32]) -> Result<()> {
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

/// A full-resolution mask [h·r, w·r] (non-zero = foreground) as one label per loss row (grid pixel, sub-pixel):
/// row (gy·w + gx)·r² + i·r + j holds pixel (gy·r + i, gx·r + j).
pub fn targets_from_mask(mask: &[u8], h: usize, w: usize, r: usize) -> Vec<u32> {
    let ow = w * r;
    let mut t = vec![0u32; h * w * r * r];
    for gy in 0..h {
        for gx in 0..w {
            for i in 0..r {
                for j in 0..r {
                    t[(gy * w + gx) * r * r + i * r + j] = (mask[(gy * r + i) * ow + gx * r + j] != 0) as u32;
                }
            }
        }
    }
    t
}

/// The inverse reordering: per-row values → an image [h·r, w·r].
pub fn image_from_rows(rows: &[f32], h: usize, w: usize, r: usize) -> Vec<f32> {
    let ow = w * r;
    let mut img = vec![0f32; h * w * r * r];
    for gy in 0..h {
        for gx in 0..w {
            for i in 0..r {
                for j in 0..r {
                    img[(gy * r + i) * ow + gx * r + j] = rows[(gy * w + gx) * r * r + i * r + j];
                }
            }
        }
    }
    img
}

/// Nearest-neighbour resize of a mask (pixel centres: source = ⌊(y + ½)·h / oh⌋).
pub fn resize_nearest_u8(src: &[u8], h: usize, w: usize, oh: usize, ow: usize) -> Vec<u8> {
    let mut out = vec![0u8; oh * ow];
    for y in 0..oh {
        let sy = (((y as f64 + 0.5) * h as f64 / oh as f64) as usize).min(h - 1);
        for x in 0..ow {
            let sx = (((x as f64 + 0.5) * w as f64 / ow as f64) as usize).min(w - 1);
            out[y * ow + x] = src[sy * w + sx];
        }
    }
    out
}

/// One of the 8 flips / 90° rotations of an image [h, w, c]: bit 2 transposes, bit 0 flips columns, bit 1 rows
/// (of the source). Returns the image and its (h, w).
pub fn dihedral<T: Copy>(src: &[T], h: usize, w: usize, c: usize, t: u32) -> (Vec<T>, usize, usize) {
    let (oh, ow) = if t & 4 != 0 { (w, h) } else { (h, w) };
    let mut out = Vec::with_capacity(src.len());
    for y in 0..oh {
        for x in 0..ow {
            let (mut a, mut b) = if t & 4 != 0 { (x, y) } else { (y, x) };
            if t & 1 != 0 {
                b = w - 1 - b;
            }
            if t & 2 != 0 {
                a = h - 1 - a;
            }
            out.extend_from_slice(&src[(a * w + b) * c..(a * w + b + 1) * c]);
        }
    }
    (out, oh, ow)
}

/// The head's parameters on an `Exec`.
struct Params {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    ones: Tensor,
    zeros: Tensor,
}

impl Params {
    fn upload(ex: &Exec<'_>, h: &SegHead) -> Result<Params> {
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
struct Forward {
    z1: Tensor,
    n: Tensor,
    a: Tensor,
    logits: Tensor,
}

fn conv_geom(h: usize, w: usize, c: usize) -> ConvGeom {
    ConvGeom { h, w, c, k: 3, stride: 1, pad: 1 }
}

/// Forward over a batch of grids [h_b, w_b, c] (all with h_b·w_b = h·w; a transposed grid has h and w swapped).
async fn forward(
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
        let cols = ex.im2col(x, conv_geom(h, w, c)).await?;
        z1s.push(ex.matmul(&cols, &prm.w1, Some(&prm.b1), p, hid, 9 * c, true).await?);
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
struct Grads {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

/// Loss (0.5·CE + 0.5·Dice over the batch) and gradients for a batch of grids with targets in loss-row order.
async fn loss_and_grads(
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
async fn backward(
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
    // 3×3 conv: dW1 = Σ_b dZ1_bᵀ · cols_b, with the columns recomputed per image.
    let mut w1: Option<Tensor> = None;
    for (b, (x, &(h, w))) in xs.iter().zip(geom).enumerate() {
        let cols = ex.im2col(x, conv_geom(h, w, c)).await?;
        let dzb = ex.slice(&dz1, b * p * hid, p * hid)?;
        let dzbt = ex.transpose(&dzb, p, hid).await?;
        let g = ex.matmul(&dzbt, &cols, None, hid, 9 * c, p, false).await?;
        match &mut w1 {
            None => w1 = Some(g),
            Some(acc) => ex.add_into(&g, acc, hid * 9 * c).await?,
        }
        ex.flush();
    }
    let w1 = w1.ok_or_else(|| Error::Invalid("segmentation loss: an empty batch".into()))?;
    Ok(Grads { w1, b1, w2, b2 })
}

/// FM-ABS's noise on a grid: clamp(N(0, (s·σ)²), ±2·s·σ), σ the grid's standard deviation.
fn noisy(g: &[f32], s: f32, rng: &mut Rng) -> Vec<f32> {
    let n = g.len().max(1) as f64;
    let mean = g.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (g.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt() as f32;
    let (sig, lim) = (s * sd, 2.0 * s * sd);
    g.iter().map(|&v| v + (rng.normal() * sig).clamp(-lim, lim)).collect()
}

/// The consistency weight λ_c(t) = w·exp(−5(1 − t/T)²) (t < T), w after.
fn rampup(weight: f32, t: usize, ramp: usize) -> f32 {
    if ramp == 0 || t >= ramp {
        return weight;
    }
    let x = 1.0 - t as f32 / ramp as f32;
    weight * (-5.0 * x * x).exp()
}

/// Upload a batch of (grid, mask) pairs, each turned by one random flip/rotation when `augment`: the grids,
/// their (h, w) and the targets in loss-row order.
#[allow(clippy::type_complexity)]
fn upload_batch<'m>(
    ex: &Exec<'_>,
    head: &SegHead,
    items: impl Iterator<Item = (&'m [f32], &'m [u8])>,
    augment: bool,
    rng: &mut Rng,
) -> Result<(Vec<Tensor>, Vec<(usize, usize)>, Vec<u32>)> {
    let (grid, r) = (head.grid, head.r);
    let (oh, ow) = head.out_hw();
    let (mut xs, mut geom, mut targets) = (Vec::new(), Vec::new(), Vec::new());
    for (g, m) in items {
        let t = if augment { rng.below(8) } else { 0 };
        let (g, gh, gw) = dihedral(g, grid.h, grid.w, grid.c, t);
        let (m, _, _) = dihedral(m, oh, ow, 1, t);
        xs.push(ex.upload("grid", &g)?);
        geom.push((gh, gw));
        targets.extend(targets_from_mask(&m, gh, gw, r));
    }
    Ok((xs, geom, targets))
}

/// `acc += g`, parameter by parameter.
async fn add_grads(ex: &mut Exec<'_>, g: &Grads, acc: &mut Grads, sizes: [usize; 4]) -> Result<()> {
    ex.add_into(&g.w1, &mut acc.w1, sizes[0]).await?;
    ex.add_into(&g.b1, &mut acc.b1, sizes[1]).await?;
    ex.add_into(&g.w2, &mut acc.w2, sizes[2]).await?;
    ex.add_into(&g.b2, &mut acc.b2, sizes[3]).await
}

/// Read parameters back into a copy of `head`.
async fn read_params(ex: &mut Exec<'_>, head: &SegHead, prm: &Params, sizes: [usize; 4]) -> Result<SegHead> {
    Ok(SegHead {
        w1: ex.read(&prm.w1, sizes[0]).await?,
        b1: ex.read(&prm.b1, sizes[1]).await?,
        w2: ex.read(&prm.w2, sizes[2]).await?,
        b2: ex.read(&prm.b2, sizes[3]).await?,
        ..head.clone()
    })
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

/// Train a head on grids [h, w, c] (channels-last) with masks at the output resolution [h·r, w·r]
/// (r = `cfg.scale`, or `GridShape::default_scale`; resize masks with `resize_nearest_u8` first).
/// `unlabeled` grids feed the mean teacher and the pseudo-labels; `sam` is the generalist for `cfg.pseudo`.
#[allow(clippy::too_many_arguments)] // the labelled and unlabelled data, the generalist, settings and progress
pub async fn train(
    ctx: Option<&GpuContext>,
    grid: GridShape,
    grids: &[&[f32]],
    masks: &[&[u8]],
    unlabeled: &[&[f32]],
    sam: Option<&SamPseudo<'_>>,
    cfg: &SegConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SegHead, TrainLog)> {
    train_with_val(ctx, grid, grids, &[], masks, unlabeled, sam, cfg, None, progress).await
}

/// A validation split for model selection (MedCAL validates every 5 epochs and keeps the checkpoint of best
/// validation Dice): grids, masks at the head's output size, and how often (every `every` epochs and after the
/// last; the earliest of equally good checkpoints is kept).
#[derive(Clone, Copy, Debug)]
pub struct SegValidation<'a> {
    pub grids: &'a [Vec<f32>],
    pub masks: &'a [Vec<u8>],
    pub every: usize,
}

/// Mean Dice of the head's thresholded (p > 0.5) foreground against the validation masks, at the head's output.
async fn val_dice(ctx: Option<&GpuContext>, head: &SegHead, v: &SegValidation<'_>) -> Result<f64> {
    let mut sum = 0.0;
    head.predict_each(ctx, v.grids, &mut |i, p| {
        let pred: Vec<u8> = p.iter().map(|&x| (x > 0.5) as u8).collect();
        sum += crate::metrics::dice_iou(&pred, &v.masks[i]).0;
        Ok(())
    })
    .await?;
    Ok(sum / v.grids.len() as f64)
}

/// [`train`] with intensity variants and model selection: `variants[i]` are the grids of sample i's intensity
/// variants (empty, or one list per sample; see [`SegConfig::intensity_variants`]); with a validation split
/// (`val`) the returned head is the checkpoint of best validation Dice, and the log says which epoch it was and
/// its Dice.
#[allow(clippy::too_many_arguments)] // train's arguments, the variants and the validation split
pub async fn train_with_val(
    ctx: Option<&GpuContext>,
    grid: GridShape,
    grids: &[&[f32]],
    variants: &[Vec<&[f32]>],
    masks: &[&[u8]],
    unlabeled: &[&[f32]],
    sam: Option<&SamPseudo<'_>>,
    cfg: &SegConfig,
    val: Option<SegValidation<'_>>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SegHead, TrainLog)> {
    let n = grids.len();
    if n == 0 || masks.len() != n {
        return Err(Error::Invalid(format!("train: {n} grids and {} masks (need ≥ 1, as many of each)", masks.len())));
    }
    if cfg.batch == 0 || cfg.epochs == 0 || cfg.hidden == 0 {
        return Err(Error::Invalid(format!(
            "train: batch {}, epochs {}, hidden {} (all ≥ 1)",
            cfg.batch, cfg.epochs, cfg.hidden
        )));
    }
    let r = if cfg.scale == 0 { grid.default_scale() } else { cfg.scale };
    let mut rng = Rng::new(cfg.seed);
    let head = SegHead::init(grid, cfg.hidden, r, &mut rng)?;
    let (oh, ow) = head.out_hw();
    for (i, (g, m)) in grids.iter().zip(masks).enumerate() {
        head.check_grid(&format!("sample {i}"), g)?;
        if m.len() != oh * ow {
            return Err(Error::shape("train", format!("mask {i}: {} pixels, the head outputs {oh}×{ow}", m.len())));
        }
    }
    for (i, g) in unlabeled.iter().enumerate() {
        head.check_grid(&format!("unlabelled sample {i}"), g)?;
    }
    if !variants.is_empty() && variants.len() != n {
        return Err(Error::Invalid(format!("train: intensity variants for {} of {n} samples", variants.len())));
    }
    for (i, vs) in variants.iter().enumerate() {
        for (k, g) in vs.iter().enumerate() {
            head.check_grid(&format!("sample {i}, intensity variant {}", k + 1), g)?;
        }
    }
    if let Some(v) = &val {
        if v.every == 0 || v.grids.is_empty() || v.grids.len() != v.masks.len() {
            return Err(Error::Invalid(format!(
                "train: validation every {} epochs on {} grids and {} masks (need every ≥ 1 and as many of each, ≥ 1)",
                v.every,
                v.grids.len(),
                v.masks.len()
            )));
        }
        for (i, (g, m)) in v.grids.iter().zip(v.masks).enumerate() {
            head.check_grid(&format!("validation sample {i}"), g)?;
            if m.len() != oh * ow {
                return Err(Error::shape("train", format!("validation mask {i}: {} pixels, need {oh}×{ow}", m.len())));
            }
        }
    }
    let mut best: Option<(f64, usize, SegHead)> = None;
    if cfg.mean_teacher.is_some() && unlabeled.is_empty() {
        return Err(Error::Invalid("train: the mean teacher needs unlabelled grids".into()));
    }
    let pseudo_on = match (cfg.pseudo, sam) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Error::Invalid("train: pseudo-labels need the generalist (LiteMedSAM's decoder)".into()))
        }
        (Some(_), Some(_)) if unlabeled.is_empty() => {
            return Err(Error::Invalid("train: pseudo-labels need unlabelled grids".into()))
        }
        (Some(p), Some(s)) => {
            p.check()?;
            Some((p, s))
        }
    };
    let t0 = crate::Instant::now();
    let mut ex = Exec::on(ctx);
    let mut prm = Params::upload(&ex, &head)?;
    // The teacher starts as a copy of the student.
    let mut teacher = match cfg.mean_teacher {
        Some(_) => Some(Params::upload(&ex, &head)?),
        None => None,
    };
    let sizes = [head.w1.len(), head.b1.len(), head.w2.len(), head.b2.len()];
    // Pseudo-label state: the distances are fixed (the labelled set does not change), the labels are remade.
    let distance = match pseudo_on {
        Some(_) => pseudo::labeled_distance(grid, grids, unlabeled),
        None => Vec::new(),
    };
    let mut pseudo_set: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut m1 = Vec::new();
    let mut m2 = Vec::new();
    for &s in &sizes {
        m1.push(ex.upload("optimizer state", &vec![0f32; s])?);
        m2.push(ex.upload("optimizer state", &vec![0f32; s])?);
    }
    let steps_per_epoch = n.div_ceil(cfg.batch);
    let total = steps_per_epoch * cfg.epochs;
    let refresh = pseudo_on.map(|(p, _)| pseudo::refresh_steps(total, p.refreshes)).unwrap_or_default();
    let mut order: Vec<usize> = (0..n).collect();
    let mut log = TrainLog::default();
    for _ in 0..cfg.epochs {
        rng.shuffle(&mut order);
        let mut sum = 0f64;
        for chunk in order.chunks(cfg.batch) {
            if let Some((pc, s)) = pseudo_on.filter(|_| refresh.contains(&log.steps)) {
                // Pseudo-labels from the teacher when there is one (FM-ABS), else the student.
                let now = read_params(&mut ex, &head, teacher.as_ref().unwrap_or(&prm), sizes).await?;
                let (labels, mut round) = pseudo::make(ctx, &now, unlabeled, &distance, s, &pc, &mut rng).await?;
                round.step = log.steps;
                pseudo_set = labels.into_iter().filter(|p| p.kept).map(|p| (p.index, p.mask)).collect();
                log.pseudo.push(round);
            }
            // The original grid or one of its intensity variants (no draw when a sample has none).
            let items: Vec<(&[f32], &[u8])> = chunk
                .iter()
                .map(|&i| match variants.get(i).filter(|v| !v.is_empty()) {
                    Some(vs) => match rng.below(vs.len() as u32 + 1) as usize {
                        0 => (grids[i], masks[i]),
                        k => (vs[k - 1], masks[i]),
                    },
                    None => (grids[i], masks[i]),
                })
                .collect();
            let (xs, geom, targets) = upload_batch(&ex, &head, items.into_iter(), cfg.augment, &mut rng)?;
            let (loss, mut g) = loss_and_grads(&mut ex, &head, &prm, &xs, &geom, &targets, cfg.dice).await?;
            if let (Some((pc, _)), false) = (pseudo_on, pseudo_set.is_empty()) {
                // CE against the generalist's pseudo-labels on a batch of kept images, weighted 0.5·w_sam(t).
                let pick: Vec<usize> =
                    (0..cfg.batch.min(pseudo_set.len())).map(|_| rng.below(pseudo_set.len() as u32) as usize).collect();
                let items = pick.iter().map(|&k| (unlabeled[pseudo_set[k].0], pseudo_set[k].1.as_slice()));
                let (px, pg, pt) = upload_batch(&ex, &head, items, cfg.augment, &mut rng)?;
                let rows = pt.len();
                let f = forward(&mut ex, &head, &prm, &px, &pg).await?;
                let w = pc.weight * pseudo::w_sam(log.steps, total);
                let (_, dz) = ex.softmax_xent(&f.logits, &pt, rows, 2, 0.0, w / rows as f32).await?;
                let gp = backward(&mut ex, &head, &prm, &px, &pg, &f, &dz).await?;
                add_grads(&mut ex, &gp, &mut g, sizes).await?;
            }
            if let (Some(mt), Some(tp)) = (cfg.mean_teacher, &teacher) {
                // A batch of unlabelled grids: the student on the clean grid, the teacher on a noisy copy.
                let mut us = Vec::with_capacity(cfg.batch);
                let mut un = Vec::with_capacity(cfg.batch);
                for _ in 0..cfg.batch {
                    let u = unlabeled[rng.below(unlabeled.len() as u32) as usize];
                    us.push(ex.upload("unlabelled grid", u)?);
                    un.push(ex.upload("unlabelled grid", &noisy(u, mt.noise, &mut rng))?);
                }
                let ug = vec![(grid.h, grid.w); us.len()];
                let fs = forward(&mut ex, &head, &prm, &us, &ug).await?;
                let ft = forward(&mut ex, &head, tp, &un, &ug).await?;
                let rows = us.len() * grid.h * grid.w * r * r;
                let lambda = rampup(mt.weight, log.steps, total * 3 / 5);
                let (_, dz) = ex.softmax_mse(&fs.logits, &ft.logits, rows, 2, lambda / (2 * rows) as f32).await?;
                let gu = backward(&mut ex, &head, &prm, &us, &ug, &fs, &dz).await?;
                add_grads(&mut ex, &gu, &mut g, sizes).await?;
            }
            log.steps += 1;
            let grads = [&g.w1, &g.b1, &g.w2, &g.b2];
            let params = [&mut prm.w1, &mut prm.b1, &mut prm.w2, &mut prm.b2];
            for (k, (p, gk)) in params.into_iter().zip(grads).enumerate() {
                match cfg.optimizer {
                    Optimizer::AdamW => {
                        let step = AdamwStep::torch(cfg.lr, cfg.weight_decay, log.steps);
                        ex.adamw(p, gk, &mut m1[k], &mut m2[k], sizes[k], step).await?
                    }
                    Optimizer::Sgd => {
                        // MedCAL's poly schedule, updated every iteration.
                        let lr = cfg.lr * (1.0 - (log.steps - 1) as f32 / total as f32).powf(0.9);
                        ex.sgd_momentum(p, gk, &mut m1[k], sizes[k], lr, 0.9, cfg.weight_decay).await?
                    }
                }
            }
            if let (Some(mt), Some(tp)) = (cfg.mean_teacher, &mut teacher) {
                let alpha = (1.0 - 1.0 / (log.steps as f32 + 1.0)).min(mt.ema);
                let pairs =
                    [(&mut tp.w1, &prm.w1), (&mut tp.b1, &prm.b1), (&mut tp.w2, &prm.w2), (&mut tp.b2, &prm.b2)];
                for (k, (t, s)) in pairs.into_iter().enumerate() {
                    ex.ema_update(t, s, sizes[k], alpha).await?;
                }
            }
            if !loss.is_finite() {
                return Err(Error::Invalid(format!("train: the loss became {loss} at step {}", log.steps)));
            }
            sum += loss as f64;
            progress(log.steps, total);
        }
        log.epoch_loss.push((sum / steps_per_epoch as f64) as f32);
        if let Some(v) = &val {
            let epoch = log.epoch_loss.len();
            if epoch % v.every == 0 || epoch == cfg.epochs {
                let now = read_params(&mut ex, &head, &prm, sizes).await?;
                let d = val_dice(ctx, &now, v).await?;
                if best.as_ref().is_none_or(|(b, _, _)| d > *b) {
                    best = Some((d, epoch, now));
                }
            }
        }
    }
    let head = match best {
        Some((d, epoch, h)) => {
            log.best_epoch = Some(epoch);
            log.val_dice = Some(d);
            h
        }
        None => read_params(&mut ex, &head, &prm, sizes).await?,
    };
    log.seconds = t0.elapsed().as_secs_f64();
    Ok((head, log))
}
