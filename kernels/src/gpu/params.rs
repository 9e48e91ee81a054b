//! `#[repr(C)]` Rust twins of every WGSL `struct Params` (one per kernel), generated from the WGSL by the build
//! script (`FooBarParams` for `shaders/foo_bar.wgsl`). The shader test in `tests/tests/shaders.rs` compares each
//! struct's size and every field's name and offset with naga's reflection of the WGSL.

/// Size and field offsets of one Params struct, for the layout test.
#[derive(Debug, Clone, Copy)]
pub struct ParamsLayout {
    pub kernel: &'static str,
    pub rust_name: &'static str,
    pub size: usize,
    pub fields: &'static [(&'static str, usize)],
}

// The structs and `LAYOUTS`, written by build.rs from each kernel's `struct Params`.
include!(concat!(env!("OUT_DIR"), "/params_table.rs"));

/// The layout of one kernel's Params twin.
pub fn layout(kernel: &str) -> Option<&'static ParamsLayout> {
    LAYOUTS.iter().find(|l| l.kernel == kernel)
}

impl From<CropAdd2dParams> for Pad2dParams {
    /// The two kernels share their Params layout (checked against the WGSL by the shader test).
    fn from(p: CropAdd2dParams) -> Self {
        Pad2dParams { h: p.h, w: p.w, c: p.c, hp: p.hp, wp: p.wp, _pad0: 0, _pad1: 0, _pad2: 0 }
    }
}
