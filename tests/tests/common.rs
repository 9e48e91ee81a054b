//! Shared test helpers: one GPU context for the whole test binary.
//!
//! Without an adapter, GPU tests print `skipped: no adapter` and return — unless `REQUIRE_GPU=1` (CI sets it,
//! CI has lavapipe), in which case they fail.

use std::sync::OnceLock;

use medpick_core::gpu::GpuContext;

static GPU: OnceLock<Option<GpuContext>> = OnceLock::new();

pub fn require_gpu() -> bool {
    std::env::var("REQUIRE_GPU").map(|v| v == "1" || v.eq_ignore_ascii_case("true")).unwrap_or(false)
}

/// The shared GPU context, or `None` (after printing why) when there is none and none is required.
pub fn gpu() -> Option<&'static GpuContext> {
    let ctx = GPU.get_or_init(|| match pollster::block_on(GpuContext::new()) {
        Ok(c) => {
            eprintln!("GPU adapter: {} ({:?})", c.info.name, c.info.backend);
            Some(c)
        }
        Err(e) => {
            if require_gpu() {
                panic!("REQUIRE_GPU is set but no GPU context could be created: {e}");
            }
            eprintln!("skipped: no adapter ({e})");
            None
        }
    });
    ctx.as_ref()
}

/// `../shared` next to the checkout (data and fixtures), or `None` after printing why the test is skipped.
/// Set `REQUIRE_SHARED=1` (CI does) to make its absence a failure.
pub fn shared() -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if p.join("data").is_dir() {
        return Some(p.canonicalize().unwrap_or(p));
    }
    if std::env::var("REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_SHARED is set but {} does not exist", p.display());
    }
    eprintln!("skipped: ../shared (data and fixtures) not found at {}", p.display());
    None
}

