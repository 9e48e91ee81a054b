//! CPU twin of `shaders/dice_loss.wgsl`: the 2-class soft Dice losses over a whole batch of pixels (logits
//! [rows, 2], labels in {0, 1}, a label ≥ 2 ignored) and their gradient w.r.t. the logits, in f64.
//! - `DiceMode::Soft` (MedCAL): L = mean_c 1 − (2·Σ p_c·y_c + ε) / (Σ p_c² + Σ y_c² + ε);
//! - `DiceMode::NoiseRobust { gamma }` (FM-ABS, γ = 1.5): L = mean_c Σ |p_c − y_c|^γ / (Σ (p_c + y_c) + ε);
//!
//! ε = 1e-5. Returns (loss, grad [rows, 2] · scale).

pub const DICE_EPS: f64 = 1e-5;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DiceMode {
    Soft,
    NoiseRobust { gamma: f32 },
}

impl DiceMode {
    /// The kernel's (mode, gamma) parameters.
    pub fn params(self) -> (u32, f32) {
        match self {
            DiceMode::Soft => (0, 0.0),
            DiceMode::NoiseRobust { gamma } => (1, gamma),
        }
    }
}

fn p1_of(z: &[f32], r: usize) -> f64 {
    let t = z[2 * r + 1] as f64 - z[2 * r] as f64;
    1.0 / (1.0 + (-t).exp())
}

pub fn dice_loss(logits: &[f32], labels: &[u32], rows: usize, mode: DiceMode, scale: f32) -> (f32, Vec<f32>) {
    // s[0..2]: Σ p·y (soft) or Σ |p − y|^γ (robust); s[2..4]: Σ p² or Σ (p + y); s[4..6]: Σ y (soft).
    let mut s = [0f64; 6];
    for r in 0..rows {
        if labels[r] >= 2 {
            continue;
        }
        let p = [1.0 - p1_of(logits, r), p1_of(logits, r)];
        let y1 = (labels[r] == 1) as u8 as f64;
        let y = [1.0 - y1, y1];
        for c in 0..2 {
            match mode {
                DiceMode::Soft => {
                    s[c] += p[c] * y[c];
                    s[2 + c] += p[c] * p[c];
                    s[4 + c] += y[c];
                }
                DiceMode::NoiseRobust { gamma } => {
                    s[c] += (p[c] - y[c]).abs().powf(gamma as f64);
                    s[2 + c] += p[c] + y[c];
                }
            }
        }
    }
    let loss = match mode {
        DiceMode::Soft => {
            (0..2).map(|c| 1.0 - (2.0 * s[c] + DICE_EPS) / (s[2 + c] + s[4 + c] + DICE_EPS)).sum::<f64>() / 2.0
        }
        DiceMode::NoiseRobust { .. } => (0..2).map(|c| s[c] / (s[2 + c] + DICE_EPS)).sum::<f64>() / 2.0,
    };
    let mut grad = vec![0f32; rows * 2];
    for r in 0..rows {
        if labels[r] >= 2 {
            continue;
        }
        let p = [1.0 - p1_of(logits, r), p1_of(logits, r)];
        let y1 = (labels[r] == 1) as u8 as f64;
        let y = [1.0 - y1, y1];
        let mut g = [0f64; 2];
        for c in 0..2 {
            g[c] = match mode {
                DiceMode::Soft => {
                    let den = s[2 + c] + s[4 + c] + DICE_EPS;
                    -0.5 * (2.0 * y[c] * den - (2.0 * s[c] + DICE_EPS) * 2.0 * p[c]) / (den * den)
                }
                DiceMode::NoiseRobust { gamma } => {
                    let gm = gamma as f64;
                    let d = p[c] - y[c];
                    let e = if d != 0.0 { gm * d.abs().powf(gm - 1.0) * d.signum() } else { 0.0 };
                    let m = s[2 + c] + DICE_EPS;
                    0.5 * (e * m - s[c]) / (m * m)
                }
            };
        }
        let dz1 = scale as f64 * p[0] * p[1] * (g[1] - g[0]);
        grad[2 * r] = -dz1 as f32;
        grad[2 * r + 1] = dz1 as f32;
    }
    (loss as f32, grad)
}
