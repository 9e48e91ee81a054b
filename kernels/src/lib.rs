//! medpick kernels: everything that runs a kernel, and nothing that knows what a model or a dataset is.
//!
//! - [`gpu`]: the async [`gpu::GpuContext`] (adapter, device, limits, pipeline cache), the table of every WGSL
//!   kernel ([`gpu::shaders::ALL`]), the `#[repr(C)]` twins of their `Params`, one async op per kernel split by
//!   family ([`gpu::ops`]: gemm, pairwise, norm, activation, conv, attention, loss, optim, select), readback.
//! - [`cpu`]: one CPU implementation per kernel (same stem, same argument order): the reference the GPU is
//!   tested against and the CPU backend.
//! - [`device`]: `--device auto|gpu|cpu`, which backend a run gets and why.
//! - [`exec`]: the backend seam. Models, training steps and the selection scans call [`exec::Exec`]; whether the
//!   WGSL kernels or the CPU implementations run is decided there and only there.
//! - [`selftest`] (GPU-vs-CPU cases by family, shared by `cargo test`, `medpick selftest` and the browser page),
//!   [`testing`] (tolerances), [`bench`] (kernel throughput), [`rng`] (the seeded generator everything shares).
//!
//! This crate may not import model or data code: `medpick-core` depends on it, never the reverse.

pub mod bench;
pub mod cpu;
pub mod device;
pub mod error;
pub mod exec;
pub mod gpu;
pub mod rng;
pub mod selftest;
pub mod testing;

pub use error::{Context, Error, Result};

/// `Instant` that works on native and in the browser (std's panics on wasm32-unknown-unknown).
pub use web_time::Instant;
