//! Training on the GPU (or the CPU twins): heads on frozen foundation-model features. `cls`: linear probe and
//! DropQuery's classifier. `seg`: a segmentation head on the feature grid (3×3 conv, LayerNorm, GELU, 1×1 conv,
//! pixel shuffle) with 0.5·CE + 0.5·(soft or noise-robust) Dice, optionally FM-ABS's mean teacher on unlabelled
//! grids, and generalist (LiteMedSAM box-prompt) pseudo-labels with an ASSFT-like selective filter (`pseudo`).
//! `seg_head` is the head itself (forward, loss, backward), `grid` the geometry of feature grids and masks; the
//! types every trainer reports ([`TrainLog`], [`PseudoRound`]) live here, so no trainer imports another.

pub mod cls;
pub mod grid;
pub mod heads;
pub mod labelled;
pub mod pseudo;
pub mod sam_source;
pub mod seg;
pub mod seg_head;

/// What a training run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TrainLog {
    /// Mean loss per epoch.
    pub epoch_loss: Vec<f32>,
    pub steps: usize,
    pub seconds: f64,
    /// Segmentation with pseudo-labels: what each refresh made.
    pub pseudo: Vec<PseudoRound>,
    /// With a validation split: the epoch whose head was kept and its validation accuracy.
    pub best_epoch: Option<usize>,
    pub val_accuracy: Option<f64>,
    /// Segmentation with a validation split: the kept head's mean validation Dice.
    pub val_dice: Option<f64>,
    /// Segmentation with a validation split: (epoch, mean validation Dice) of every epoch measured.
    pub val_curve: Vec<(usize, f64)>,
}

/// What one refresh made (in `TrainLog::pseudo`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PseudoRound {
    pub step: usize,
    pub unlabeled: usize,
    pub kept: usize,
    /// Kept images whose pseudo-label has foreground.
    pub with_foreground: usize,
    pub confidence_threshold: f32,
    pub distance_threshold: f32,
}

/// A training step's summed loss must stay finite: a NaN or Inf (diverged training, a bad input that slipped
/// through) stops the run naming the epoch, before any head is written.
pub(crate) fn check_loss(epoch: usize, sum: f64) -> crate::Result<()> {
    if sum.is_finite() {
        return Ok(());
    }
    Err(crate::Error::Invalid(format!(
        "training diverged: the loss of epoch {epoch} is {sum} (a NaN or infinite value; try a lower --lr)"
    )))
}
