//! Training on the GPU (or the CPU twins): heads on frozen foundation-model features. `cls`: linear probe and
//! DropQuery's classifier. The segmentation head, mean teacher and the semi-supervised losses are not built yet.

pub mod cls;
