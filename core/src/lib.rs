//! medpick core: the data flow of cold-start active learning for medical images —
//! image → tensor → foundation-model encoder → features → selection → labels → fine-tune —
//! running every heavy step in hand-written WGSL compute kernels through wgpu (native or WebGPU).
//!
//! Layout: [`gpu`] (context, shader table, pipeline cache, one async op per kernel), [`cpu`] (the CPU twin of
//! every kernel, the reference the GPU is tested against), [`selftest`] (GPU-vs-CPU cases shared by the test
//! suite, the CLI and the browser page), [`bench`] (kernel throughput).
//!
//! The library is async and returns [`Error`] for anything that can go wrong with user input; it does not panic.

pub mod augment;
pub mod bench;
pub mod cpu;
pub mod error;
pub mod features;
pub mod gpu;
pub mod rng;
pub mod segment;
pub mod select;
pub mod selftest;
pub mod testing;
pub mod train;
pub mod uncertainty;
pub mod upload;

pub use error::{Error, Result};

/// `Instant` that works on native and in the browser (std's panics on wasm32-unknown-unknown).
pub use web_time::Instant;
pub mod io;
pub mod manifest;
pub mod metrics;
pub mod model;
pub mod preprocess;
pub mod protocol;
