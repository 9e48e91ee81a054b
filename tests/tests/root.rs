//! medpick's one integration-test binary: `mod` per area.

mod common;
mod io;
mod kernels;
mod shaders;
