//! Classification heads on frozen features, trained in the WGSL kernels (or their CPU twins):
//! - `linear`: a linear probe on standardised features (mean/std of the training set, stored with the head);
//! - `dropquery`: DropQuery's classifier — input dropout (p = 0.75) → BatchNorm without affine (batch
//!   statistics in training, running statistics with momentum 0.1 at inference) → linear.
//!
//! Loss: cross-entropy with label smoothing (fused `softmax_xent`, forward and backward in one kernel);
//! optimiser AdamW. Gradients of the linear layer: dW = dYᵀ·X (`transpose` + `matmul`), db = Σ rows of dYᵀ.
//! Deterministic for a seed: initialisation, batch order and dropout masks come from one `Rng`.

pub use super::TrainLog;
use crate::cpu::AdamwStep;
use crate::gpu::GpuContext;
use crate::model::exec::{Exec, Tensor};
use crate::rng::Rng;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    Linear,
    DropQuery,
}

impl HeadKind {
    pub fn parse(s: &str) -> Result<HeadKind> {
        match s {
            "linear" => Ok(HeadKind::Linear),
            "dropquery" => Ok(HeadKind::DropQuery),
            other => Err(Error::setting("head", other, "use linear or dropquery")),
        }
    }
}

/// Training settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClsConfig {
    pub kind: HeadKind,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub label_smoothing: f32,
    pub dropout: f32,
    pub seed: u64,
}

impl Default for ClsConfig {
    fn default() -> Self {
        ClsConfig {
            kind: HeadKind::Linear,
            epochs: 100,
            batch: 32,
            lr: 1e-3,
            weight_decay: 1e-4,
            label_smoothing: 0.1,
            dropout: 0.75,
            seed: 0,
        }
    }
}

const BN_EPS: f32 = 1e-5;

/// A trained head: logits = W·norm(x) + b.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ClsHead {
    pub kind: HeadKind,
    pub classes: usize,
    pub dim: usize,
    /// [classes, dim]
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    /// Input normalisation: x̂ = (x − mean) / sqrt(var + eps) (training-set statistics for `linear`, the
    /// BatchNorm running statistics for `dropquery`).
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// A validation split for model selection (MedCAL: "validate every 5 epochs on valid.csv, keep the best
/// validation accuracy"): features [n, dim], labels, and how often to evaluate (every `every` epochs and after
/// the last; the earliest of equally accurate checkpoints is kept).
#[derive(Clone, Copy, Debug)]
pub struct Validation<'a> {
    pub x: &'a [f32],
    pub labels: &'a [usize],
    pub every: usize,
}

fn normalise(x: &[f32], mean: &[f32], var: &[f32]) -> Vec<f32> {
    let d = mean.len();
    x.iter().enumerate().map(|(i, &v)| (v - mean[i % d]) / (var[i % d] + BN_EPS).sqrt()).collect()
}

/// Loss (batch mean) and gradients (dW [C, D], db [C]) of the linear layer for an input batch [rows, D] that
/// is already normalised. Used by training and by the gradient check.
pub async fn linear_loss_and_grads(
    ex: &mut Exec<'_>,
    w: &Tensor,
    b: &Tensor,
    x: &Tensor,
    labels: &[u32],
    (rows, dim, classes): (usize, usize, usize),
    smoothing: f32,
) -> Result<(f32, Tensor, Tensor)> {
    let logits = ex.matmul(x, w, Some(b), rows, classes, dim, true).await?;
    let (loss, dlogits) = ex.softmax_xent(&logits, labels, rows, classes, smoothing, 1.0 / rows as f32).await?;
    let dt = ex.transpose(&dlogits, rows, classes).await?;
    let dw = ex.matmul(&dt, x, None, classes, dim, rows, false).await?;
    let db = ex.row_sums(&dt, classes, rows).await?;
    let l = ex.read(&loss, rows).await?;
    Ok((l.iter().map(|&v| v as f64).sum::<f64>() as f32 / rows as f32, dw, db))
}

