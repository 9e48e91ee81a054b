//! Hostile input (issue 29), one test per class of fault, each on files made here: headers that lie, voxels
//! and pixels that are not finite, bombs, truncated images, names that are not UTF-8, a damaged feature cache,
//! outputs that would replace an input, and the exit status of a batch that skipped something.

use std::path::{Path, PathBuf};
use std::process::Command;

use medpick_core::manifest::{IngestOptions, IngestReport};

use crate::cli::{medpick, tmp};
use crate::common::shared;
use crate::io::run as ingest;

/// The reason `name` was skipped (panics when it was not).
fn reason(report: &IngestReport, name: &str) -> String {
    report
        .skipped
        .iter()
        .find(|(p, _)| p.ends_with(name))
        .unwrap_or_else(|| panic!("{name} not skipped: {:?}", report.skipped))
        .1
        .clone()
}

/// A single-file NIfTI-1: a 352-byte header (dims, datatype, bitpix, vox_offset, scaling) and `data`.
fn nifti(dims: &[i16], datatype: i16, bitpix: i16, vox_offset: f32, slope: f32, data: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let mut dim = [1i16; 8];
    dim[0] = dims.len() as i16;
    dim[1..=dims.len()].copy_from_slice(dims);
    for (i, d) in dim.iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&datatype.to_le_bytes());
    h[72..74].copy_from_slice(&bitpix.to_le_bytes());
    for i in 0..8 {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&vox_offset.to_le_bytes());
    h[112..116].copy_from_slice(&slope.to_le_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    [h, data.to_vec()].concat()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn hostile_nifti_headers_and_voxels_are_refused_naming_the_problem() {
    let dir = tmp("hostile-nifti");
    let n = 8usize;
    let i16s: Vec<u8> = (0..n * n * n).flat_map(|i| ((i % 97) as i16).to_le_bytes()).collect();
    let mut nan = vec![0.5f32; n * n * n];
    nan[3 + n * (2 + n)] = f32::NAN;
    let mut inf = vec![0.5f32; n * n * n];
    inf[7] = f32::NEG_INFINITY;
    let d = [n as i16; 3];
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("good.nii", nifti(&d, 4, 16, 352.0, 1.0, &i16s), ""),
        ("complex.nii", nifti(&d, 32, 64, 352.0, 1.0, &vec![0u8; n * n * n * 8]), "datatype complex64 (code 32)"),
        ("rgb.nii", nifti(&d, 128, 24, 352.0, 1.0, &vec![0u8; n * n * n * 3]), "datatype RGB24 (code 128)"),
        ("bitpix.nii", nifti(&d, 4, 8, 352.0, 1.0, &i16s), "bitpix 8 does not match datatype int16"),
        ("zero_dim.nii", nifti(&[8, 0, 8], 4, 16, 352.0, 1.0, &i16s), "dim[2] (the y size) is 0"),
        ("offset_inside.nii", nifti(&d, 4, 16, 100.0, 1.0, &i16s), "vox_offset 100"),
        ("offset_far.nii", nifti(&d, 4, 16, 1e9, 1.0, &i16s), "vox_offset 1000000000"),
        ("offset_fraction.nii", nifti(&d, 4, 16, 352.5, 1.0, &i16s), "vox_offset 352.5"),
        ("short.nii", nifti(&d, 4, 16, 352.0, 1.0, &i16s[..i16s.len() / 2]), "truncated NIfTI"),
        ("offset_past_data.nii", nifti(&d, 4, 16, 368.0, 1.0, &i16s), "truncated NIfTI"),
        ("nan_slope.nii", nifti(&d, 4, 16, 352.0, f32::NAN, &i16s), "scl_slope NaN"),
        ("nan_voxel.nii", nifti(&d, 16, 32, 352.0, 1.0, &f32_bytes(&nan)), "the first (3, 2, 1) is NaN"),
        ("inf_voxel.nii", nifti(&d, 16, 32, 352.0, 1.0, &f32_bytes(&inf)), "is -inf"),
    ];
    for (name, bytes, _) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let (samples, report) = ingest(&dir, &IngestOptions::default());
    assert!(!samples.is_empty() && samples.iter().all(|s| s.source == "good.nii"), "only good.nii is read");
    assert_eq!(report.skipped.len(), files.len() - 1, "{:?}", report.skipped);
    for (name, _, want) in files.iter().skip(1) {
        let m = reason(&report, name);
        assert!(m.contains(name) && m.contains(want), "{name}: {m}");
    }
    assert!(reason(&report, "complex.nii").contains("unsupported"), "a valid but unsupported type is not 'corrupt'");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_bombs_are_refused_from_the_header_and_the_cap_can_be_raised() {
    let dir = tmp("hostile-bombs");
    // A PNG header claiming 16000 × 16000 (a few hundred KB of zlib would inflate to 256 MB of grey, 3 GB as
    // RGB floats), and a NIfTI header claiming 1024³ voxels with no voxel data at all: both refused before a
    // byte of pixel data is read or allocated.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let ihdr = [&16000u32.to_be_bytes()[..], &16000u32.to_be_bytes(), &[8, 0, 0, 0, 0]].concat();
    png.extend_from_slice(&(ihdr.len() as u32).to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&[b"IHDR".as_slice(), &ihdr].concat()).to_be_bytes());
    // An IDAT holding an empty zlib stream, and IEND: a well-formed file whose data falls short of its header.
    for (kind, body) in [(b"IDAT", &[0x78u8, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01][..]), (b"IEND", &[][..])] {
        png.extend_from_slice(&(body.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(body);
        png.extend_from_slice(&crc32(&[kind.as_slice(), body].concat()).to_be_bytes());
    }
    std::fs::write(dir.join("bomb.png"), &png).unwrap();
    std::fs::write(dir.join("bomb.nii"), nifti(&[1024, 1024, 1024], 2, 8, 352.0, 1.0, &[])).unwrap();
    let (samples, report) = ingest(&dir, &IngestOptions::default());
    assert!(samples.is_empty());
    let m = reason(&report, "bomb.png");
    assert!(m.contains("16000x16000") && m.contains("size cap of 67108864"), "{m}");
    let m = reason(&report, "bomb.nii");
    assert!(m.contains("1024x1024x1024") && m.contains("size cap"), "{m}");
    assert_eq!(report.over_size_cap, 2);
    // Raised past them, the cap no longer refuses: the PNG is then refused for what it is (no image data).
    let raised = IngestOptions { max_pixels: 1 << 31, ..IngestOptions::default() };
    let (_, report) = ingest(&dir, &raised);
    let m = reason(&report, "bomb.png");
    assert!(!m.contains("size cap"), "{m}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// CRC-32 (PNG's), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn hostile_truncated_jpegs_are_refused_not_embedded_as_if_whole() {
    let Some(sh) = shared() else { return };
    let dir = tmp("hostile-jpeg");
    let mut jpgs: Vec<PathBuf> = std::fs::read_dir(sh.join("data/kvasir-seg/images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    jpgs.sort();
    let whole = std::fs::read(&jpgs[0]).unwrap();
    std::fs::write(dir.join("whole.jpg"), &whole).unwrap();
    for (name, keep) in [("cut30.jpg", 30), ("cut90.jpg", 90), ("cut99.jpg", 99)] {
        std::fs::write(dir.join(name), &whole[..whole.len() * keep / 100]).unwrap();
    }
    let (samples, report) = ingest(&dir, &IngestOptions::default());
    assert_eq!(samples.iter().map(|s| s.source.as_str()).collect::<Vec<_>>(), vec!["whole.jpg"]);
    for name in ["cut30.jpg", "cut90.jpg", "cut99.jpg"] {
        let m = reason(&report, name);
        assert!(m.contains("truncated JPEG"), "{name}: {m}");
    }
    // The same check where images are decoded for embedding.
    let err = medpick_core::io::decode_image_file(&dir.join("cut90.jpg"), 1 << 26).unwrap_err().to_string();
    assert!(err.contains("cut90.jpg") && err.contains("truncated JPEG"), "{err}");
    assert!(medpick_core::io::decode_image_file(&dir.join("whole.jpg"), 1 << 26).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_dicom_with_zero_rows_is_refused_at_ingest() {
    let Some(sh) = shared() else { return };
    let dir = tmp("hostile-dicom");
    let good = std::fs::read(sh.join("data/dicom/CT_small.dcm")).unwrap();
    // (0028,0010) Rows, explicit VR little endian: 28 00 10 00 'U' 'S' 02 00 <u16>.
    let tag = [0x28, 0x00, 0x10, 0x00, b'U', b'S', 0x02, 0x00];
    let at = good.windows(8).position(|w| w == tag).expect("Rows in CT_small.dcm") + 8;
    let mut bad = good.clone();
    bad[at..at + 2].copy_from_slice(&[0, 0]);
    std::fs::write(dir.join("good.dcm"), &good).unwrap();
    std::fs::write(dir.join("rows0.dcm"), &bad).unwrap();
    let (samples, report) = ingest(&dir, &IngestOptions::default());
    assert_eq!(samples.len(), 1, "good.dcm still ingested: {:?}", report.skipped);
    let m = reason(&report, "rows0.dcm");
    assert!(m.contains("Rows (0028,0010) is 0"), "{m}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn hostile_non_utf8_names_are_skipped_with_the_reason_and_the_batch_goes_on() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tmp("hostile-names");
    let png = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/bad/good.png")).unwrap();
    std::fs::write(dir.join("plain.png"), &png).unwrap();
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"name_\xff\xfe.png")), &png).unwrap();
    let (samples, report) = ingest(&dir, &IngestOptions::default());
    assert_eq!(samples.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["plain.png"]);
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].1.contains("not valid UTF-8"), "{:?}", report.skipped);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `medpick embed <input> --model pixels --cache <cache> --out <out>`: (exit code, stdout + stderr).
fn embed_pixels(input: &Path, cache: &Path, out: &Path) -> (Option<i32>, String) {
    let o = Command::new(medpick())
        .arg("embed")
        .arg(input)
        .args(["--model", "pixels", "--device", "cpu", "--force", "--cache"])
        .arg(cache)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn hostile_damaged_feature_cache_entries_are_embedded_again_never_used() {
    let dir = tmp("hostile-cache");
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018");
    let cache = dir.join("cache");
    let (code, log) = embed_pixels(&samples, &cache, &dir.join("a.safetensors"));
    assert_eq!(code, Some(0), "{log}");
    let a = medpick_core::features::Features::read(&dir.join("a.safetensors")).unwrap();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(cache.join("pixels-mean"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "f32"))
        .collect();
    entries.sort();
    assert_eq!(entries.len(), a.ids.len());
    // Cut short, a value overwritten in place (the checksum catches it), another entry's bytes copied over
    // (right length and trailer, wrong checksum for nothing: it is a valid entry of another image — its key
    // names this image, so its values would be wrong), and a plain old-format entry without a trailer.
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    let b0 = bytes(&entries[0]);
    std::fs::write(&entries[0], &b0[..b0.len() / 2]).unwrap();
    let mut b1 = bytes(&entries[1]);
    b1[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&entries[1], &b1).unwrap();
    let b3 = bytes(&entries[3]);
    std::fs::write(&entries[2], &b3[..b3.len() - 32]).unwrap();
    let (code, log) = embed_pixels(&samples, &cache, &dir.join("b.safetensors"));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("3 feature-cache entries could not be used and were embedded again"), "{log}");
    let b = medpick_core::features::Features::read(&dir.join("b.safetensors")).unwrap();
    assert_eq!((&b.ids, &b.data), (&a.ids, &a.data), "the damaged entries were recomputed, not used");
    // Repaired: the next run reads every entry from the cache.
    let (_, log) = embed_pixels(&samples, &cache, &dir.join("c.safetensors"));
    assert!(log.contains(&format!("{} from cache", a.ids.len())) && !log.contains("could not be used"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_skipped_inputs_exit_3_and_outputs_never_replace_inputs() {
    let dir = tmp("hostile-exit");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/bad");
    std::fs::copy(bad.join("good.png"), data.join("good.png")).unwrap();
    std::fs::copy(bad.join("truncated.png"), data.join("truncated.png")).unwrap();
    let feats = dir.join("f.safetensors");
    let (code, log) = embed_pixels(&data, &dir.join("cache"), &feats);
    assert_eq!(code, Some(3), "a skipped input exits 3: {log}");
    assert!(log.contains("truncated.png") && log.contains("wrote"), "{log}");
    assert_eq!(medpick_core::features::Features::read(&feats).unwrap().ids, vec!["good.png"]);
    // --force never lets an output replace an input: the feature file itself, or an image in the input folder.
    let before = std::fs::read(&feats).unwrap();
    let o = Command::new(medpick())
        .arg("select")
        .arg(&feats)
        .args(["--budget", "1", "--strategy", "random", "--force", "--out"])
        .arg(&feats)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("never writes over its inputs"), "{err}");
    assert_eq!(std::fs::read(&feats).unwrap(), before, "the input is untouched");
    let png = std::fs::read(data.join("good.png")).unwrap();
    let (code, log) = embed_pixels(&data, &dir.join("cache"), &data.join("good.png"));
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("data file inside the input"), "{log}");
    assert_eq!(std::fs::read(data.join("good.png")).unwrap(), png);
    // A negative count is named as such, not taken for a flag.
    let o = Command::new(medpick())
        .arg("select")
        .arg(&feats)
        .args(["--budget", "-1", "--out"])
        .arg(dir.join("p.csv"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("-1 is negative") && !err.contains("-- -1"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_dicom_lengths_and_bit_depths_that_lie_are_refused_before_decoding() {
    let Some(sh) = shared() else { return };
    let dir = tmp("hostile-dicom-lengths");
    let good = std::fs::read(sh.join("data/dicom/CT_small.dcm")).unwrap();
    let find = |tag: &[u8]| good.windows(tag.len()).position(|w| w == tag).expect("tag in CT_small.dcm") + tag.len();
    // Pixel Data (7FE0,0010) OW with a 32-bit length: declare 2 GB in a 39 kB file. dicom-rs would allocate and
    // zero-fill the declared length before reading; medpick walks the headers first.
    let at = find(&[0xe0, 0x7f, 0x10, 0x00, b'O', b'W', 0, 0]);
    let mut huge = good.clone();
    huge[at..at + 4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    // Bits Stored (0028,0101) 0: the pixel decoder asserts on it (a panic) — refused by name instead.
    let at = find(&[0x28, 0x00, 0x01, 0x01, b'U', b'S', 0x02, 0x00]);
    let mut bits0 = good.clone();
    bits0[at..at + 2].copy_from_slice(&[0, 0]);
    std::fs::write(dir.join("good.dcm"), &good).unwrap();
    std::fs::write(dir.join("huge_length.dcm"), &huge).unwrap();
    std::fs::write(dir.join("bits_stored_0.dcm"), &bits0).unwrap();
    let (samples, report) = ingest(&dir, &IngestOptions::default());
    assert_eq!(samples.len(), 1, "good.dcm still ingested: {:?}", report.skipped);
    let m = reason(&report, "huge_length.dcm");
    assert!(m.contains("(7FE0,0010) declares 2147483632 bytes"), "{m}");
    let m = reason(&report, "bits_stored_0.dcm");
    assert!(m.contains("Bits Stored (0028,0101) 0"), "{m}");
    // The same from bytes (the browser's path).
    let e = medpick_core::io::dicom::open_bytes(Path::new("huge_length.dcm"), &huge).unwrap_err().to_string();
    assert!(e.contains("huge_length.dcm") && e.contains("declares"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_nifti_extension_sizes_that_lie_are_refused() {
    let dir = tmp("hostile-nifti-ext");
    let data = f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    // An extension flag at byte 348, one extension of 16 bytes, the voxels at 368: read.
    let ext = |esize: i32| {
        let mut e = esize.to_le_bytes().to_vec();
        e.extend_from_slice(&4i32.to_le_bytes()); // ecode
        e.extend_from_slice(&[0u8; 8]);
        e
    };
    let with_ext = |esize: i32| {
        let mut f = nifti(&[2, 2, 2], 16, 32, 368.0, 1.0, &[ext(esize), data.clone()].concat());
        f[348] = 1;
        f
    };
    std::fs::write(dir.join("ok_ext.nii"), with_ext(16)).unwrap();
    // The nifti crate reserves each extension's esize before reading it: 2 GB from one field.
    std::fs::write(dir.join("esize_2gb.nii"), with_ext(0x7fff_fff0)).unwrap();
    std::fs::write(dir.join("esize_negative.nii"), with_ext(-16)).unwrap();
    let (samples, report) = ingest(&dir, &IngestOptions::default());
    assert_eq!(samples.len(), 2, "ok_ext.nii (2 axial slices) still ingested: {:?}", report.skipped);
    for (name, esize) in [("esize_2gb.nii", "2147483632"), ("esize_negative.nii", "-16")] {
        let m = reason(&report, name);
        assert!(m.contains(&format!("declares esize {esize}")) && m.contains("vox_offset 368"), "{m}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_npz_arrays_without_an_image_axis_are_refused_not_a_panic() {
    // Found by the `npz` fuzz target: an images array whose header has no axes (shape ()) or an axis of 0.
    let dir = tmp("hostile-npz");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/npz");
    for f in ["regress-crash-13739fc621815e86.npz", "regress-crash-d9b861f81523a8a8.npz"] {
        std::fs::copy(root.join(f), dir.join(f)).unwrap();
    }
    let (samples, report) = ingest(&dir, &IngestOptions::default());
    assert!(samples.is_empty(), "{samples:?}");
    for f in ["regress-crash-13739fc621815e86.npz", "regress-crash-d9b861f81523a8a8.npz"] {
        let m = reason(&report, f);
        assert!(m.contains("train_images: shape [] holds no images"), "{f}: {m}");
    }
    // Every input failed: the CLI says so and exits 2, writing no (empty) manifest.
    let out = dir.with_extension("jsonl");
    let o = Command::new(medpick()).arg("ingest").arg(&dir).arg("--out").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no sample could be read") && !out.exists(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
