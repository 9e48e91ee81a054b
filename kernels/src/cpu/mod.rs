//! The CPU backend: one file per WGSL kernel with the same stem and argument order. Each is at once the
//! reference the GPU kernel is tested against and the implementation `Exec::cpu` runs models, training and
//! selection with, so the hot ones are written for speed (SIMD GEMM from matrixmultiply, threads from
//! [`par`], f32 where the kernel computes in f32) and the rest for clarity; none is less careful numerically
//! than its kernel, and f64 is kept where a reference needs it (row statistics, selection scores).

pub mod math;
pub mod par;
pub mod sgemm;

// `pub mod foo; pub use foo::foo;` for every `shaders/foo.wgsl`, written by build.rs (which fails when a kernel
// has no CPU implementation here).
include!(concat!(env!("OUT_DIR"), "/cpu_kernels.rs"));

pub use adamw::AdamwStep;
pub use dice_loss::DiceMode;
pub use facility_gain::GainMode;
pub use gather_rows::GatherRows;
pub use gelu::gelu_in_place;
pub use math::all_finite;
pub use other_label_min::OTHER_NONE;
pub use radius_edges::exclusive_prefix;
pub use segment_mean::segments;
pub use topk_rows::{TOPK_EMPTY_IDX, TOPK_EMPTY_VAL};
