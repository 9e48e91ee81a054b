//! medpick's fuzz targets: every parser where data enters medpick (2-D images, NIfTI plain and gzipped, DICOM,
//! `.npz` archives through ingest, safetensors and `.pth` checkpoints, manifests, CSV files, feature files, feature-
//! cache entries, the web server's path and Host checks, the annotation server's label files and names) and every selection strategy on arbitrary feature matrices.
//!
//! A target takes bytes and returns whether medpick accepted them (`Ok`) or refused them (a typed error). Neither
//! is a finding: a finding is a panic, or an accepted result that breaks a contract the target checks with
//! `assert!` (a decoded image larger than the size cap, a non-finite pixel or feature, a served path outside the
//! root, a pick that is repeated, out of range or already labelled). The driver (`main.rs`) catches those.
//!
//! Size caps are set small here (`CAP_PIXELS`) so that a header that lies about its size is refused before
//! anything is allocated, and the driver's allocator checks that no input made medpick allocate far beyond that.

use std::path::{Path, PathBuf};

use medpick_core::data::io::{dicom, image2d, nifti, pth, volume_cap, weights, Image2d, Pixels, Window};
use medpick_core::manifest::{IngestOptions, SampleLoader};

/// The 2-D size cap the decoding targets run with (1 Mpixel: 1024 × 1024).
pub const CAP_PIXELS: u64 = 1 << 20;

/// One target: its name (also its corpus folder under `fuzz/corpus/`) and its function.
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&Scratch, &[u8]) -> bool,
}

pub const TARGETS: &[Target] = &[
    Target { name: "image", about: "PNG/JPEG/TIFF/BMP bytes -> Image2d (size cap, finite pixels)", run: image },
    Target { name: "nifti", about: "NIfTI-1 .nii (or .nii.gz when gzip-framed) bytes -> volume -> slices", run: nifti },
    Target {
        name: "nifti-gz",
        about: "the input gzipped, then read as .nii.gz (header mutations reach the gz path)",
        run: nifti_gz,
    },
    Target { name: "dicom", about: "DICOM bytes -> header -> every frame (windowed)", run: dicom },
    Target { name: "npz", about: "a .npz archive through ingest, then its first samples loaded", run: npz },
    Target { name: "safetensors", about: "safetensors checkpoint bytes -> named tensors", run: safetensors },
    Target { name: "pth", about: "PyTorch .pth (zip + restricted pickle) bytes -> named tensors", run: pth },
    Target { name: "manifest", about: "a manifest (.jsonl) -> dataset -> its first samples loaded", run: manifest },
    Target { name: "csv", about: "a CSV as labels, ids, an id list and a split", run: csv },
    Target {
        name: "features",
        about: "a feature file (safetensors + ids) -> Features (distinct ids, finite rows)",
        run: features,
    },
    Target {
        name: "feature-cache",
        about: "a feature-cache entry (values + trailer) -> values or why not",
        run: feature_cache,
    },
    Target {
        name: "http",
        about: "medpick web: URL path -> file under the root; Host header -> answered or not",
        run: http,
    },
    Target {
        name: "label",
        about: "medpick serve: a label upload (NRRD raw/gzip, NIfTI, PNG by magic) -> mask; ids and tags",
        run: label,
    },
    Target {
        name: "select",
        about: "every strategy on an arbitrary feature matrix, budget and labelled set",
        run: select,
    },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// A private folder for targets that read files by path (one per driver process), with the web target's tree.
pub struct Scratch {
    pub dir: PathBuf,
    pub web_root: PathBuf,
}

impl Scratch {
    pub fn new() -> std::io::Result<Scratch> {
        // Targets that read by path write each input to a file: in memory (/dev/shm) where there is one.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = base.join(format!("medpick-fuzz-{}-{k}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data"))?;
        let web_root = dir.join("web");
        std::fs::create_dir_all(web_root.join("sub"))?;
        std::fs::create_dir_all(web_root.join(".hidden"))?;
        std::fs::write(web_root.join("index.html"), "<!doctype html>")?;
        std::fs::write(web_root.join("sub/app.js"), "")?;
        std::fs::write(web_root.join(".hidden/secret"), "")?;
        std::fs::write(dir.join("outside.txt"), "outside the served folder")?;
        // What the manifest corpus's samples point at.
        let png = image2d::encode_png_gray(&[0, 64, 128, 255].repeat(4), 4, 4).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("data/a.png"), png)?;
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.join("outside.txt"), web_root.join("link.txt"))?;
            std::os::unix::fs::symlink(&dir, web_root.join("up"))?;
        }
        Ok(Scratch { dir, web_root })
    }

    /// Write `bytes` as `name` in the data folder (replacing the last input) and return its path.
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.join("data").join(name);
        std::fs::write(&p, bytes).expect("the fuzz scratch folder is writable");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The contracts of an accepted image: within the cap, a buffer of exactly w × h × c samples, 1 or 3 channels,
