//! CPU twins: one file per WGSL kernel with the same stem and argument order. They are the reference the GPU
//! is tested against, so they are written for clarity and are never less careful numerically than the kernel
//! (f64 accumulation where the kernel accumulates in f32). They also run the work when no GPU exists (the
//! browser without WebGPU).

pub mod adamw;
pub mod argmax_rows;
pub mod attention;
pub mod crop_add2d;
pub mod cross_attention;
pub mod depth_to_space;
pub mod dice_loss;
pub mod dwconv2d;
pub mod ema_update;
pub mod entropy_map;
pub mod facility_gain;
pub mod gelu;
pub mod gelu_backward;
pub mod im2col;
pub mod layernorm;
pub mod layernorm_backward;
pub mod matmul;
pub mod min_dist_update;
pub mod other_label_min;
pub mod pad2d;
pub mod pairwise_sqdist;
pub mod radius_edges;
pub mod reduce_rows;
pub mod relu;
pub mod segment_mean;
pub mod sgd_momentum;
pub mod softmax_mse;
pub mod softmax_rows;
pub mod softmax_xent;
pub mod topk_rows;
pub mod transpose;

pub use adamw::{adamw, AdamwStep};
pub use argmax_rows::argmax_rows;
pub use attention::attention;
pub use crop_add2d::crop_add2d;
pub use cross_attention::cross_attention;
pub use depth_to_space::depth_to_space;
pub use dice_loss::{dice_loss, DiceMode};
pub use dwconv2d::dwconv2d;
pub use ema_update::ema_update;
pub use entropy_map::entropy_map;
pub use facility_gain::{facility_gain, GainMode};
pub use gelu::gelu;
pub use gelu_backward::gelu_backward;
pub use im2col::im2col;
pub use layernorm::layernorm;
pub use layernorm_backward::layernorm_backward;
pub use matmul::matmul;
pub use min_dist_update::min_dist_update;
pub use other_label_min::{other_label_min, OTHER_NONE};
pub use pad2d::pad2d;
pub use pairwise_sqdist::pairwise_sqdist;
pub use radius_edges::{exclusive_prefix, radius_edges};
pub use reduce_rows::reduce_rows;
pub use relu::relu;
pub use segment_mean::{segment_mean, segments};
pub use sgd_momentum::sgd_momentum;
pub use softmax_mse::softmax_mse;
pub use softmax_rows::softmax_rows;
pub use softmax_xent::softmax_xent;
pub use topk_rows::{topk_rows, TOPK_EMPTY_IDX, TOPK_EMPTY_VAL};
pub use transpose::transpose;