/// Train a head on features `x` [n, dim] with labels in 0..classes; with `val`, return the checkpoint of best
/// validation accuracy instead of the last.
pub async fn train(
    ctx: Option<&GpuContext>,
    x: &[f32],
    labels: &[usize],
    classes: usize,
    cfg: &ClsConfig,
    val: Option<Validation<'_>>,
) -> Result<(ClsHead, TrainLog)> {
    let n = labels.len();
    if n == 0 || classes < 2 {
        return Err(Error::Invalid(format!("train: {n} labelled samples, {classes} classes (need ≥ 1 and ≥ 2)")));
    }
    if !x.len().is_multiple_of(n) {
        return Err(Error::shape("train", format!("{} feature values for {n} samples", x.len())));
    }
    let dim = x.len() / n;
    if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
        return Err(Error::Invalid(format!("train: label {bad} is outside 0..{classes}")));
    }
    if !(0.0..1.0).contains(&cfg.dropout) || cfg.batch == 0 || cfg.epochs == 0 {
        return Err(Error::Invalid(format!(
            "train: dropout {} (0 ≤ p < 1), batch {}, epochs {} (≥ 1)",
            cfg.dropout, cfg.batch, cfg.epochs
        )));
    }
    if let Some(v) = &val {
        if v.every == 0 || v.labels.is_empty() || v.x.len() != v.labels.len() * dim {
            return Err(Error::Invalid(format!(
                "train: validation of {} labels with {} feature values (dim {dim}), every {} epochs (≥ 1)",
                v.labels.len(),
                v.x.len(),
                v.every
            )));
        }
        if let Some(&bad) = v.labels.iter().find(|&&l| l >= classes) {
            return Err(Error::Invalid(format!("train: validation label {bad} is outside 0..{classes}")));
        }
    }
    let t0 = crate::Instant::now();
    let mut rng = Rng::new(cfg.seed);
    let bound = 1.0 / (dim as f32).sqrt();
    let w0 = rng.uniform_vec(classes * dim, -bound, bound);
    let b0 = rng.uniform_vec(classes, -bound, bound);
    // Linear probe: standardise with training-set statistics. DropQuery: BatchNorm running statistics.
    let (mut mean, mut var) = (vec![0f32; dim], vec![1f32; dim]);
    if cfg.kind == HeadKind::Linear {
        for j in 0..dim {
            let m = (0..n).map(|i| x[i * dim + j] as f64).sum::<f64>() / n as f64;
            let v = (0..n).map(|i| (x[i * dim + j] as f64 - m).powi(2)).sum::<f64>() / n as f64;
            mean[j] = m as f32;
            var[j] = v as f32;
        }
    }
    let mut ex = Exec::on(ctx);
    let mut w = ex.upload("head weight", &w0)?;
    let mut b = ex.upload("head bias", &b0)?;
    let (mut mw, mut vw) = (ex.upload("adam m", &vec![0f32; w0.len()])?, ex.upload("adam v", &vec![0f32; w0.len()])?);
    let (mut mb, mut vb) = (ex.upload("adam m", &vec![0f32; classes])?, ex.upload("adam v", &vec![0f32; classes])?);
    let mut order: Vec<usize> = (0..n).collect();
    let mut log = TrainLog::default();
    let mut best: Option<(usize, f64, ClsHead)> = None;
    for epoch in 1..=cfg.epochs {
        rng.shuffle(&mut order);
        let mut sum = 0f64;
        let mut batches = 0usize;
        for chunk in order.chunks(cfg.batch) {
            let rows = chunk.len();
            let mut xb: Vec<f32> = chunk.iter().flat_map(|&i| x[i * dim..(i + 1) * dim].iter().copied()).collect();
            let yb: Vec<u32> = chunk.iter().map(|&i| labels[i] as u32).collect();
            let xt = match cfg.kind {
                HeadKind::Linear => ex.upload("batch", &normalise(&xb, &mean, &var))?,
                HeadKind::DropQuery => {
                    let keep = 1.0 - cfg.dropout;
                    for v in xb.iter_mut() {
                        *v = if rng.next_f32() < cfg.dropout { 0.0 } else { *v / keep };
                    }
                    // BatchNorm (training): batch statistics, biased variance for the output, unbiased for
                    // the running estimate (as torch.nn.BatchNorm1d, momentum 0.1). The normalisation runs as
                    // a LayerNorm over the rows of the transposed batch.
                    for j in 0..dim {
                        let m = (0..rows).map(|r| xb[r * dim + j] as f64).sum::<f64>() / rows as f64;
                        let v = (0..rows).map(|r| (xb[r * dim + j] as f64 - m).powi(2)).sum::<f64>();
                        let unbiased = if rows > 1 { v / (rows - 1) as f64 } else { v };
                        mean[j] = 0.9 * mean[j] + 0.1 * m as f32;
                        var[j] = 0.9 * var[j] + 0.1 * unbiased as f32;
                    }
                    let t = ex.upload("batch", &xb)?;
                    let tt = ex.transpose(&t, rows, dim).await?;
                    let ones = ex.upload("bn", &vec![1f32; rows])?;
                    let zeros = ex.upload("bn", &vec![0f32; rows])?;
                    let normed = ex.layernorm(&tt, &ones, &zeros, dim, rows, BN_EPS).await?;
                    ex.transpose(&normed, dim, rows).await?
                }
            };
            let (loss, dw, db) =
                linear_loss_and_grads(&mut ex, &w, &b, &xt, &yb, (rows, dim, classes), cfg.label_smoothing).await?;
            log.steps += 1;
            let step = AdamwStep::torch(cfg.lr, cfg.weight_decay, log.steps);
            ex.adamw(&mut w, &dw, &mut mw, &mut vw, classes * dim, step).await?;
            ex.adamw(&mut b, &db, &mut mb, &mut vb, classes, step).await?;
            sum += loss as f64;
            batches += 1;
        }
        log.epoch_loss.push((sum / batches as f64) as f32);
        crate::train::check_loss(epoch, sum)?;
        if let Some(v) = &val {
            if epoch % v.every == 0 || epoch == cfg.epochs {
                let weight = ex.read(&w, classes * dim).await?;
                let bias = ex.read(&b, classes).await?;
                let head = ClsHead { kind: cfg.kind, classes, dim, weight, bias, mean: mean.clone(), var: var.clone() };
                let pred = ClsHead::argmax(&head.predict(ctx, v.x).await?, classes);
                let acc = crate::metrics::accuracy(&pred, v.labels);
                if best.as_ref().is_none_or(|b| acc > b.1) {
                    best = Some((epoch, acc, head));
                }
            }
        }
    }
    let head = match best {
        Some((epoch, acc, head)) => {
            log.best_epoch = Some(epoch);
            log.val_accuracy = Some(acc);
            head
        }
        None => {
            let weight = ex.read(&w, classes * dim).await?;
            let bias = ex.read(&b, classes).await?;
            ClsHead { kind: cfg.kind, classes, dim, weight, bias, mean, var }
        }
    };
    log.seconds = t0.elapsed().as_secs_f64();
    Ok((head, log))
}

