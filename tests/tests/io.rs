//! Ingestion: every dataset in ../shared/data, the DICOM/NIfTI specifics, preprocessing against the fixtures,
//! and the bad-input corpus in tests/data/bad.

use std::path::{Path, PathBuf};

use medpick_core::io::dicom;
use medpick_core::io::nifti::{self, View};
use medpick_core::io::Window;
use medpick_core::manifest::{self, IngestOptions, IngestReport, LabelSource, Sample, Split};
use medpick_core::preprocess;

use crate::common::{load_safetensors, shared};

/// Ingest `input` in memory: its samples and the report (panics when the ingest itself fails).
pub(crate) fn run(input: &Path, opts: &IngestOptions) -> (Vec<Sample>, IngestReport) {
    let mut samples = Vec::new();
    let report = manifest::ingest(
        input,
        opts,
        &mut |s| {
            samples.push(s.clone());
            Ok(())
        },
        &mut |_, _, _| {},
    )
    .unwrap_or_else(|e| panic!("ingest {}: {e}", input.display()));
    (samples, report)
}

fn bad_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/bad")
}

#[test]
fn kvasir_seg_1000_pairs_with_equal_mask_sizes() {
    let Some(sh) = shared() else { return };
    let (samples, report) = run(&sh.join("data/kvasir-seg"), &IngestOptions::default());
    assert_eq!(report.skipped, vec![], "nothing may be skipped");
    assert_eq!(samples.len(), 1000);
    assert!(samples.iter().all(|s| s.masks.len() == 1 && s.channels == 3 && s.id.starts_with("images/")));
    assert_eq!(report.with_mask, 1000);
    // Ids are stable and sorted.
    let mut ids: Vec<_> = samples.iter().map(|s| s.id.clone()).collect();
    let orig = ids.clone();
    ids.sort();
    assert_eq!(ids, orig);
}

#[test]
fn dsb2018_664_images_28986_nuclei() {
    let Some(sh) = shared() else { return };
    let (samples, report) = run(&sh.join("data/dsb2018"), &IngestOptions::default());
    assert_eq!(report.skipped, vec![]);
    assert_eq!(samples.len(), 664);
    assert_eq!(report.instances_total, 28_986);
    assert!(samples.iter().all(|s| s.mask_kind == Some(manifest::MaskKind::Instances)));
    let grey = samples.iter().filter(|s| s.channels == 1).count();
    assert_eq!((grey, samples.len() - grey), (557, 107));
}

#[test]
fn chase_db1_28_images_two_observers() {
    let Some(sh) = shared() else { return };
    let opts = IngestOptions { mask_suffixes: vec!["_1stHO".into(), "_2ndHO".into()], ..Default::default() };
    let (samples, report) = run(&sh.join("data/chase-db1"), &opts);
    assert_eq!(report.skipped, vec![]);
    assert_eq!(samples.len(), 28);
    for s in &samples {
        assert_eq!(s.masks.len(), 2, "{}", s.id);
        assert!(s.masks[0].ends_with("_1stHO.png") && s.masks[1].ends_with("_2ndHO.png"));
        assert_eq!((s.width, s.height), (999, 960));
    }
}

#[test]
fn breastmnist_split_sizes_and_labels() {
    let Some(sh) = shared() else { return };
    let (samples, report) = run(&sh.join("data/medmnist/breastmnist.npz"), &IngestOptions::default());
    assert_eq!(report.skipped, vec![]);
    let count = |sp| samples.iter().filter(|s| s.given_split == Some(sp)).count();
    assert_eq!((count(Split::Train), count(Split::Val), count(Split::Test)), (546, 78, 156));
    assert!(samples.iter().all(|s| (s.width, s.height, s.channels) == (28, 28, 1)));
    assert!(samples.iter().all(|s| matches!(s.label.as_deref(), Some("0") | Some("1"))));
    assert_eq!(report.per_label.len(), 2);
    // The split keeps the dataset's own split.
    let split = manifest::make_split(&samples, 0, 0.1, 0.2).unwrap();
    assert_eq!(split.iter().filter(|(_, s)| *s == Split::Test).count(), 156);
}

