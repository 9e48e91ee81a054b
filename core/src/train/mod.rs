//! Training on the GPU (or the CPU twins): heads on frozen foundation-model features. `cls`: linear probe and
//! DropQuery's classifier. `seg`: a segmentation head on the feature grid (3×3 conv, LayerNorm, GELU, 1×1 conv,
//! pixel shuffle) with 0.5·CE + 0.5·(soft or noise-robust) Dice, optionally FM-ABS's mean teacher on unlabelled
//! grids, and generalist (LiteMedSAM box-prompt) pseudo-labels with an ASSFT-like selective filter (`pseudo`).

pub mod cls;
pub mod pseudo;
pub mod seg;