impl ClsHead {
    /// Class probabilities [n, classes] for features [n, dim] (inference: no dropout, running statistics).
    pub async fn predict(&self, ctx: Option<&GpuContext>, x: &[f32]) -> Result<Vec<f32>> {
        if !x.len().is_multiple_of(self.dim) {
            return Err(Error::shape("predict", format!("{} values are not rows of {}", x.len(), self.dim)));
        }
        let n = x.len() / self.dim;
        let mut ex = Exec::on(ctx);
        let xt = ex.upload("features", &normalise(x, &self.mean, &self.var))?;
        let w = ex.upload("head weight", &self.weight)?;
        let b = ex.upload("head bias", &self.bias)?;
        let logits = ex.matmul(&xt, &w, Some(&b), n, self.classes, self.dim, true).await?;
        let z = ex.read(&logits, n * self.classes).await?;
        Ok(crate::cpu::softmax_rows(&z, n, self.classes))
    }

    /// Argmax class per row of `probs`.
    pub fn argmax(probs: &[f32], classes: usize) -> Vec<usize> {
        probs
            .chunks(classes)
            .map(|r| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |a, (i, &v)| if v > a.1 { (i, v) } else { a }).0)
            .collect()
    }
}

impl ClsHead {
    /// Probabilities with input dropout `p` (MC dropout: each feature zeroed with probability p, the rest scaled by
    /// 1/(1 − p), before the head's normalisation), one pass with masks from `rng`.
    pub async fn predict_dropout(
        &self,
        ctx: Option<&GpuContext>,
        x: &[f32],
        p: f32,
        rng: &mut Rng,
    ) -> Result<Vec<f32>> {
        let keep = 1.0 - p;
        let xd: Vec<f32> = x.iter().map(|&v| if rng.next_f32() < p { 0.0 } else { v / keep }).collect();
        self.predict(ctx, &xd).await
    }
}