/// finite values in [0, 1] for float pixels.
fn check_image(img: &Image2d, cap: u64) {
    let n = img.width as u64 * img.height as u64;
    assert!(img.width > 0 && img.height > 0, "an accepted image of {} x {}", img.width, img.height);
    assert!(n <= cap, "an accepted image of {} x {} is over the cap of {cap} pixels", img.width, img.height);
    assert!(matches!(img.channels, 1 | 3), "an accepted image with {} channels", img.channels);
    let len = match &img.pixels {
        Pixels::U8(v) => v.len(),
        Pixels::U16(v) => v.len(),
        Pixels::F32(v) => {
            assert!(v.iter().all(|x| x.is_finite()), "an accepted image with non-finite pixels");
            v.len()
        }
    };
    assert_eq!(len as u64, n * img.channels as u64, "pixel buffer length");
}

fn image(_: &Scratch, bytes: &[u8]) -> bool {
    match image2d::decode_image_bytes(Path::new("fuzz.img"), bytes, CAP_PIXELS) {
        Ok(img) => {
            check_image(&img, CAP_PIXELS);
            true
        }
        Err(_) => false,
    }
}

fn read_nifti(name: &str, bytes: &[u8]) -> bool {
    let cap = volume_cap(CAP_PIXELS);
    let Ok(v) = nifti::read_volume_bytes(Path::new(name), bytes, 0, cap) else { return false };
    let n: u64 = v.dims.iter().map(|&d| d as u64).product();
    assert!(n > 0 && n <= cap, "an accepted volume of {:?} voxels (cap {cap})", v.dims);
    assert_eq!(v.data.len() as u64, n, "voxel buffer length");
    assert!(v.data.iter().all(|x| x.is_finite()), "an accepted volume with non-finite voxels");
    for view in [nifti::View::Axial, nifti::View::Coronal, nifti::View::Sagittal] {
        let k = v.slices(view);
        for i in [0, k / 2, k.saturating_sub(1), k] {
            if let Some((w, h, vals)) = v.slice(view, i) {
                assert_eq!(vals.len(), w * h, "slice buffer length");
            }
        }
        let _ = v.view_spacing(view);
    }
    true
}

fn nifti(_: &Scratch, bytes: &[u8]) -> bool {
    let name = if bytes.starts_with(&[0x1f, 0x8b]) { "fuzz.nii.gz" } else { "fuzz.nii" };
    read_nifti(name, bytes)
}

fn nifti_gz(_: &Scratch, bytes: &[u8]) -> bool {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("in memory");
    read_nifti("fuzz.nii.gz", &gz.finish().expect("in memory"))
}

fn dicom(_: &Scratch, bytes: &[u8]) -> bool {
    let path = Path::new("fuzz.dcm");
    let Ok(obj) = dicom::open_bytes(path, bytes) else { return false };
    let info = dicom::info(&obj);
    let _ = dicom::slice_key(&info);
    let mut any = false;
    for f in 0..info.frames.clamp(1, 4) {
        for window in [Window::File, Window::SOFT_TISSUE] {
            if let Ok(img) = dicom::read_frame_of(&obj, path, f, window, CAP_PIXELS) {
                check_image(&img, CAP_PIXELS);
                any = true;
            }
        }
    }
    any
}

