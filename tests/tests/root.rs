//! medpick's one integration-test binary: `mod` per area.

mod common;
mod kernels;
mod shaders;
