//! The shader contract (shaders/README.md), checked with naga: the table matches the directory, every shader
//! validates with the capabilities medpick requests, workgroup sizes match the table, and every WGSL `Params`
//! struct matches its `#[repr(C)]` Rust twin field by field.

use std::collections::BTreeSet;
use std::path::PathBuf;

use medpick_core::gpu::{params, shaders};

fn shader_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shaders")
}

fn parse(name: &str, src: &str) -> naga::Module {
    naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(src, name)))
}

#[test]
fn every_wgsl_file_is_registered() {
    let files: BTreeSet<String> = std::fs::read_dir(shader_dir())
        .expect("shaders/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!files.is_empty(), "no .wgsl files found in {}", shader_dir().display());
    let table: BTreeSet<String> = shaders::ALL.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(table.len(), shaders::ALL.len(), "duplicate names in shaders::ALL");
    let missing_in_table: Vec<_> = files.difference(&table).collect();
    let missing_files: Vec<_> = table.difference(&files).collect();
    assert!(missing_in_table.is_empty(), "shaders/*.wgsl not in kernels::gpu::shaders::ALL: {missing_in_table:?}");
    assert!(missing_files.is_empty(), "table entries without a shaders/*.wgsl file: {missing_files:?}");
    // The embedded source is the file on disk.
    for s in shaders::ALL {
        let disk = std::fs::read_to_string(shader_dir().join(format!("{}.wgsl", s.name))).unwrap();
        assert_eq!(disk, s.source, "{} differs from its embedded copy", s.name);
    }
}

#[test]
fn every_shader_parses_and_validates() {
    // medpick requests one optional feature, shader-f16, and only kernels marked `f16` in the table use it:
    // those validate with SHADER_FLOAT16 (+ 16-bit storage), every other kernel with the WebGPU baseline, so a
    // baseline kernel that slips `f16` in fails here.
    let mut failures = Vec::new();
    for s in shaders::ALL {
        let path = format!("shaders/{}.wgsl", s.name);
        let module = match naga::front::wgsl::parse_str(s.source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(e.emit_to_string_with_path(s.source, &path));
                continue;
            }
        };
        if s.f16 != s.source.contains("enable f16;") {
            failures
                .push(format!("{path}: the table's f16 flag ({}) disagrees with `enable f16;` in the source", s.f16));
        }
        let caps = if s.f16 {
            naga::valid::Capabilities::default() | naga::valid::Capabilities::SHADER_FLOAT16
        } else {
            naga::valid::Capabilities::default()
        };
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        if let Err(e) = v.validate(&module) {
            failures.push(e.emit_to_string_with_path(s.source, &path));
        }
        let computes: Vec<_> = module
            .entry_points
            .iter()
            .filter(|e| e.stage == naga::ShaderStage::Compute)
            .map(|e| e.name.clone())
            .collect();
        if computes != ["main"] {
            failures.push(format!("{path}: expected exactly one compute entry point `main`, found {computes:?}"));
        }
    }
    assert!(failures.is_empty(), "{} shader(s) failed:\n{}", failures.len(), failures.join("\n"));
    eprintln!("validated {} shaders", shaders::ALL.len());
}

#[test]
fn workgroup_sizes_match_table() {
    for s in shaders::ALL {
        let m = parse(s.name, s.source);
        let ep = m.entry_points.iter().find(|e| e.name == "main").expect("main entry point");
        assert_eq!(
            ep.workgroup_size, s.workgroup_size,
            "{}: naga reflects {:?}, table says {:?}",
            s.name, ep.workgroup_size, s.workgroup_size
        );
    }
}

#[test]
fn params_layout_matches_rust() {
    for s in shaders::ALL {
        let m = parse(s.name, s.source);
        let Some((_, ty)) = m.types.iter().find(|(_, t)| t.name.as_deref() == Some("Params")) else {
            assert!(params::layout(s.name).is_none(), "{}: Rust has a Params twin but the WGSL has no Params", s.name);
            continue;
        };
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("{}: Params is not a struct", s.name);
        };
        let rust =
            params::layout(s.name).unwrap_or_else(|| panic!("{}: no Rust twin in kernels/src/gpu/params.rs", s.name));
        assert_eq!(
            *span as usize, rust.size,
            "{}: WGSL Params is {} bytes, {} is {}",
            s.name, span, rust.rust_name, rust.size
        );
        let wgsl: Vec<(String, usize)> =
            members.iter().map(|mb| (mb.name.clone().unwrap_or_default(), mb.offset as usize)).collect();
        let rs: Vec<(String, usize)> = rust.fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
        assert_eq!(wgsl, rs, "{}: WGSL Params members (name, offset) differ from {}", s.name, rust.rust_name);
        // Params must be bound as the uniform at binding 0.
        let bound = m.global_variables.iter().any(|(_, g)| {
            g.space == naga::AddressSpace::Uniform
                && g.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == 0)
                && m.types[g.ty].name.as_deref() == Some("Params")
        });
        assert!(bound, "{}: Params must be `var<uniform> params: Params` at @group(0) @binding(0)", s.name);
    }
    for l in params::LAYOUTS {
        assert!(shaders::get(l.kernel).is_some(), "Rust Params twin {} names unknown kernel {}", l.rust_name, l.kernel);
    }
}

/// WGSL has no includes, so the GELU's erfc polynomial is written into every kernel that needs it (`gelu`,
/// `gelu_backward`, and `matmul_regs4` for its fused GELU): every copy must be the same text, so that a fused GELU
/// gives the values of the separate pass.
#[test]
fn every_copy_of_the_gelu_erfc_is_the_same() {
    let body = |src: &str| -> Option<String> {
        let start = src.find("fn erfc_f32(")?;
        let end = start + src[start..].find("\n}\n")? + 3;
        Some(src[start..end].to_string())
    };
    let copies: Vec<(&str, String)> = shaders::ALL.iter().filter_map(|s| body(s.source).map(|b| (s.name, b))).collect();
    let names: Vec<&str> = copies.iter().map(|(n, _)| *n).collect();
    for k in ["gelu", "gelu_backward", "matmul_regs4"] {
        assert!(names.contains(&k), "{k} should define erfc_f32 (found in {names:?})");
    }
    for (name, b) in &copies[1..] {
        assert_eq!(b, &copies[0].1, "erfc_f32 of {name} differs from that of {}", copies[0].0);
    }
}