/// Load up to three of `samples` the way `embed` does (skipping the ones that fail), checking what comes back.
fn load_some(root: &Path, samples: &[medpick_core::manifest::Sample]) -> bool {
    let mut loader = SampleLoader::new(root, Window::File);
    loader.max_pixels = CAP_PIXELS;
    let mut any = false;
    for s in samples.iter().take(3) {
        if let Ok(img) = loader.load(s) {
            check_image(&img, CAP_PIXELS);
            any = true;
        }
    }
    any
}

fn npz(s: &Scratch, bytes: &[u8]) -> bool {
    let path = s.file("fuzz.npz", bytes);
    let opts = IngestOptions { max_pixels: CAP_PIXELS, ..Default::default() };
    let mut samples = Vec::new();
    let report = medpick_core::manifest::ingest(
        &path,
        &opts,
        &mut |smp| {
            samples.push(smp.clone());
            Ok(())
        },
        &mut |_, _, _| {},
    );
    match report {
        Ok(_) => load_some(path.parent().expect("in the scratch folder"), &samples) || !samples.is_empty(),
        Err(_) => false,
    }
}

/// The contracts of accepted checkpoint tensors: each holds exactly as many values as its shape says.
fn check_weights(w: &weights::Weights) {
    use medpick_core::data::io::tensors::TensorData;
    for (name, t) in &w.tensors {
        let len = match &t.data {
            TensorData::F32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        };
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert_eq!(numel, Some(len), "tensor {name:?} of shape {:?} holds {len} values", t.shape);
    }
}

fn safetensors(_: &Scratch, bytes: &[u8]) -> bool {
    match weights::read_safetensors_bytes(Path::new("fuzz.safetensors"), bytes) {
        Ok(w) => {
            check_weights(&w);
            true
        }
        Err(_) => false,
    }
}

fn pth(_: &Scratch, bytes: &[u8]) -> bool {
    match pth::read_pth_bytes(Path::new("fuzz.pth"), bytes) {
        Ok(w) => {
            check_weights(&w);
            true
        }
        Err(_) => false,
    }
}

fn manifest(s: &Scratch, bytes: &[u8]) -> bool {
    let path = s.file("fuzz.jsonl", bytes);
    match medpick_core::data::dataset::load(&path, None) {
        Ok(d) => {
            // Samples are read only where the manifest's root is its own folder: a mutated root may name any
            // folder on this machine, and reading the machine's files is not what this target tests.
            if d.root == s.dir.join("data") || d.root == Path::new(".") {
                let _ = load_some(&s.dir.join("data"), &d.samples);
            }
            true
        }
        Err(_) => false,
    }
}

fn csv(s: &Scratch, bytes: &[u8]) -> bool {
    use medpick_core::csv as c;
    let path = s.file("fuzz.csv", bytes);
    let mut any = c::read_rows(&path).is_ok();
    any |= c::read_labels(&path).is_ok();
    any |= c::read_ids(&path).is_ok();
    any |= c::read_id_list(&path).is_ok();
    any |= medpick_core::manifest::read_label_csv(&path).is_ok();
    // As the split file of a one-sample manifest dataset.
    let m = s.file("split.jsonl", MANIFEST_ONE.as_bytes());
    any |= medpick_core::data::dataset::load(&m, Some(&path)).is_ok();
    any
}

const MANIFEST_ONE: &str = concat!(
    r#"{"medpick_manifest":{"version":1,"root":".","created_by":"medpick-fuzz"}}"#,
    "\n",
    r#"{"id":"a.png","kind":"image","source":"a.png","width":4,"height":4,"channels":1}"#,
    "\n"
);