#[test]
fn adrenalmnist3d_volumes_as_slices() {
    let Some(sh) = shared() else { return };
    let (samples, report) = run(&sh.join("data/medmnist/adrenalmnist3d.npz"), &IngestOptions::default());
    assert_eq!(report.skipped, vec![]);
    assert_eq!(samples.len(), 1584 * 28);
    assert!(samples.iter().all(|s| (s.width, s.height) == (28, 28) && s.view == Some(View::Axial)));
    assert_eq!(samples.iter().filter(|s| s.given_split == Some(Split::Train)).count(), 1188 * 28);
    // All slices of a volume share a group (so a split never separates them).
    let first: Vec<_> = samples.iter().filter(|s| s.group == samples[0].group).collect();
    assert_eq!(first.len(), 28);
    // A slice loads as a 28x28 plane.
    let mut loader = manifest::SampleLoader::new(&sh.join("data/medmnist"), Window::AUTO);
    let img = loader.load(&samples[40]).unwrap();
    assert_eq!((img.width, img.height), (28, 28));
}

/// NIfTI images with label volumes (images/ + labels/, and the Decathlon's imagesTr/ + labelsTr/): every axial
/// slice gets its label slice as mask; a label that would not slice like its image, and an image without a label,
/// are skipped with reasons naming them.
#[test]
fn nifti_label_volumes_give_each_slice_its_mask() {
    let dir = std::env::temp_dir().join(format!("medpick-niftiseg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let Some((root, per_z)) = crate::common::mni_seg_dataset(&dir) else { return };
    let (samples, report) = run(&root, &IngestOptions::default());
    assert_eq!(report.skipped, vec![]);
    assert_eq!(samples.len(), 2 * 64);
    assert_eq!(report.with_mask, 2 * 64);
    let mut loader = manifest::MaskLoader::new(&root);
    for (v, name) in ["mni", "mni_flip"].iter().enumerate() {
        for k in 0..64 {
            let s = &samples[v * 64 + k];
            assert_eq!(s.id, format!("images/{name}.nii.gz#axial:{k}"));
            assert_eq!((s.width, s.height), (140, 180));
            assert_eq!(s.masks, vec![format!("labels/{name}.nii.gz")]);
            assert_eq!(s.mask_kind, Some(manifest::MaskKind::Volume));
            let (w, h, m) = loader.load(s, 0).unwrap();
            assert_eq!((w, h), (140, 180));
            assert_eq!(m.iter().filter(|&&b| b == 1).count(), per_z[k], "{}", s.id);
        }
    }
    // The Medical Segmentation Decathlon layout reads the same.
    let msd = dir.join("msd");
    std::fs::create_dir_all(&msd).unwrap();
    std::fs::rename(root.join("images"), msd.join("imagesTr")).unwrap();
    std::fs::rename(root.join("labels"), msd.join("labelsTr")).unwrap();
    let (msd_samples, report) = run(&msd, &IngestOptions::default());
    assert_eq!((msd_samples.len(), report.with_mask, report.skipped.len()), (128, 128, 0));
    assert_eq!(msd_samples[0].masks, vec!["labelsTr/mni.nii.gz".to_string()]);
    // The browser's dropped-folder path takes imagesTr/ only (labelsTr/ set aside as masks), in the same order.
    upload_matches_ingest(&msd);
    let paths: Vec<String> = browser_listing(&msd).into_iter().map(|(r, _)| r).collect();
    let plan = medpick_core::upload::plan(&paths);
    assert_eq!(plan.order.len(), 2);
    assert!(plan.skipped.iter().any(|(p, why)| p.starts_with("labelsTr/") && why.contains("beside imagesTr/")));
    // A label transposed (180×140 slices for 140×180 images) and an image without a label.
    std::fs::copy(msd.join("imagesTr/mni.nii.gz"), msd.join("imagesTr/nolabel.nii.gz")).unwrap();
    let sag = dir.join("sag.nii.gz");
    let header = nifti::read_header(&msd.join("labelsTr/mni.nii.gz")).unwrap();
    write_transposed(&msd.join("labelsTr/mni_flip.nii.gz"), &sag, &header);
    std::fs::rename(&sag, msd.join("labelsTr/mni_flip.nii.gz")).unwrap();
    let (after, report) = run(&msd, &IngestOptions::default());
    assert_eq!(after.len(), 64, "only mni keeps its slices");
    let reasons: Vec<String> = report.skipped.iter().map(|(p, r)| format!("{p}: {r}")).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("imagesTr/nolabel.nii.gz") && r.contains("no label volume")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("labelsTr/mni_flip.nii.gz") && r.contains("would not slice alike")),
        "{reasons:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Write `src`'s voxels with x and y swapped (dims 180×140×64) under the header `h`.
fn write_transposed(src: &Path, dst: &Path, h: &::nifti::NiftiHeader) {
    use ::nifti::{IntoNdArray, NiftiObject};
    let obj = ::nifti::ReaderOptions::new().read_file(src).unwrap();
    let a = obj.into_volume().into_ndarray::<u8>().unwrap();
    let t = a.permuted_axes(vec![1, 0, 2]).as_standard_layout().to_owned();
    ::nifti::writer::WriterOptions::new(dst).reference_header(h).write_nifti(&t).unwrap();
}

#[test]
fn mni152_sliced_along_each_axis() {
    let Some(sh) = shared() else { return };
    let path = sh.join("data/nifti-mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz");
    let vol = nifti::read_volume(&path, 0, 1 << 30).unwrap();
    assert_eq!(vol.dims, [197, 233, 189]);
    assert_eq!((vol.slices(View::Sagittal), vol.slices(View::Coronal), vol.slices(View::Axial)), (197, 233, 189));
    let (w, h, _) = vol.slice(View::Axial, 94).unwrap();
    assert_eq!((w, h), (197, 233));
    let (w, h, _) = vol.slice(View::Coronal, 100).unwrap();
    assert_eq!((w, h), (197, 189));
    let (w, h, _) = vol.slice(View::Sagittal, 98).unwrap();
    assert_eq!((w, h), (233, 189));
    // Axial really is axial: the top of a coronal slice is superior, where the brain ends and the T1 signal
    // of the head's top rows is low; the middle of the axial stack cuts through brain (high mean).
    let opts = IngestOptions { views: View::ALL.to_vec(), ..Default::default() };
    let (samples, report) = run(&sh.join("data/nifti-mni152"), &opts);
    assert_eq!(report.skipped, vec![]);
    assert_eq!(samples.len(), 3 * (197 + 233 + 189));
    let ax = samples.iter().filter(|s| s.view == Some(View::Axial)).count();
    assert_eq!(ax, 3 * 189);
    let s = samples.iter().find(|s| s.id.ends_with("t1_tal_nlin_sym_09a_converted.nii.gz#axial:94")).unwrap();
    assert_eq!(s.spacing.as_deref(), Some(&[1.0f32, 1.0, 1.0][..]));
}

#[test]
fn ct_small_in_hounsfield_units() {
    let Some(sh) = shared() else { return };
    let path = sh.join("data/dicom/CT_small.dcm");
    let obj = dicom_object::open_file(&path).unwrap();
    use dicom_dictionary_std::tags;
    let slope = obj.element(tags::RESCALE_SLOPE).unwrap().to_float64().unwrap();
    let intercept = obj.element(tags::RESCALE_INTERCEPT).unwrap().to_float64().unwrap();
    assert_eq!(obj.element(tags::BITS_ALLOCATED).unwrap().to_int::<u16>().unwrap(), 16);
    let signed = obj.element(tags::PIXEL_REPRESENTATION).unwrap().to_int::<u16>().unwrap() == 1;
    let raw = obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    let stored = |i: usize| -> f64 {
        let v = u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]]);
        if signed {
            v as i16 as f64
        } else {
            v as f64
        }
    };
    let (w, h, hu) = dicom::read_modality_values(&path, 0).unwrap();
    assert_eq!((w, h), (128, 128));
    for i in [0usize, 1, 64 * 128 + 64, 100 * 128 + 30, 128 * 128 - 1] {
        let want = stored(i) * slope + intercept;
        assert!((hu[i] as f64 - want).abs() < 1e-3, "pixel {i}: got {} HU, by hand {want}", hu[i]);
    }
    // A soft-tissue window maps 40 HU to 0.5.
    let img = dicom::read_frame(&path, 0, Window::SOFT_TISSUE, 1 << 28).unwrap();
    let medpick_core::io::Pixels::F32(v) = &img.pixels else { panic!("windowed DICOM is f32") };
    for i in [0usize, 64 * 128 + 64] {
        let want = ((hu[i] as f64 - (40.0 - 200.0)) / 400.0).clamp(0.0, 1.0);
        assert!((v[i] as f64 - want).abs() < 1e-6);
    }
}

