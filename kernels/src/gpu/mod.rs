//! The GPU layer: an async [`GpuContext`] (adapter, device, limits, pipeline cache), the table of every WGSL
//! kernel ([`shaders::ALL`]), the `#[repr(C)]` twins of their `Params` structs ([`params`]), one async function
//! per kernel ([`ops`]) and buffer readback ([`readback`], the only place that differs between native and web).

pub mod context;
pub mod ops;
pub mod params;
pub mod readback;
pub mod shaders;

pub use context::{AdapterReport, GpuContext, GpuOptions, KernelTime};
pub use ops::GemmKernel;
pub use readback::{read_f32, read_f32_u32, read_u32, GpuBuffer};