fn features(s: &Scratch, bytes: &[u8]) -> bool {
    let path = s.file("fuzz.safetensors", bytes);
    match medpick_core::features::Features::read(&path) {
        Ok(f) => {
            assert_eq!(f.data.len(), f.ids.len() * f.dim, "feature buffer length");
            assert!(f.data.iter().all(|v| v.is_finite()), "accepted features with non-finite values");
            let distinct: std::collections::HashSet<&String> = f.ids.iter().collect();
            assert_eq!(distinct.len(), f.ids.len(), "accepted features with a repeated id");
            true
        }
        Err(_) => false,
    }
}

fn feature_cache(_: &Scratch, bytes: &[u8]) -> bool {
    match medpick_core::features::parse_cache_entry(bytes) {
        Ok(v) => {
            assert!(
                !v.is_empty() && v.iter().all(|x| x.is_finite()),
                "accepted a cache entry that is empty or not finite"
            );
            // Written back, an accepted entry is the same bytes.
            assert_eq!(medpick_core::features::cache_entry_bytes(&v), bytes, "a cache entry that does not round-trip");
            true
        }
        Err(_) => false,
    }
}

fn http(s: &Scratch, bytes: &[u8]) -> bool {
    use medpick_core::serve;
    let text = String::from_utf8_lossy(bytes);
    let (path, host) = text.split_once('\n').unwrap_or((&text, ""));
    let served = serve::resolve(&s.web_root, path);
    if let Some(p) = &served {
        let root = std::fs::canonicalize(&s.web_root).expect("the web root exists");
        assert!(p.starts_with(&root), "{path:?} served {} outside the root", p.display());
        assert!(p.is_file(), "{path:?} served {}, not a file", p.display());
        let rel = p.strip_prefix(&root).expect("inside");
        assert!(
            !rel.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.')),
            "{path:?} served a hidden file {}",
            p.display()
        );
        let _ = serve::content_type(p);
    }
    let host = (!host.is_empty()).then_some(host);
    for (bind, port) in [("127.0.0.1", 8080u16), ("::1", 80), ("0.0.0.0", 8080)] {
        let ok = serve::host_allowed(host, bind, port);
        if ok && bind != "0.0.0.0" {
            let h = host.expect("a loopback server answers no request without a Host").trim().to_ascii_lowercase();
            assert!(
                h.starts_with("localhost") || h.starts_with("127.0.0.1") || h.starts_with("[::1]"),
                "a loopback server answered Host {h:?}"
            );
        }
    }
    served.is_some()
}

/// Bytes → a feature matrix (n ≤ 48 rows, d ≤ 8), a budget, a seed, a labelled set, a strategy and a backend.
/// Values come from a small alphabet (ties, duplicates, zeros, huge and tiny magnitudes, rarely NaN/Inf) so that
/// the degenerate cases strategies must survive are common.
fn select(_: &Scratch, bytes: &[u8]) -> bool {
    use medpick_core::select::{self as sel, Matrix, SelectInput};
    let mut it = bytes.iter().copied();
    let mut next = move || it.next().unwrap_or(0);
    let strategies: Vec<&str> = sel::COLD_START.iter().copied().chain(["random"]).collect();
    let strategy = strategies[next() as usize % strategies.len()];
    let n = 1 + next() as usize % 48;
    let d = 1 + next() as usize % 8;
    let budget = next() as usize % (n + 2);
    let seed = next() as u64;
    let scans = next() % 2 == 1;
    let n_labeled = next() as usize % 4;
    let labeled: Vec<usize> = (0..n_labeled).map(|_| next() as usize % (n + 1)).collect();
    const ALPHABET: [f32; 16] =
        [0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -0.0, 1e-30, 1e30, -1e30, 1e-45, 0.25, 7.0, -3.5, 1.0, 0.0];
    let data: Vec<f32> = (0..n * d)
        .map(|_| match next() {
            255 => f32::NAN,
            254 => f32::INFINITY,
            b => ALPHABET[b as usize % 16] + (b / 16) as f32 * 0.125,
        })
        .collect();
    let x = Matrix::new(&data, n, d).expect("n x d values");
    let backend = scans.then_some(medpick_core::exec::Backend::Cpu);
    let input = SelectInput { x, budget, seed, labeled: &labeled, scans: backend, weights: None };
    let Ok(s) = pollster::block_on(sel::select_on(strategy, &input)) else { return false };
    assert_eq!(s.picks.len(), budget, "{strategy}: {} picks for a budget of {budget}", s.picks.len());
    let mut seen = std::collections::HashSet::new();
    for &p in &s.picks {
        assert!(p < n, "{strategy}: pick {p} outside the {n} rows");
        assert!(seen.insert(p), "{strategy}: row {p} picked twice");
        assert!(!labeled.contains(&p), "{strategy}: picked the labelled row {p}");
    }
    assert!(data.iter().all(|v| v.is_finite()), "{strategy}: ran on non-finite features");
    true
}

