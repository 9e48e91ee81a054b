//! `medpick-fuzz --make-corpus <shared data>`: (re)write the seed corpus `fuzz/corpus/<target>/` from real files.
//! Small real files are copied as they are (a DICOM MR and CT slice, a DSB2018 label PNG, the tests' bad files
//! and tiny `.pth` checkpoints); big ones are cut down to a few kilobytes so that a run does about a million
//! executions per target in minutes (a Kvasir-SEG photo and a CHASE_DB1 retina resized and re-encoded, a 6³
//! block of the MNI152 T1 volume written as NIfTI in five data types, four BreastMNIST images with their labels as
//! an `.npz`, a manifest from ingesting the bundled DSB2018 sample). Every file is named for where it came from.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use medpick_core::data::io::{nifti, npz, volume_cap};

fn put(out: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {}/{name}", dir.display()))
}

fn copy(out: &Path, target: &str, from: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    put(out, target, &from.file_name().context("a file")?.to_string_lossy(), &bytes)
}

fn encode(img: &image::DynamicImage, fmt: image::ImageFormat) -> Result<Vec<u8>> {
    let mut c = std::io::Cursor::new(Vec::new());
    img.write_to(&mut c, fmt)?;
    Ok(c.into_inner())
}

/// A NIfTI-1 single file (.nii): the 348-byte header, 4 bytes of extension flag, the voxels.
pub fn nifti_file(dims: &[usize], datatype: i16, bitpix: i16, slope: f32, voxels: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let mut dim = [1i16; 8];
    dim[0] = dims.len() as i16;
    for (i, &d) in dims.iter().enumerate() {
        dim[i + 1] = d as i16;
    }
    for (i, d) in dim.iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&datatype.to_le_bytes());
    h[72..74].copy_from_slice(&bitpix.to_le_bytes());
    for (i, p) in [1f32, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0].iter().enumerate() {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&p.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[112..116].copy_from_slice(&slope.to_le_bytes());
    // sform: identity with a 1 mm grid.
    h[254..256].copy_from_slice(&1i16.to_le_bytes());
    for (row, off) in [280usize, 296, 312].iter().enumerate() {
        for col in 0..4 {
            let v = if col == row { 1f32 } else { 0.0 };
            h[off + 4 * col..off + 4 * col + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    h.extend_from_slice(voxels);
    h
}

/// A `.npy` array of u8 (C order).
fn npy_u8(shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut dict = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

pub fn make(shared: &Path, out: &Path) -> Result<()> {
    let repo_tests = Path::new("tests/data");
    // image: real small files, the tests' bad files, and big real photos cut down.
    for f in ["bad/good.png", "bad/huge_header.png", "bad/truncated.png", "bad/corrupt.jpg", "bad/text_named.png"] {
        copy(out, "image", &repo_tests.join(f))?;
    }
    let dsb =
        shared.join("dsb2018/instance_labels/8b77284d6f37ab3fc826139ebadaec3b9d81c552fe525c3547bbbd6c65ac0d83.png");
    copy(out, "image", &dsb)?;
    let kvasir = image::open(shared.join("kvasir-seg/images/cju2qqn5ys4uo0988ewrt2ip2.jpg"))?;
    let small = kvasir.resize_exact(32, 28, image::imageops::FilterType::Triangle);
    put(out, "image", "kvasir-cju2qqn5-32x28.jpg", &encode(&small, image::ImageFormat::Jpeg)?)?;
    put(out, "image", "kvasir-cju2qqn5-32x28.bmp", &encode(&small, image::ImageFormat::Bmp)?)?;
    put(out, "image", "kvasir-cju2qqn5-32x28.tif", &encode(&small, image::ImageFormat::Tiff)?)?;
    let gray16 = image::DynamicImage::ImageLuma16(small.to_luma16());
    put(out, "image", "kvasir-cju2qqn5-32x28-gray16.png", &encode(&gray16, image::ImageFormat::Png)?)?;
    let chase = image::open(shared.join("chase-db1/Image_04R.jpg"))?.resize_exact(
        24,
        24,
        image::imageops::FilterType::Triangle,
    );
    put(out, "image", "chase-Image_04R-24x24.png", &encode(&chase, image::ImageFormat::Png)?)?;
    put(out, "image", "chase-Image_04R-24x24-gray.jpg", &encode(&chase.grayscale(), image::ImageFormat::Jpeg)?)?;

    // nifti / nifti-gz: a 6×6×6 block from the middle of the MNI152 T1, in five data types; one 4-D; the test's
    // truncated .nii.gz.
    let mni = shared.join("nifti-mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz");
    let v = nifti::read_volume(&mni, 0, volume_cap(1 << 26)).with_context(|| format!("reading {}", mni.display()))?;
    let [nx, ny, nz] = v.dims;
    let mut block = Vec::new();
    for z in nz / 2 - 3..nz / 2 + 3 {
        for y in ny / 2 - 3..ny / 2 + 3 {
            for x in nx / 2 - 3..nx / 2 + 3 {
                block.push(v.data[x + nx * (y + ny * z)]);
            }
        }
    }
    let max = block.iter().cloned().fold(1e-6f32, f32::max);
    let f32b: Vec<u8> = block.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f64b: Vec<u8> = block.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect();
    let i16b: Vec<u8> = block.iter().flat_map(|&v| ((v / max * 1000.0) as i16).to_le_bytes()).collect();
    let u8b: Vec<u8> = block.iter().map(|&v| (v / max * 255.0) as u8).collect();
    let u16b: Vec<u8> = block.iter().flat_map(|&v| ((v / max * 60000.0) as u16).to_le_bytes()).collect();
    let files = [
        ("mni152-t1-6cube-float32.nii", nifti_file(&[6, 6, 6], 16, 32, 1.0, &f32b)),
        ("mni152-t1-6cube-float64.nii", nifti_file(&[6, 6, 6], 64, 64, 1.0, &f64b)),
        ("mni152-t1-6cube-int16-slope2.nii", nifti_file(&[6, 6, 6], 4, 16, 2.0, &i16b)),
        ("mni152-t1-6cube-uint8.nii", nifti_file(&[6, 6, 6], 2, 8, 0.0, &u8b)),
        ("mni152-t1-6cube-uint16.nii", nifti_file(&[6, 6, 6], 512, 16, 1.0, &u16b)),
        ("mni152-t1-6x6x3x2-uint8.nii", nifti_file(&[6, 6, 3, 2], 2, 8, 1.0, &u8b[..216])),
    ];
    for (name, bytes) in &files {
        put(out, "nifti", name, bytes)?;
        put(out, "nifti-gz", name, bytes)?;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&files[2].1)?;
    put(out, "nifti", "mni152-t1-6cube-int16-slope2.nii.gz", &gz.finish()?)?;
    copy(out, "nifti", &repo_tests.join("bad/truncated.nii.gz"))?;

    // dicom: the shared MR and CT slices as they are, the single-frame liver, the test's corrupt file.
    for f in ["MR_small.dcm", "CT_small.dcm", "liver_1frame.dcm"] {
        copy(out, "dicom", &shared.join("dicom").join(f))?;
    }
    copy(out, "dicom", &repo_tests.join("bad/corrupt.dcm"))?;

    // npz: four BreastMNIST images per split with their labels (stored and deflated), the test's truncated one.
    let bm = shared.join("medmnist/breastmnist.npz");
    for (name, method) in [
        ("breastmnist-4-per-split-stored.npz", zip::CompressionMethod::Stored),
        ("breastmnist-4-per-split-deflated.npz", zip::CompressionMethod::Deflated),
    ] {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for split in ["train", "val", "test"] {
            let imgs = npz::read_u8(&bm, &format!("{split}_images"), 1 << 26)?;
            let flat: Vec<u8> = imgs.iter().copied().take(4 * 28 * 28).collect();
            w.start_file(format!("{split}_images.npy"), opts)?;
            w.write_all(&npy_u8(&[4, 28, 28], &flat))?;
            let (_, _, labels) = npz::read_labels(&bm, &format!("{split}_labels"))?;
            let l: Vec<u8> = labels.iter().take(4).map(|&v| v as u8).collect();
            w.start_file(format!("{split}_labels.npy"), opts)?;
            w.write_all(&npy_u8(&[4, 1], &l))?;
        }
        put(out, "npz", name, &w.finish()?.into_inner())?;
    }
    copy(out, "npz", &repo_tests.join("bad/truncated.npz"))?;

    // pth: the tests' tiny checkpoints (made by tests/data/make_pth.py with PyTorch).
    for f in ["good_tiny.pth", "truncated.pth", "out_of_range.pth", "evil_reduce.pth"] {
        copy(out, "pth", &repo_tests.join("pth").join(f))?;
    }

    // safetensors: each data type the reader converts.
    {
        use safetensors::tensor::{serialize, TensorView};
        use safetensors::Dtype;
        let f32d: Vec<u8> = [0.5f32, -1.0, 2.0, 3.5, 0.0, 1e-3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16d: Vec<u8> = [0x3c00u16, 0xc000, 0x7bff, 0x0001].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f64d: Vec<u8> = [1.5f64, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let i64d: Vec<u8> = [3i64, -7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let i32d: Vec<u8> = [5i32, 9, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensors = vec![
            ("encoder.weight", TensorView::new(Dtype::F32, vec![2, 3], &f32d)?),
            ("encoder.half", TensorView::new(Dtype::F16, vec![4], &f16d)?),
            ("encoder.bhalf", TensorView::new(Dtype::BF16, vec![2, 2], &f16d)?),
            ("head.double", TensorView::new(Dtype::F64, vec![2], &f64d)?),
            ("head.steps", TensorView::new(Dtype::I64, vec![2], &i64d)?),
            ("head.ints", TensorView::new(Dtype::I32, vec![3], &i32d)?),
            ("head.mask", TensorView::new(Dtype::U8, vec![1, 3], &[1u8, 0, 1])?),
        ];
        put(out, "safetensors", "tiny-every-dtype.safetensors", &serialize(tensors, None)?)?;
    }

    // features: a feature file as `medpick embed` writes it; feature-cache: entries as the embed cache keeps them.
    let scratch = std::env::temp_dir().join(format!("medpick-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let feats = medpick_core::features::Features {
        ids: ["images/a.png", "images/b.png", "vol.nii.gz#axial:3", "ct.dcm#frame:1"].map(String::from).to_vec(),
        dim: 4,
        data: (0..16).map(|i| (i as f32 * 0.37).sin()).collect(),
        model: "litemedsam".into(),
        pool: "mean".into(),
        preprocess: "medsam-256".into(),
    };
    let fp = scratch.join("features.safetensors");
    feats.write(&fp, true)?;
    put(out, "features", "four-rows.safetensors", &std::fs::read(&fp)?)?;
    let entry = medpick_core::features::cache_entry_bytes(&feats.data[..8]);
    put(out, "feature-cache", "eight-values.bin", &entry)?;
    put(out, "feature-cache", "eight-values-cut-short.bin", &entry[..entry.len() - 9])?;
    put(out, "feature-cache", "old-format-no-trailer.bin", &entry[..32])?;

    // manifest: three samples from ingesting the bundled DSB2018 sample (their sources renamed to the fuzz
    // scratch folder's a.png), a volume slice and an npz row.
    {
        use medpick_core::manifest::{ingest, IngestOptions};
        let mut samples = Vec::new();
        ingest(
            Path::new("samples/dsb2018"),
            &IngestOptions::default(),
            &mut |s| {
                samples.push(s.clone());
                Ok(())
            },
            &mut |_, _, _| {},
        )?;
        let mut text = String::from(r#"{"medpick_manifest":{"version":1,"root":".","created_by":"medpick 0.1.0"}}"#);
        text.push('\n');
        for s in samples.iter().take(3) {
            let mut s = s.clone();
            s.source = "a.png".into();
            text.push_str(&serde_json::to_string(&s)?);
            text.push('\n');
        }
        put(out, "manifest", "dsb2018-three.jsonl", text.as_bytes())?;
    }

    // csv: labels, a split, an id list, with quoting and a byte-order mark.
    put(out, "csv", "labels.csv", b"id,label\nimages/a.png,polyp\nimages/b.png,normal\n")?;
    put(out, "csv", "split.csv", b"id,split\na.png,train\nb.png,val\nc.png,test\n")?;
    put(out, "csv", "ids.csv", b"id\na.png\n\"b,1.png\"\n")?;
    put(out, "csv", "bom-quoted.csv", "\u{feff}id,label\n\"x \"\"y\"\".png\",1\n".as_bytes())?;

    // http: the web app's own paths, traversal, a link out, hidden files, foreign Host headers.
    for (i, req) in [
        "/\nlocalhost:8080",
        "/index.html\n127.0.0.1:8080",
        "/sub/app.js?v=1#x\n[::1]:80",
        "/link.txt\nlocalhost:8080",
        "/up/outside.txt\nlocalhost",
        "/../outside.txt\nevil.example",
        "/.hidden/secret\nLOCALHOST:8080",
        "/%2e%2e/outside.txt\n127.0.0.1:8080.evil.example",
    ]
    .iter()
    .enumerate()
    {
        put(out, "http", &format!("request-{i}.txt"), req.as_bytes())?;
    }

    // select: byte strings the target reads as strategy, n, d, budget, seed, backend, labelled rows, values.
    for s in 0..16u8 {
        let mut b = vec![s, 23, 3, 5, s, s % 2, 1, 7];
        b.extend((0..23 * 3).map(|i| (i * 37 + s as usize * 11) as u8 % 250));
        put(out, "select", &format!("strategy-{s:02}-23x3-budget5.bin"), &b)?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
