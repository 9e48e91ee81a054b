//! STOW-RS on `medpick serve`: a DICOM Segmentation stored as OHIF stores one (its *Export DICOM SEG* posts a
//! binary SEG, explicit VR little endian, to the data source's `wadoRoot/studies`) becomes the final label of the
//! datastore series it segments, on the series' voxel grid; QIDO lists it with its study while it is the label;
//! anything else is refused instance by instance with PS3.18's failure reasons.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use serde_json::Value;

use crate::cli::tmp;
use crate::common::shared;
use crate::serve::{http, multipart, start};

const SEG: &str = "1.2.840.10008.5.1.4.1.1.66.4";
const W: usize = 128;

fn el(tag: Tag, vr: VR, v: impl Into<PrimitiveValue>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, v.into())
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn obj(els: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(els)
}

/// One SEG frame: its segment, its source slice's SOP Instance UID (or only its position), and its pixels.
struct Frame<'a> {
    segment: u16,
    source: Option<&'a str>,
    z: f64,
    on: &'a dyn Fn(usize, usize) -> bool,
}

/// A binary SEG (1 bit per pixel, frames packed back to back) of `frames` over the series `series` of `study`, as a
/// Part 10 file.
fn seg_file(study: &str, series: &str, sop: &str, frames: &[Frame]) -> Vec<u8> {
    part10(seg_object(study, series, sop, frames), SEG, sop)
}

fn seg_object(study: &str, series: &str, sop: &str, frames: &[Frame]) -> InMemDicomObject {
    let mut bits = vec![0u8; (frames.len() * W * W).div_ceil(8)];
    for (f, fr) in frames.iter().enumerate() {
        for y in 0..W {
            for x in 0..W {
                if (fr.on)(x, y) {
                    let i = f * W * W + y * W + x;
                    bits[i / 8] |= 1 << (i % 8);
                }
            }
        }
    }
    let per_frame: Vec<InMemDicomObject> = frames
        .iter()
        .map(|fr| {
            let mut g = vec![
                seq(
                    tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                    vec![obj(vec![el(tags::REFERENCED_SEGMENT_NUMBER, VR::US, fr.segment)])],
                ),
                seq(
                    tags::PLANE_POSITION_SEQUENCE,
                    vec![obj(vec![el(tags::IMAGE_POSITION_PATIENT, VR::DS, format!("0\\0\\{}", fr.z))])],
                ),
            ];
            if let Some(s) = fr.source {
                let src = obj(vec![
                    el(tags::REFERENCED_SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.2"),
                    el(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, s),
                ]);
                g.push(seq(
                    tags::DERIVATION_IMAGE_SEQUENCE,
                    vec![obj(vec![seq(tags::SOURCE_IMAGE_SEQUENCE, vec![src])])],
                ));
            }
            obj(g)
        })
        .collect();
    let segment = |n: u16, label: &str| {
        obj(vec![
            el(tags::SEGMENT_NUMBER, VR::US, n),
            el(tags::SEGMENT_LABEL, VR::LO, label),
            el(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "MANUAL"),
        ])
    };
    obj(vec![
        el(tags::SOP_CLASS_UID, VR::UI, SEG),
        el(tags::SOP_INSTANCE_UID, VR::UI, sop),
        el(tags::STUDY_INSTANCE_UID, VR::UI, study),
        el(tags::SERIES_INSTANCE_UID, VR::UI, format!("{sop}.1")),
        el(tags::MODALITY, VR::CS, "SEG"),
        el(tags::SERIES_DESCRIPTION, VR::LO, "lesion"),
        el(tags::SERIES_NUMBER, VR::IS, "99"),
        el(tags::INSTANCE_NUMBER, VR::IS, "1"),
        el(tags::SEGMENTATION_TYPE, VR::CS, "BINARY"),
        el(tags::SAMPLES_PER_PIXEL, VR::US, 1u16),
        el(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        el(tags::ROWS, VR::US, W as u16),
        el(tags::COLUMNS, VR::US, W as u16),
        el(tags::BITS_ALLOCATED, VR::US, 1u16),
        el(tags::BITS_STORED, VR::US, 1u16),
        el(tags::HIGH_BIT, VR::US, 0u16),
        el(tags::PIXEL_REPRESENTATION, VR::US, 0u16),
        el(tags::NUMBER_OF_FRAMES, VR::IS, frames.len().to_string()),
        seq(tags::SEGMENT_SEQUENCE, vec![segment(1, "lesion"), segment(2, "rim")]),
        seq(tags::REFERENCED_SERIES_SEQUENCE, vec![obj(vec![el(tags::SERIES_INSTANCE_UID, VR::UI, series)])]),
        seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame),
        el(tags::PIXEL_DATA, VR::OB, bits),
    ])
}

/// A Part 10 file of `o`, its meta group as OHIF writes it: no File Meta Information Version, and an
/// Implementation Version Name of 17 characters ("OHIF-VIEWER-2.0.0"; SH allows 16), which dicom-rs refuses.
fn part10(o: InMemDicomObject, class: &str, sop: &str) -> Vec<u8> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax("1.2.840.10008.1.2.1")
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(sop);
    let mut file = Vec::new();
    o.with_meta(meta).unwrap().write_all(&mut file).unwrap();
    let group = u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    let mut meta = Vec::new();
    for (elem, vr, v) in [
        (2u16, "UI", class),
        (3, "UI", sop),
        (0x10, "UI", "1.2.840.10008.1.2.1"),
        (0x12, "UI", "2.25.27069599682585517994988158772357120239.2.0.0"),
        (0x13, "SH", "OHIF-VIEWER-2.0.0"),
    ] {
        let mut v = v.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == "UI" { 0 } else { b' ' });
        }
        meta.extend_from_slice(&[2, 0]);
        meta.extend_from_slice(&elem.to_le_bytes());
        meta.extend_from_slice(vr.as_bytes());
        meta.extend_from_slice(&(v.len() as u16).to_le_bytes());
        meta.extend_from_slice(&v);
    }
    let mut out = file[..132].to_vec();
    out.extend_from_slice(&[2, 0, 0, 0, b'U', b'L', 4, 0]);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&file[144 + group..]);
    out
}

