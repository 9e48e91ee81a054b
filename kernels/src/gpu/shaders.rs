//! The single table of every WGSL kernel, embedded with `include_str!` so nothing is read at run time (works
//! the same natively and in the browser). The build script writes it from `shaders/*.wgsl` (a kernel's file is
//! its row: workgroup size and f16 read from the WGSL); `tests/tests/shaders.rs` checks it against the folder
//! and each workgroup size against naga's reflection.

/// One compute kernel: file stem, WGSL source, and the `@workgroup_size` used for dispatch arithmetic.
#[derive(Debug, Clone, Copy)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    pub workgroup_size: [u32; 3],
    /// Needs the `shader-f16` device feature (`enable f16;`): built only where the device grants it.
    pub f16: bool,
}

// `ALL`, written by build.rs from `shaders/*.wgsl`: every kernel, sorted by name.
include!(concat!(env!("OUT_DIR"), "/shaders_table.rs"));

/// Look a kernel up by name.
pub fn get(name: &str) -> Option<&'static Shader> {
    ALL.iter().find(|s| s.name == name)
}
