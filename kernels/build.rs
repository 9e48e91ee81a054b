//! Reads `shaders/*.wgsl` (as vello_shaders' build script reads its shader folder) and writes, into OUT_DIR:
//! - `shaders_table.rs`: `ALL`, one `Shader` per file with its `@workgroup_size` and whether it needs f16,
//!   sorted by name;
//! - `params_table.rs`: the `#[repr(C)]` twin of each kernel's `struct Params` (`FooBarParams` for
//!   `foo_bar.wgsl`) and `LAYOUTS`, their sizes and field offsets (tests/tests/shaders.rs checks the table and
//!   the layouts against naga's reflection);
//! - `cpu_kernels.rs`: `pub mod foo; pub use foo::foo;` for each kernel's CPU implementation `src/cpu/foo.rs`,
//!   which must exist and define `pub fn foo(` (one name links the shader, its CPU twin, its op and its test).
//!
//! So adding a kernel needs no registry edit: the shader file is the table row.

use std::fmt::Write;
use std::path::Path;

struct Kernel {
    name: String,
    workgroup: [u32; 3],
    f16: bool,
    /// (field, WGSL type) of `struct Params`.
    params: Vec<(String, String)>,
}

fn fail(msg: String) -> ! {
    panic!("medpick-kernels build: {msg}");
}

fn parse(name: &str, src: &str) -> Kernel {
    // Comments out, so a commented-out attribute or field is not read.
    let code: String = src.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let wg = code
        .split("@workgroup_size(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| fail(format!("shaders/{name}.wgsl has no @workgroup_size(..)")));
    let dims: Vec<u32> = wg
        .split(',')
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| v.trim_end_matches('u').parse().unwrap_or_else(|_| fail(format!("{name}: workgroup size {v:?}"))))
        .collect();
    let workgroup = [dims[0], *dims.get(1).unwrap_or(&1), *dims.get(2).unwrap_or(&1)];
    let f16 = code.lines().any(|l| l.trim() == "enable f16;");
    let body = code
        .split("struct Params")
        .nth(1)
        .and_then(|s| s.split_once('{'))
        .and_then(|(_, s)| s.split_once('}'))
        .map(|(b, _)| b)
        .unwrap_or_else(|| fail(format!("shaders/{name}.wgsl has no `struct Params {{ .. }}`")));
    let params = body
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (field, ty) = f.split_once(':').unwrap_or_else(|| fail(format!("{name}: Params field {f:?}")));
            let ty = ty.trim().to_string();
            if !matches!(ty.as_str(), "u32" | "i32" | "f32") {
                fail(format!("{name}: Params field {field} is {ty}; the table handles u32, i32 and f32"));
            }
            (field.trim().to_string(), ty)
        })
        .collect();
    Kernel { name: name.to_string(), workgroup, f16, params }
}

fn camel(stem: &str) -> String {
    stem.split('_').map(|p| p[..1].to_uppercase() + &p[1..]).collect()
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shaders = dir.join("../shaders");
    println!("cargo:rerun-if-changed={}", shaders.display());
    println!("cargo:rerun-if-changed={}", dir.join("src/cpu").display());
    let mut kernels: Vec<Kernel> = std::fs::read_dir(&shaders)
        .unwrap_or_else(|e| fail(format!("{}: {e}", shaders.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| {
            println!("cargo:rerun-if-changed={}", p.display());
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let src = std::fs::read_to_string(&p).unwrap_or_else(|e| fail(format!("{}: {e}", p.display())));
            parse(&name, &src)
        })
        .collect();
    kernels.sort_by(|a, b| a.name.cmp(&b.name));

    let mut table = String::from("/// Every kernel, sorted by name.\npub const ALL: &[Shader] = &[\n");
    for k in &kernels {
        let [x, y, z] = k.workgroup;
        let _ = writeln!(
            table,
            "    Shader {{ name: {:?}, source: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../shaders/{}.wgsl\")), \
             workgroup_size: [{x}, {y}, {z}], f16: {} }},",
            k.name, k.name, k.f16
        );
    }
    table.push_str("];\n");
    let mut params = String::new();
    for k in &kernels {
        let _ = writeln!(params, "#[doc = \"Uniform parameters of `shaders/{}.wgsl`.\"]", k.name);
        params.push_str("#[repr(C)]\n#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]\n");
        let _ = writeln!(params, "pub struct {}Params {{", camel(&k.name));
        for (f, ty) in &k.params {
            let _ = writeln!(params, "    pub {f}: {ty},");
        }
        params.push_str("}\n\n");
    }
    params
        .push_str("/// Layout of every Params twin, keyed by kernel name.\npub const LAYOUTS: &[ParamsLayout] = &[\n");
    for k in &kernels {
        let p = format!("{}Params", camel(&k.name));
        let fields: Vec<String> =
            k.params.iter().map(|(f, _)| format!("({f:?}, std::mem::offset_of!({p}, {f}))")).collect();
        let _ = writeln!(
            params,
            "    ParamsLayout {{ kernel: {:?}, rust_name: {p:?}, size: std::mem::size_of::<{p}>(), fields: &[{}] }},",
            k.name,
            fields.join(", ")
        );
    }
    params.push_str("];\n");

    let mut cpu = String::new();
    for k in &kernels {
        let file = dir.join("src/cpu").join(format!("{}.rs", k.name));
        let src = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            fail(format!("shaders/{}.wgsl has no CPU implementation at {}", k.name, file.display()))
        });
        if !src.contains(&format!("pub fn {}(", k.name)) {
            fail(format!("{} does not define `pub fn {}(`", file.display(), k.name));
        }
        let _ = writeln!(
            cpu,
            "#[path = {:?}]\npub mod {};\npub use {}::{};",
            file.display().to_string(),
            k.name,
            k.name,
            k.name
        );
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("shaders_table.rs"), table).expect("writing shaders_table.rs");
    std::fs::write(out.join("params_table.rs"), params).expect("writing params_table.rs");
    std::fs::write(out.join("cpu_kernels.rs"), cpu).expect("writing cpu_kernels.rs");
}