/// `medpick serve`'s label reader: the format by the bytes' magic, as the upload's extension would name it. An
/// accepted label is a binary mask whose size is its dimensions'. The text of the bytes, as an id: accepted names
/// never leave a folder.
fn label(_: &Scratch, bytes: &[u8]) -> bool {
    let ext = if bytes.starts_with(b"NRRD") {
        ".nrrd"
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        ".nii.gz"
    } else if bytes.starts_with(b"\x89PNG") {
        ".png"
    } else {
        ".nii"
    };
    let name = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
    if medpick_server::datastore::check_name("image", &name).is_ok() {
        assert!(!name.contains('/') && !name.contains('\\') && name != ".." && !name.starts_with('.'), "{name:?}");
    }
    let _ = medpick_server::datastore::to_id(&name);
    match medpick_server::labels::read_mask(bytes, ext, "label") {
        Ok(m) => {
            assert!(m.dims.iter().all(|&d| d >= 1), "dims {:?}", m.dims);
            assert_eq!(m.data.len(), m.dims.iter().product::<usize>(), "mask size");
            assert!(m.data.iter().all(|&v| v <= 1), "a binary mask");
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of every target runs without a finding, and each target accepts some of its seeds (a target that
    /// refuses everything would fuzz only the first check of its parser).
    #[test]
    fn fuzz_corpus_seeds_run_clean_and_some_are_accepted() {
        let scratch = Scratch::new().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for t in TARGETS {
            let dir = root.join(t.name);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            assert!(!files.is_empty(), "{}: no corpus", t.name);
            let accepted: Vec<String> = files
                .iter()
                .filter(|p| (t.run)(&scratch, &std::fs::read(p).unwrap()))
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert!(!accepted.is_empty(), "{}: none of its {} seeds is accepted", t.name, files.len());
        }
    }

    /// The real files among the seeds are read: the shared DICOM slices, the MNI152 cut-outs, the BreastMNIST rows.
    #[test]
    fn fuzz_real_seeds_are_accepted() {
        let scratch = Scratch::new().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for (t, f) in [
            ("dicom", "MR_small.dcm"),
            ("dicom", "CT_small.dcm"),
            ("nifti", "mni152-t1-6cube-int16-slope2.nii.gz"),
            ("nifti-gz", "mni152-t1-6x6x3x2-uint8.nii"),
            ("npz", "breastmnist-4-per-split-deflated.npz"),
            ("image", "kvasir-cju2qqn5-32x28.jpg"),
            ("pth", "good_tiny.pth"),
            ("features", "four-rows.safetensors"),
            ("manifest", "dsb2018-three.jsonl"),
        ] {
            let bytes = std::fs::read(root.join(t).join(f)).unwrap();
            assert!((target(t).unwrap().run)(&scratch, &bytes), "{t}: {f} refused");
        }
        let bad = std::fs::read(root.join("feature-cache/eight-values-cut-short.bin")).unwrap();
        assert!(!feature_cache(&scratch, &bad), "a cut-short cache entry was accepted");
    }
}
