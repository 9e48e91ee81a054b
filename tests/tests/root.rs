//! medpick's one integration-test binary: `mod` per area.

mod cli;
mod common;
mod io;
mod kernels;
mod models;
mod select;
mod shaders;
mod weights;