#[test]
fn mr_small_reads() {
    let Some(sh) = shared() else { return };
    let (samples, report) = run(&sh.join("data/dicom"), &IngestOptions::default());
    let mr = samples.iter().find(|s| s.id == "MR_small.dcm").expect("MR_small.dcm ingested");
    assert_eq!((mr.width, mr.height, mr.channels), (64, 64, 1));
    assert!(samples.iter().any(|s| s.id == "CT_small.dcm"));
    let seg = samples.iter().find(|s| s.id == "liver_1frame.dcm").expect("1-bit DICOM SEG ingested");
    assert_eq!((seg.width, seg.height), (512, 512));
    // README.txt is noted as not media; nothing else skipped.
    assert!(report.skipped.iter().all(|(p, _)| p == "README.txt"), "{:?}", report.skipped);
}

#[test]
fn dicom_series_with_a_missing_slice_is_reported() {
    let Some(sh) = shared() else { return };
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let dir = std::env::temp_dir().join(format!("medpick-series-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Slices at z = 0, 5, 10, 20, 25 mm: the one at 15 is missing.
    for (i, z) in [0.0f64, 5.0, 10.0, 20.0, 25.0].iter().enumerate() {
        let mut obj = dicom_object::open_file(sh.join("data/dicom/CT_small.dcm")).unwrap();
        obj.put(DataElement::new(tags::IMAGE_POSITION_PATIENT, VR::DS, PrimitiveValue::from(format!("0\\0\\{z}"))));
        obj.put(DataElement::new(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, PrimitiveValue::from("1\\0\\0\\0\\1\\0")));
        obj.put(DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.4.5")));
        obj.put(DataElement::new(tags::INSTANCE_NUMBER, VR::IS, PrimitiveValue::from(format!("{}", i + 1))));
        obj.write_to_file(dir.join(format!("slice{i}.dcm"))).unwrap();
    }
    let (samples, report) = run(&dir, &IngestOptions::default());
    assert!(samples.is_empty());
    assert_eq!(report.skipped.len(), 5);
    let msg = &report.skipped[0].1;
    assert!(msg.contains("missing slice") && msg.contains("slice2.dcm") && msg.contains("slice3.dcm"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn litemedsam_preprocessing_matches_fixtures() {
    let Some(sh) = shared() else { return };
    let dir = sh.join("fixtures/litemedsam");
    let mut n = 0;
    for name in ["kvasir_1", "kvasir_2", "kvasir_3", "dsb2018_1", "dsb2018_2", "brainmri_1"] {
        let t = load_safetensors(&dir.join(format!("{name}.safetensors")));
        let (shape, rgb) = &t["image_rgb_u8"];
        let rgb: Vec<u8> = rgb.iter().map(|&v| v as u8).collect();
        let got = preprocess::litemedsam_from_rgb_u8(&rgb, shape[0], shape[1]);
        let want = &t["input"].1;
        assert_eq!(got.len(), want.len());
        let max = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max <= 1e-6, "{name}: max abs diff {max}");
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn litemedsam_preprocessing_from_the_dataset_file() {
    let Some(sh) = shared() else { return };
    // The ingestion path (decode the PNG from ../shared/data) reproduces the fixture's input: PNG decoding is
    // lossless, so this must match as well as from image_rgb_u8.
    let t = load_safetensors(&sh.join("fixtures/litemedsam/dsb2018_1.safetensors"));
    let img = medpick_core::io::decode_image_file(
        &sh.join("data/dsb2018/images/00ae65c1c6631ae6f2be1a449902976e6eb8483bf6b0740d00530220832c6d3e.png"),
        1 << 28,
    )
    .unwrap();
    let got = preprocess::litemedsam_input(&img);
    let max = got.iter().zip(&t["input"].1).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max <= 1e-6, "max abs diff {max}");
}

#[test]
fn dinov2_preprocessing_matches_fixtures() {
    let Some(sh) = shared() else { return };
    let t = load_safetensors(&sh.join("fixtures/dinov2/inputs.safetensors"));
    for (case, src, crop_w) in [
        ("kvasir_2", "kvasir_2", 224),
        ("brainmri_1", "brainmri_1", 224),
        ("dsb2018_1", "dsb2018_1", 224),
        ("kvasir_2_224x308", "kvasir_2", 308),
    ] {
        let (shape, rgb) = &t[&format!("{src}_image_rgb_u8")];
        let rgb: Vec<u8> = rgb.iter().map(|&v| v as u8).collect();
        let (px, resized, (rh, rw)) = preprocess::dinov2_from_rgb_u8(&rgb, shape[0], shape[1], 224, crop_w);
        let (rshape, want_resized) = &t[&format!("{src}_resized_rgb_u8")];
        assert_eq!((rh, rw), (rshape[0], rshape[1]), "{case}: resized size");
        let diff = resized.iter().zip(want_resized).filter(|(a, b)| **a as f32 != **b).count();
        assert_eq!(diff, 0, "{case}: {diff} resized values differ (must be bit-exact)");
        let want = &t[&format!("{case}_pixel_values")].1;
        assert_eq!(px.len(), want.len());
        let max = px.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max <= 1e-6, "{case}: pixel_values max abs diff {max}");
    }
}

// ---- bad input -------------------------------------------------------------------------------------------

fn single_error(name: &str) -> String {
    let p = bad_dir().join(name);
    let (samples, report) = run(&p, &IngestOptions::default());
    assert!(samples.is_empty(), "{name} produced samples");
    assert_eq!(report.skipped.len(), 1, "{name}: {:?}", report.skipped);
    let (path, msg) = &report.skipped[0];
    assert!(path.ends_with(name), "error names {path}, expected {name}");
    msg.clone()
}

#[test]
fn bad_zero_byte_file() {
    let m = single_error("zero_bytes.png");
    assert!(m.contains("zero_bytes.png") && m.contains("0 bytes"), "{m}");
}

#[test]
fn bad_truncated_png() {
    let m = single_error("truncated.png");
    assert!(m.contains("truncated.png") && (m.contains("corrupt") || m.contains("truncated")), "{m}");
}

#[test]
fn bad_huge_header_refused_before_allocating() {
    let m = single_error("huge_header.png");
    assert!(m.contains("100000x100000") && m.contains("size cap"), "{m}");
}

#[test]
fn bad_corrupt_jpeg() {
    let m = single_error("corrupt.jpg");
    assert!(m.contains("corrupt.jpg"), "{m}");
}

#[test]
fn bad_text_named_png() {
    let m = single_error("text_named.png");
    assert!(m.contains("text_named.png") && m.contains("not a PNG"), "{m}");
}

#[test]
fn bad_truncated_nifti() {
    let m = single_error("truncated.nii.gz");
    assert!(m.contains("truncated.nii.gz"), "{m}");
}

#[test]
fn bad_corrupt_dicom() {
    let m = single_error("corrupt.dcm");
    assert!(m.contains("corrupt.dcm") && m.contains("DICOM"), "{m}");
}

#[test]
fn bad_truncated_npz() {
    let m = single_error("truncated.npz");
    assert!(m.contains("truncated.npz") && m.contains("npz"), "{m}");
}

#[test]
fn bad_unreadable_file() {
    let (_, report) = run(&bad_dir(), &IngestOptions::default());
    let (p, m) = report.skipped.iter().find(|(p, _)| p.ends_with("unreadable.png")).expect("unreadable.png reported");
    assert!(m.contains("cannot read") && m.contains("unreadable.png"), "{p}: {m}");
}

#[test]
fn bad_mask_size_mismatch() {
    let (samples, report) = run(&bad_dir().join("mismatch"), &IngestOptions::default());
    assert_eq!(samples.len(), 1, "case2 is fine");
    assert_eq!(samples[0].id, "images/case2.png");
    assert_eq!(report.skipped.len(), 1);
    let (p, m) = &report.skipped[0];
    assert_eq!(p, "images/case1.png");
    assert!(m.contains("masks/case1.png") && m.contains("4x4") && m.contains("8x8"), "{m}");
}

#[test]
fn bad_empty_folder() {
    let dir = std::env::temp_dir().join(format!("medpick-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = manifest::ingest(&dir, &IngestOptions::default(), &mut |_| Ok(()), &mut |_, _, _| {}).unwrap_err();
    assert!(err.to_string().contains("no files found"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_batch_skips_broken_files_and_keeps_the_rest() {
    let before = dir_digest(&bad_dir());
    let (samples, report) = run(&bad_dir(), &IngestOptions::default());
    let ids: Vec<_> = samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "good.png",
            "mismatch/images/case1.png",
            "mismatch/images/case2.png",
            "mismatch/masks/case1.png",
            "mismatch/masks/case2.png"
        ]
    );
    let skipped: Vec<_> = report.skipped.iter().map(|(p, _)| p.as_str()).collect();
    for f in [
        "zero_bytes.png",
        "truncated.png",
        "huge_header.png",
        "corrupt.jpg",
        "text_named.png",
        "truncated.nii.gz",
        "corrupt.dcm",
        "truncated.npz",
        "unreadable.png",
    ] {
        assert!(skipped.iter().any(|p| p.ends_with(f)), "{f} not reported as skipped: {skipped:?}");
    }
    assert_eq!(dir_digest(&bad_dir()), before, "inputs must never be modified");
}

fn dir_digest(dir: &Path) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    let mut notes = medpick_core::io::walk::WalkNotes::default();
    medpick_core::io::walk::walk_files(dir, &mut notes, &mut |p| {
        let bytes = std::fs::read(p).unwrap_or_default();
        let h = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        v.push((p.display().to_string(), h));
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn manifest_round_trip_and_split_is_deterministic() {
    let Some(sh) = shared() else { return };
    let (samples, _) = run(
        &sh.join("data/chase-db1"),
        &IngestOptions {
            mask_suffixes: vec!["_1stHO".into(), "_2ndHO".into()],
            labels: LabelSource::None,
            ..Default::default()
        },
    );
    let dir = std::env::temp_dir().join(format!("medpick-manifest-{}", std::process::id()));
    let path = dir.join("m.jsonl");
    let _ = std::fs::remove_dir_all(&dir);
    let mut w = manifest::ManifestWriter::create(&path, &sh.join("data/chase-db1"), false).unwrap();
    for s in &samples {
        w.write(s).unwrap();
    }
    w.finish().unwrap();
    // Never overwrite without --force.
    assert!(manifest::ManifestWriter::create(&path, &sh.join("data/chase-db1"), false).is_err());
    let m = manifest::read_manifest(&path).unwrap();
    assert_eq!(m.samples, samples);
    assert!(m.root.ends_with("chase-db1"));
    let a = manifest::make_split(&samples, 7, 0.1, 0.2).unwrap();
    let b = manifest::make_split(&samples, 7, 0.1, 0.2).unwrap();
    let c = manifest::make_split(&samples, 8, 0.1, 0.2).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let test = a.iter().filter(|(_, s)| *s == Split::Test).count();
    assert_eq!(test, 6); // round(0.2 · 28)
    manifest::write_split(&dir.join("split.csv"), &a, false).unwrap();
    let back = manifest::read_split(&dir.join("split.csv")).unwrap();
    assert_eq!(back.len(), 28);
    assert!(a.iter().all(|(id, s)| back[id] == *s));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn masks_load_as_binary_foreground() {
    let Some(sh) = shared() else { return };
    let root = sh.join("data/dsb2018");
    let (samples, _) = run(&root, &IngestOptions::default());
    let s = &samples[0];
    let (w, h, m) = manifest::load_mask(&root, s, 0, 1 << 28).unwrap();
    assert_eq!((w, h), (s.width, s.height));
    let fg = m.iter().filter(|&&v| v == 1).count();
    assert!(fg > 0 && fg < m.len());
    assert!(m.iter().all(|&v| v <= 1));
    let kv = sh.join("data/kvasir-seg");
    let (ks, _) = run(&kv, &IngestOptions::default());
    let (_, _, km) = manifest::load_mask(&kv, &ks[0], 0, 1 << 28).unwrap();
    let fg = km.iter().filter(|&&v| v == 1).count() as f64 / km.len() as f64;
    assert!(fg > 0.01 && fg < 0.9, "foreground fraction {fg}");
}

#[test]
fn class_labels_from_folders_and_csv() {
    let dir = std::env::temp_dir().join(format!("medpick-classes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let good = std::fs::read(bad_dir().join("good.png")).unwrap();
    for (class, n) in [("benign", 3), ("malignant", 2)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..n {
            std::fs::write(dir.join(class).join(format!("img{i}.png")), &good).unwrap();
        }
    }
    let (samples, report) = run(&dir, &IngestOptions::default());
    assert_eq!(samples.len(), 5);
    assert_eq!(report.per_label.get("benign"), Some(&3));
    assert_eq!(report.per_label.get("malignant"), Some(&2));
    let csv = dir.join("my_labels.csv");
    std::fs::write(&csv, "id,label\nbenign/img0.png,7\nimg1,9\n").unwrap();
    let (samples, _) = run(&dir, &IngestOptions { labels: LabelSource::Csv(csv), ..Default::default() });
    let label = |id: &str| samples.iter().find(|s| s.id == id).and_then(|s| s.label.clone());
    assert_eq!(label("benign/img0.png").as_deref(), Some("7"));
    assert_eq!(label("benign/img1.png").as_deref(), Some("9")); // matched by stem
    assert_eq!(label("malignant/img0.png"), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unsupported_transfer_syntax_is_a_clear_per_file_error() {
    let Some(sh) = shared() else { return };
    // CT_small re-labelled as JPEG 2000: a valid header whose pixel data this build cannot decode.
    let dir = std::env::temp_dir().join(format!("medpick-ts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let obj = dicom_object::open_file(sh.join("data/dicom/CT_small.dcm")).unwrap();
    let mut meta = obj.meta().clone();
    meta.transfer_syntax = "1.2.840.10008.1.2.4.90\0".to_string();
    let obj = obj.into_inner().with_exact_meta(meta);
    obj.write_to_file(dir.join("j2k.dcm")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(sh.join("data/dicom/MR_small.dcm"), dir.join("ok.dcm")).unwrap();
    let (samples, report) = run(&dir, &IngestOptions::default());
    assert_eq!(samples.len(), 1, "the readable file is kept");
    assert_eq!(report.skipped.len(), 1);
    let (p, m) = &report.skipped[0];
    assert_eq!(p, "j2k.dcm");
    assert!(m.contains("j2k.dcm") && (m.contains("unsupported") || m.contains("JPEG 2000")), "{m}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn symlink_cycles_are_walked_once() {
    let dir = std::env::temp_dir().join(format!("medpick-cycle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::copy(bad_dir().join("good.png"), dir.join("sub/a.png")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("sub/loop")).unwrap();
    let (samples, _) = run(&dir, &IngestOptions { labels: LabelSource::None, ..Default::default() });
    assert_eq!(samples.len(), 1, "{:?}", samples.iter().map(|s| &s.id).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

/// All files under `dir` as a browser lists a chosen folder: `<folder name>/<relative path>`, in arbitrary order.
fn browser_listing(dir: &Path) -> Vec<(String, PathBuf)> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                out.push((format!("{name}/{rel}"), p));
            }
        }
    }
    out.reverse(); // not sorted: the plan must order them
    out
}

/// The browser's in-memory path (upload::plan + upload::decode) gives the same samples, in the same order,
/// with the same pixels, as ingest + SampleLoader on the same folder.
fn upload_matches_ingest(dir: &Path) {
    use medpick_core::upload;
    let (samples, _) = run(dir, &IngestOptions::default());
    let listing = browser_listing(dir);
    let paths: Vec<String> = listing.iter().map(|(r, _)| r.clone()).collect();
    let plan = upload::plan(&paths);
    let mut loader = manifest::SampleLoader::new(dir, Window::File);
    let mut files = Vec::new();
    let mut decoded = Vec::new();
    for (&i, rel) in plan.order.iter().zip(&plan.rel) {
        match upload::decode(rel, &std::fs::read(&listing[i].1).unwrap(), Window::File) {
            Ok(d) => {
                files.push((rel.clone(), d.dicom.clone()));
                decoded.push(d.samples);
            }
            Err(e) => eprintln!("browser skips {rel}: {e}"),
        }
    }
    let (order, gaps) = upload::order(&files);
    assert!(gaps.is_empty(), "{gaps:?}");
    let got: Vec<_> = order.iter().flat_map(|&f| decoded[f].clone()).collect();
    let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    let want: Vec<&str> = samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, want, "{}: sample ids and order", dir.display());
    for ((id, img), s) in got.iter().zip(&samples) {
        assert!(*img == loader.load(s).unwrap(), "{id}: pixels differ from the native loader");
    }
}

#[test]
fn upload_plan_and_decode_match_ingest_on_the_bundled_dsb2018_sample() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018");
    upload_matches_ingest(&dir);
    let paths: Vec<String> = browser_listing(&dir).into_iter().map(|(r, _)| r).collect();
    let plan = medpick_core::upload::plan(&paths);
    assert_eq!(plan.order.len(), 24, "24 images; masks and README set aside");
    assert!(plan.skipped.iter().any(|(p, why)| p.starts_with("instance_labels/") && why.contains("mask")));
}

#[test]
fn upload_decode_matches_the_native_readers_on_dicom_and_nifti() {
    let Some(sh) = shared() else { return };
    upload_matches_ingest(&sh.join("data/dicom"));
    let tmp = std::env::temp_dir().join(format!("medpick-upload-nifti-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let src = sh.join("data/nifti-mni152/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz");
    std::fs::copy(&src, tmp.join("gm.nii.gz")).unwrap();
    upload_matches_ingest(&tmp);
    // Truncated bytes: a named error, not a panic.
    let bytes = std::fs::read(&src).unwrap();
    let e = medpick_core::upload::decode("gm.nii.gz", &bytes[..bytes.len() / 2], Window::File).unwrap_err();
    assert!(e.to_string().contains("gm.nii.gz"), "{e}");
    let e = medpick_core::upload::decode("notes.txt", b"hello", Window::File).unwrap_err();
    assert!(e.to_string().contains("notes.txt"), "{e}");
    let _ = std::fs::remove_dir_all(&tmp);
}