/// A STOW-RS body of these Part 10 files.
fn related(files: &[&[u8]]) -> (String, Vec<u8>) {
    let b = "medpick-stow-boundary";
    let mut body = Vec::new();
    for f in files {
        body.extend_from_slice(format!("--{b}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/related; type=\"application/dicom\"; boundary={b}"), body)
}

/// The failure reasons of a STOW-RS answer's FailedSOPSequence.
fn reasons(v: &Value) -> Vec<u64> {
    v["00081198"]["Value"]
        .as_array()
        .map_or(vec![], |a| a.iter().filter_map(|i| i["00081197"]["Value"][0].as_u64()).collect())
}

#[test]
fn stow_rs_stores_a_dicom_seg_as_the_final_label_of_its_series() {
    let Some(data) = shared() else { return };
    let data = data.join("data");
    let ds = tmp("serve-stow");
    let png = std::fs::read_dir(data.join("dsb2018/images")).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    std::fs::copy(&png, ds.join("cells.png")).unwrap();
    // Five CT slices 5 mm apart (slice k at z = 5k, SOP Instance UID …7.k), written in shuffled file order.
    let series = ds.join("ct_series");
    std::fs::create_dir_all(&series).unwrap();
    let ct = data.join("dicom/CT_small.dcm");
    let ct_obj = dicom_object::open_file(&ct).unwrap();
    let study = ct_obj.element(tags::STUDY_INSTANCE_UID).unwrap().to_str().unwrap().trim_end_matches('\0').to_string();
    let (ct_series, sop) = ("1.2.826.0.1.3680043.9.7.1", |k: usize| format!("1.2.826.0.1.3680043.9.7.1.{k}"));
    for k in [3, 0, 4, 1, 2] {
        let mut o = dicom_object::open_file(&ct).unwrap();
        o.put(el(tags::IMAGE_POSITION_PATIENT, VR::DS, format!("0\\0\\{}", 5 * k)));
        o.put(el(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0"));
        o.put(el(tags::SERIES_INSTANCE_UID, VR::UI, ct_series));
        o.put(el(tags::SOP_INSTANCE_UID, VR::UI, sop(k)));
        o.put(el(tags::INSTANCE_NUMBER, VR::IS, format!("{}", k + 1)));
        o.write_to_file(series.join(format!("IM{k:04}.dcm"))).unwrap();
    }
    let srv = start(&ds, &["--model", "pixels", "--cache", "none"]);
    let p = srv.port;
    let post = |path: &str, ct: &str, body: &[u8]| -> (u16, Value) {
        let (status, body) = http(p, "POST", path, &[("Content-Type", ct)], body);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    };
    let get_json = |path: &str| -> Value {
        let (status, body) = http(p, "GET", path, &[], b"");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    };
    // Segment 1 on slices 1 and 3 (by their SOP Instance UIDs), segment 2 on slice 4 by its position only.
    let box1 = |x: usize, y: usize| (10..50).contains(&x) && (20..60).contains(&y);
    let right = |x: usize, _: usize| x >= 100;
    let frames = [
        Frame { segment: 1, source: Some(&sop(3)), z: 15.0, on: &box1 },
        Frame { segment: 1, source: Some(&sop(1)), z: 5.0, on: &box1 },
        Frame { segment: 2, source: None, z: 20.0, on: &right },
    ];
    let seg_sop = "1.2.826.0.1.3680043.9.7.2";
    let seg = seg_file(&study, ct_series, seg_sop, &frames);
    assert!(dicom_object::OpenFileOptions::new().from_reader(&seg[128..]).is_err(), "dicom-rs alone refuses its meta");
    let (ct_type, body) = related(&[&seg]);
    // OHIF's path: its wadoRoot.
    let (status, v) = post("/proxy/dicom/wado/studies", &ct_type, &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["00081199"]["Value"][0]["00081155"]["Value"][0], seg_sop, "{v}");
    assert!(v.get("00081198").is_none(), "{v}");
    // The label: the series' grid, the segment numbers on the slices the frames name.
    let label = std::fs::read(ds.join("labels/final/ct_series.nii.gz")).unwrap();
    let vol = medpick_core::io::nifti::read_volume_bytes(std::path::Path::new("l.nii.gz"), &label, 0, 1 << 24).unwrap();
    assert_eq!(vol.dims, [W, W, 5]);
    assert!((vol.spacing[2] - 5.0).abs() < 1e-3, "{:?}", vol.spacing);
    for z in 0..5 {
        for y in 0..W {
            for x in 0..W {
                let want = match z {
                    1 | 3 if box1(x, y) => 1.0,
                    4 if right(x, y) => 2.0,
                    _ => 0.0,
                };
                assert_eq!(vol.data[z * W * W + y * W + x], want, "voxel ({x}, {y}, {z})");
            }
        }
    }
    assert_eq!(get_json("/datastore/?output=stats")["completed"], 1);
    let all = get_json("/datastore/?output=all");
    let info = &all["objects"]["ct_series"]["labels"]["final"]["info"];
    assert_eq!(info["source"], "DICOM SEG (STOW-RS)", "{all}");
    assert_eq!(info["segments"]["2"], "rim", "{all}");
    // QIDO lists the SEG with its study; WADO-RS returns the stored file.
    let listed = get_json(&format!("/dicom-web/studies/{study}/series"));
    let modalities: Vec<&str> =
        listed.as_array().unwrap().iter().filter_map(|s| s["00080060"]["Value"][0].as_str()).collect();
    assert!(modalities.contains(&"SEG") && modalities.contains(&"CT"), "{listed}");
    let (status, got) =
        http(p, "GET", &format!("/dicom-web/studies/{study}/series/{seg_sop}.1/instances/{seg_sop}"), &[], b"");
    assert_eq!(status, 200);
    assert!(got.windows(seg.len()).any(|w| w == seg.as_slice()), "the stored SEG comes back byte for byte");
    // The same instance again is accepted (a retry); the same SOP Instance UID with other content is a duplicate.
    assert_eq!(post(&format!("/dicom-web/studies/{study}"), &ct_type, &body).0, 200);
    let other = seg_file(&study, ct_series, seg_sop, &frames[..1]);
    let (status, v) = post("/dicom-web/studies", &ct_type, &related(&[&other]).1);
    assert_eq!((status, reasons(&v)), (409, vec![0x0111]), "{v}");
    // An image, a SEG of a series the datastore lacks, a part that is not DICOM, a SEG posted to another study:
    // each refused with its reason, and a good one beside them stored (202).
    let image = std::fs::read(series.join("IM0000.dcm")).unwrap();
    let elsewhere = seg_file(&study, "1.2.3.999", "1.2.826.0.1.3680043.9.7.3", &frames);
    let second = seg_file(&study, ct_series, "1.2.826.0.1.3680043.9.7.4", &frames[2..]);
    let (status, v) = post("/dicom-web/studies", &ct_type, &related(&[&image, &elsewhere, b"not dicom", &second]).1);
    assert_eq!((status, reasons(&v)), (202, vec![0x0122, 0xA900, 0xC000]), "{v}");
    let (status, v) = post("/dicom-web/studies/1.2.3", &ct_type, &body);
    assert_eq!((status, reasons(&v)), (409, vec![0xA900]), "{v}");
    // A frame count that would overflow the pixel data's size is refused, and the server keeps serving.
    let mut huge = seg_object(&study, ct_series, "1.2.826.0.1.3680043.9.7.5", &frames);
    huge.put(el(tags::NUMBER_OF_FRAMES, VR::IS, "2305843009213693953"));
    let (status, v) =
        post("/dicom-web/studies", &ct_type, &related(&[&part10(huge, SEG, "1.2.826.0.1.3680043.9.7.5")]).1);
    assert_eq!((status, reasons(&v)), (409, vec![0xA900]), "{v}");
    // The second SEG replaced the first as the label; the first is kept as a version.
    let label = std::fs::read(ds.join("labels/final/ct_series.nii.gz")).unwrap();
    let vol = medpick_core::io::nifti::read_volume_bytes(std::path::Path::new("l.nii.gz"), &label, 0, 1 << 24).unwrap();
    assert_eq!(vol.data.iter().filter(|&&x| x != 0.0).count(), 28 * W, "slice 4's right band only");
    assert_eq!(std::fs::read_dir(ds.join("labels/final/.versions")).unwrap().count(), 1);
    // Not STOW-RS: a form upload, and a query route.
    let (ct_form, form) = multipart("file", "x.dcm", &seg);
    assert_eq!(post("/dicom-web/studies", &ct_form, &form).0, 415);
    assert_eq!(http(p, "POST", "/proxy/dicom/qido/studies", &[("Content-Type", &ct_type)], &body).0, 405);
    // A label uploaded by another client replaces the SEG's: QIDO no longer lists the SEG.
    let nii = crate::serve::nifti_u8([W, W, 5], |x, _, _| (x < 8) as u8);
    let (ct_put, put) = multipart("label", "ct_series.nii", &nii);
    // Its params cannot claim the SEG (a key only STOW-RS writes).
    let forged = format!("{{\"dicom_seg\": \".medpick/dicom-seg/ct_series/{seg_sop}.dcm\"}}");
    let at = put.windows(2).position(|w| w == b"{}").unwrap();
    let put = [&put[..at], forged.as_bytes(), &put[at + 2..]].concat();
    assert_eq!(http(p, "PUT", "/datastore/label?image=ct_series", &[("Content-Type", &ct_put)], &put).0, 200);
    let listed = get_json(&format!("/dicom-web/studies/{study}/series"));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    drop(srv);
    let _ = std::fs::remove_dir_all(&ds);
}
