//! medpick core: the data flow of cold-start active learning for medical images —
//! image → tensor → foundation-model encoder → features → selection → labels → fine-tune —
//! running every heavy step in hand-written WGSL compute kernels through wgpu (native or WebGPU).
//!
//! Everything that runs a kernel lives in the `medpick-kernels` crate (re-exported here as [`kernels`], with its
//! [`gpu`], [`cpu`], [`selftest`], [`testing`] and [`rng`] modules). Every model forward and every training step
//! runs on its `Exec` seam (GPU kernels or CPU kernels); the selection scans (`select::pool`, `select::gpu`) still
//! call the GPU ops directly, beside their f64 CPU strategies. This crate holds what a user's data follows:
//! data (io, manifest, preprocess) → model → embed → select / uncertainty → train → protocol → metrics.
//!
//! The library is async and returns [`Error`] for anything that can go wrong with user input; it does not panic.

/// `return Err(Error::Invalid(format!(..)))`, as anyhow's `bail!` reads (for code that checks its inputs).
#[allow(unused_macros)]
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::Error::Invalid(format!($($t)*))) };
}

#[macro_use]
pub mod progress;
pub mod bench;
pub mod embed;
/// The encoders and the feature file, under their former path.
pub use embed::features;
pub mod segment;
pub mod select;
pub mod serve;
pub mod train;
pub mod uncertainty;

pub mod data;
pub use data::{augment, csv, io, preprocess, upload};

/// The manifest, its ingest and its split under the one path the CLI, the browser build and the tests use.
pub mod manifest {
    pub use crate::data::ingest::*;
    pub use crate::data::ingest_run::*;
    pub use crate::data::manifest::*;
    pub use crate::data::split::*;
}

/// The kernels crate, and its modules under the names the rest of medpick has always used.
pub use medpick_kernels as kernels;
pub use medpick_kernels::{cpu, device, exec, gpu, rng, selftest, testing, Context, Error, Instant, Result};
pub mod metrics;
pub mod model;
pub mod protocol;