/// The LiteMedSAM weights (`$MEDPICK_WEIGHTS` or the setup script's cache), or `None` after printing why the
/// test is skipped. Set `REQUIRE_WEIGHTS=1` (CI does) to make their absence a failure.
pub fn litemedsam_path() -> Option<std::path::PathBuf> {
    match medpick_core::io::weights::default_litemedsam_path() {
        Ok(p) => Some(p),
        Err(e) => {
            assert!(!std::env::var("REQUIRE_WEIGHTS").is_ok_and(|v| v == "1"), "REQUIRE_WEIGHTS is set: {e}");
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Read every tensor of a safetensors file as (shape, f32 values or u8 values widened to f32).
pub fn load_safetensors(path: &std::path::Path) -> std::collections::HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out = std::collections::HashMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let vals: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => bytemuck::pod_collect_to_vec(data),
            safetensors::Dtype::U8 => data.iter().map(|&v| v as f32).collect(),
            safetensors::Dtype::I32 => {
                bytemuck::pod_collect_to_vec::<u8, i32>(data).into_iter().map(|v| v as f32).collect()
            }
            safetensors::Dtype::F16 => {
                bytemuck::pod_collect_to_vec::<u8, u16>(data).into_iter().map(f16_to_f32).collect()
            }
            other => panic!("{name}: dtype {other:?} not handled by the test loader"),
        };
        out.insert(name.to_string(), (view.shape().to_vec(), vals));
    }
    out
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            let v = frac as f32 / 1024.0 * 2f32.powi(-14);
            return if sign != 0 { -v } else { v };
        }
        31 => sign | 0x7f80_0000 | (frac << 13),
        e => sign | (((e - 15 + 127) as u32) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// A NIfTI segmentation dataset derived from the MNI152 template in ../shared/data/nifti-mni152, written under
/// `dir`: `images/mni.nii.gz` (the T1 cropped to x 30..170, y 30..210, z 70..134: 64 axial slices of 140×180)
/// and `labels/mni.nii.gz` (white matter = probability map > 127, uint8 0/1), and the same pair mirrored
/// left-right as `mni_flip`. Returns the dataset folder and the label volume's foreground voxels per axial slice
/// (z), counted straight from the array, or `None` without ../shared.
pub fn mni_seg_dataset(dir: &std::path::Path) -> Option<(std::path::PathBuf, Vec<usize>)> {
    mni_seg_volumes(dir, &[70])
}

/// [`mni_seg_dataset`] with one pair of volumes per start of the 64-slice z range: `mni` / `mni_flip` for z 70,
/// `mni_z<start>` / `mni_z<start>_flip` for the others (z ranges up to 125..189). The counts are the first's.
pub fn mni_seg_volumes(dir: &std::path::Path, z_starts: &[usize]) -> Option<(std::path::PathBuf, Vec<usize>)> {
    use ::nifti::{IntoNdArray, NiftiObject};
    use ndarray::s;
    let src = shared()?.join("data/nifti-mni152");
    let read = |name: &str| {
        let obj = ::nifti::ReaderOptions::new().read_file(src.join(name)).unwrap();
        let h = obj.header().clone();
        (h, obj.into_volume().into_ndarray::<f32>().unwrap().into_dimensionality::<ndarray::Ix3>().unwrap())
    };
    let (h, t1) = read("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz");
    let (_, wm) = read("mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz");
    let root = dir.join("mni-seg");
    for sub in ["images", "labels"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let mut first = None;
    for &z in z_starts {
        let crop = |a: &ndarray::Array3<f32>| a.slice(s![30..170, 30..210, z..z + 64]).to_owned();
        let (t1, wm) = (crop(&t1), crop(&wm));
        let label: ndarray::Array3<u8> = wm.mapv(|v| (v > 127.0) as u8);
        let mirror_t1 = t1.slice(s![..;-1, .., ..]).to_owned();
        let mirror_label = label.slice(s![..;-1, .., ..]).to_owned();
        let base = if z == 70 { "mni".to_string() } else { format!("mni_z{z}") };
        for (name, image, mask) in [(base.clone(), &t1, &label), (format!("{base}_flip"), &mirror_t1, &mirror_label)] {
            let w = |p: std::path::PathBuf| ::nifti::writer::WriterOptions::new(p).reference_header(&h);
            w(root.join(format!("images/{name}.nii.gz"))).write_nifti(image).unwrap();
            w(root.join(format!("labels/{name}.nii.gz"))).write_nifti(mask).unwrap();
        }
        let count = |z: usize| label.slice(s![.., .., z]).iter().filter(|&&v| v != 0).count();
        first.get_or_insert_with(|| (0..label.shape()[2]).map(count).collect::<Vec<usize>>());
    }
    Some((root, first.unwrap_or_default()))
}

/// Axial slices `z0..z1` of the MNI152 T1 and of its grey-matter probability map (both uint8, full in x and y),
/// written as `mni_t1.nii.gz` into `image_dir` and `mni_gm.nii.gz` into `label_dir`, with the affine (sform and
/// qform offsets) moved to the slab's first slice so each voxel keeps its world position. `None` without
/// ../shared. A whole volume of 189 slices costs as many encoder passes per inference; a slab keeps real anatomy.
pub fn mni_slab(
    image_dir: &std::path::Path,
    label_dir: &std::path::Path,
    z0: usize,
    z1: usize,
) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    use ::nifti::{IntoNdArray, NiftiObject};
    use ndarray::s;
    let src = shared()?.join("data/nifti-mni152");
    let mut out = Vec::new();
    for (name, dir, file) in [
        ("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", image_dir, "mni_t1.nii.gz"),
        ("mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz", label_dir, "mni_gm.nii.gz"),
    ] {
        let obj = ::nifti::ReaderOptions::new().read_file(src.join(name)).unwrap();
        let mut h = obj.header().clone();
        let vol = obj.into_volume().into_ndarray::<u8>().unwrap().into_dimensionality::<ndarray::Ix3>().unwrap();
        let slab = vol.slice(s![.., .., z0..z1]).to_owned();
        let shift = [h.srow_x[2], h.srow_y[2], h.srow_z[2]].map(|c| c * z0 as f32);
        h.srow_x[3] += shift[0];
        h.srow_y[3] += shift[1];
        h.srow_z[3] += shift[2];
        (h.quatern_x, h.quatern_y, h.quatern_z) =
            (h.quatern_x + shift[0], h.quatern_y + shift[1], h.quatern_z + shift[2]);
        let path = dir.join(file);
        ::nifti::writer::WriterOptions::new(&path).reference_header(&h).write_nifti(&slab).unwrap();
        out.push(path);
    }
    Some((out.remove(0), out.remove(0)))
}
