//! STOW-RS (PS3.18 10.5) for labels: a DICOM Segmentation that an annotator stores from OHIF (its segmentation
//! panel's *Export DICOM SEG* posts it to the data source's `wadoRoot`, `/proxy/dicom/wado/studies`) becomes the
//! final label of the datastore image it segments, as a label uploaded from 3D Slicer does: the lease is
//! released, the plan moves on and training uses it.
//!
//! Each instance of the `multipart/related; type="application/dicom"` body is read as DICOM and must be a
//! Segmentation (binary, fractional or label map; native pixel data) that references one datastore image: a
//! DICOM series folder (its frames matched to the slices by the referenced SOP Instance UID, else by Image
//! Position) or a one-frame `.dcm` file. Its segments become label values (the segment number; where segments
//! overlap, the higher number), written as NIfTI on the series' grid (or PNG for a 2-D image) through the
//! datastore's atomic, versioned label store. The SEG file itself is kept in `.medpick/dicom-seg/<image>/` and
//! listed by QIDO with its study while it is the image's label, so OHIF shows it when the study is opened again.
//!
//! Any other instance (an image, a structured report) is refused: the datastore's images come from its folder.
//! The answer is PS3.18's: the stored instances in ReferencedSOPSequence, the others in FailedSOPSequence with a
//! failure reason, and what went wrong in a `Warning` header; 200 when all were stored, 202 when some were, 409
//! when none was.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dicom_core::value::Value as DValue;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde_json::{json, Map, Value};

use crate::datastore::{check_name, FINAL};
use crate::{ApiError, ApiResult, Shared};

/// Segmentation Storage and Label Map Segmentation Storage.
const SEG_CLASSES: [&str; 2] = ["1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"];
/// At most this many instances in one request.
const MAX_PARTS: usize = 1000;

/// PS3.18's failure reasons (table 10.5.3-3, and PS3.4's C-STORE statuses they come from).
const PROCESSING_FAILURE: u16 = 0x0110;
const DUPLICATE: u16 = 0x0111;
const CLASS_NOT_SUPPORTED: u16 = 0x0122;
const DOES_NOT_MATCH: u16 = 0xA900;
const CANNOT_UNDERSTAND: u16 = 0xC000;

/// One instance that was not stored: its SOP class and instance (empty when unreadable), the reason, and why.
struct Failed {
    class: String,
    sop: String,
    reason: u16,
    why: String,
}

/// One instance stored: its SOP class and instance, study and series, and the image it labels.
struct Stored {
    class: String,
    sop: String,
    study: String,
    series: String,
}

/// `POST <base>/studies`.
pub async fn stow_any(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    stow(app, None, headers, body).await
}

/// `POST <base>/studies/{study}`: every instance must belong to that study.
pub async fn stow_study(
    State(app): State<Shared>,
    UrlPath(p): UrlPath<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    stow(app, p.get("study").cloned(), headers, body).await
}

async fn stow(app: Shared, want_study: Option<String>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let unsupported = || {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("STOW-RS takes multipart/related; type=\"application/dicom\" (DICOM files), not {ct:?}"),
        )
    };
    let m: mime::Mime = ct.parse().map_err(|_| unsupported())?;
    if m.type_() != mime::MULTIPART || m.subtype().as_str() != "related" {
        return Err(unsupported());
    }
    if m.get_param("type").is_some_and(|t| !t.as_str().eq_ignore_ascii_case("application/dicom")) {
        return Err(unsupported());
    }
    let boundary = m
        .get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_string())
        .ok_or_else(|| ApiError::bad("multipart/related without a boundary"))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|e| ApiError::bad(format!("multipart body: {e}")))? {
        if parts.len() == MAX_PARTS {
            return Err(ApiError::bad(format!("more than {MAX_PARTS} instances in one request")));
        }
        let ct = field.content_type().map(|m| m.essence_str().to_ascii_lowercase());
        let bytes = field.bytes().await.map_err(|e| ApiError::bad(format!("multipart part: {e}")))?;
        parts.push((ct, bytes));
    }
    if parts.is_empty() {
        return Err(ApiError::bad("STOW-RS body without an instance"));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let app2 = app.clone();
    let results = tokio::task::spawn_blocking(move || {
        parts
            .iter()
            .enumerate()
            .map(|(i, (ct, b))| store_one(&app2, want_study.as_deref(), i + 1, ct.as_deref(), b))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(answer(&host, &results))
}

/// The STOW-RS response: status by how many were stored, the DICOM JSON of both sequences, the reasons as text.
fn answer(host: &str, results: &[Result<Stored, Failed>]) -> Response {
    let ui = |v: &str| json!({"vr": "UI", "Value": [v]});
    let mut stored = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    let mut study_url = None;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(s) => {
                let url = format!("http://{host}/dicom-web/studies/{}", s.study);
                let inst = format!("{url}/series/{}/instances/{}", s.series, s.sop);
                stored.push(json!({"00081150": ui(&s.class), "00081155": ui(&s.sop), "00081190": {"vr": "UR", "Value": [inst]}}));
                study_url.get_or_insert(url);
            }
            Err(f) => {
                let mut item = Map::new();
                if !f.class.is_empty() {
                    item.insert("00081150".into(), ui(&f.class));
                }
                if !f.sop.is_empty() {
                    item.insert("00081155".into(), ui(&f.sop));
                }
                item.insert("00081197".into(), json!({"vr": "US", "Value": [f.reason]}));
                failed.push(Value::Object(item));
                let text: String = format!("instance {}: {}", i + 1, f.why)
                    .chars()
                    .map(|c| if c.is_ascii() && !matches!(c, '"' | '\\' | '\r' | '\n') { c } else { ' ' })
                    .collect();
                eprintln!("medpick serve: STOW-RS refused {text}");
                warnings.push(format!("299 medpick \"{text}\""));
            }
        }
    }
    let mut out = Map::new();
    // Type 2: present, empty when nothing was stored.
    out.insert("00081190".into(), study_url.map_or(json!({"vr": "UR"}), |u| json!({"vr": "UR", "Value": [u]})));
    if !failed.is_empty() {
        out.insert("00081198".into(), json!({"vr": "SQ", "Value": failed}));
    }
    if !stored.is_empty() {
        out.insert("00081199".into(), json!({"vr": "SQ", "Value": stored}));
    }
    let status = match (stored.is_empty(), failed.is_empty()) {
        (false, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        _ => StatusCode::CONFLICT,
    };
    let mut r = (status, axum::Json(Value::Object(out))).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    if let Ok(w) = HeaderValue::from_str(&warnings.join(", ")) {
        if !warnings.is_empty() {
            r.headers_mut().insert(header::WARNING, w);
        }
    }
    r
}

/// A UID as PS3.5 9.1 has it: digits and dots, at most 64 characters (it names a file here).
fn is_uid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !s.contains("..")
}

fn text(o: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let s = o.element_opt(tag).ok().flatten()?.to_str().ok()?;
    let s = s.trim_end_matches([' ', '\0']).trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn int(o: &InMemDicomObject, tag: dicom_core::Tag) -> Option<i64> {
    o.element_opt(tag).ok().flatten()?.to_int::<i64>().ok()
}

/// The items of a sequence (none when it is absent or not a sequence).
fn items(o: &InMemDicomObject, tag: dicom_core::Tag) -> &[InMemDicomObject] {
    o.element_opt(tag).ok().flatten().and_then(|e| e.items()).unwrap_or(&[])
}

/// The first item of `path`'s sequences, followed one level at a time.
fn item<'a>(o: &'a InMemDicomObject, path: &[dicom_core::Tag]) -> Option<&'a InMemDicomObject> {
    path.iter().try_fold(o, |o, &t| items(o, t).first())
}

fn store_one(
    app: &Shared,
    want_study: Option<&str>,
    n: usize,
    ct: Option<&str>,
    bytes: &[u8],
) -> Result<Stored, Failed> {
    let fail =
        |class: &str, sop: &str, reason, why: String| Failed { class: class.into(), sop: sop.into(), reason, why };
    if ct.is_some_and(|c| c != "application/dicom") {
        return Err(fail(
            "",
            "",
            CANNOT_UNDERSTAND,
            format!("part of type {}, not application/dicom", ct.unwrap_or("")),
        ));
    }
    let name = PathBuf::from(format!("STOW-RS instance {n}"));
    let obj = medpick_core::io::dicom::open_bytes(&name, bytes)
        .map_err(|e| fail("", "", CANNOT_UNDERSTAND, e.to_string()))?;
    let class = text(&obj, tags::SOP_CLASS_UID).unwrap_or_else(|| obj.meta().media_storage_sop_class_uid().to_string());
    let class = class.trim_end_matches('\0').to_string();
    let sop = text(&obj, tags::SOP_INSTANCE_UID).unwrap_or_default();
    let (study, series) = (text(&obj, tags::STUDY_INSTANCE_UID), text(&obj, tags::SERIES_INSTANCE_UID));
    let (Some(study), Some(series)) = (study, series) else {
        return Err(fail(&class, &sop, DOES_NOT_MATCH, "no Study or Series Instance UID".into()));
    };
    if ![&sop, &study, &series].iter().all(|u| is_uid(u)) {
        return Err(fail(&class, &sop, DOES_NOT_MATCH, "a SOP, study or series UID that is not a UID".into()));
    }
    if want_study.is_some_and(|w| w != study) {
        return Err(fail(
            &class,
            &sop,
            DOES_NOT_MATCH,
            format!("study {study}, posted to study {}", want_study.unwrap_or("")),
        ));
    }
    if !SEG_CLASSES.contains(&class.as_str()) {
        return Err(fail(
            &class,
            &sop,
            CLASS_NOT_SUPPORTED,
            format!(
                "SOP class {class}: medpick stores DICOM Segmentations (labels of its images); the images come from \
                 the datastore's folder"
            ),
        ));
    }
    let seg = || -> ApiResult<()> {
        let id = seg_image(app, &obj, (&study, &series, &sop), n == 1)?;
        let (mask, dims, grid) = seg_mask(app, &id, &obj)?;
        save(app, &id, &sop, &series, &obj, bytes, mask, dims, grid)
    };
    match seg() {
        Ok(()) => Ok(Stored { class, sop, study, series }),
        Err(e) => {
            let reason = match e.status {
                StatusCode::CONFLICT => DUPLICATE,
                s if s.is_server_error() => PROCESSING_FAILURE,
                _ => DOES_NOT_MATCH,
            };
            Err(fail(&class, &sop, reason, e.message))
        }
    }
}

/// The datastore image a SEG segments: the one DICOM image holding its referenced series (or, without that
/// reference, its frames' source instances).
/// The SEG's own study, series and SOP Instance UIDs must be its image's study and new to the datastore's images;
/// `fresh`: look at the files again first (the request's first instance).
fn seg_image(app: &Shared, obj: &InMemDicomObject, own: (&str, &str, &str), fresh: bool) -> ApiResult<String> {
    let series: Vec<String> = items(obj, tags::REFERENCED_SERIES_SEQUENCE)
        .iter()
        .filter_map(|i| text(i, tags::SERIES_INSTANCE_UID))
        .collect();
    let sources: Vec<String> = frame_groups(obj).iter().filter_map(|g| g.source.clone()).collect();
    let index = crate::dicomweb::instances(app, fresh)?;
    let root = app.ds.lock().map_err(|_| ApiError::internal("datastore lock poisoned"))?.root.clone();
    let images: Vec<_> = index.iter().filter(|i| !crate::dicomweb::is_seg_file(&root, &i.path)).collect();
    let (study, own_series, sop) = own;
    if let Some(i) = images.iter().find(|i| i.series == own_series || i.sop == sop) {
        return Err(ApiError::bad(format!("its series or SOP Instance UID is the datastore image {}'s", i.image)));
    }
    let referenced: Vec<_> = images
        .into_iter()
        .filter(|i| series.contains(&i.series) || (series.is_empty() && sources.contains(&i.sop)))
        .collect();
    if let Some(i) = referenced.iter().find(|i| i.study != study) {
        return Err(ApiError::bad(format!("its study {study} is not its image's ({})", i.study)));
    }
    let mut ids: Vec<String> = referenced.iter().map(|i| i.image.clone()).collect();
    ids.sort();
    ids.dedup();
    match ids.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(ApiError::bad(format!(
            "the segmentation references series {} that is not in the datastore",
            if series.is_empty() { "(none named)".to_string() } else { series.join(", ") }
        ))),
        more => Err(ApiError::bad(format!(
            "the segmentation references {} datastore images: {}",
            more.len(),
            more.join(", ")
        ))),
    }
}

/// What one frame of a SEG segments: its segment number, source instance, and position.
struct FrameGroup {
    segment: Option<i64>,
    source: Option<String>,
    source_frame: Option<i64>,
    position: Option<Vec<f64>>,
}

/// Each frame's functional groups (per frame, else shared).
fn frame_groups(obj: &InMemDicomObject) -> Vec<FrameGroup> {
    let shared = item(obj, &[tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE]);
    let per = items(obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    let frames = int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
    (0..frames.min(per.len().max(1)))
        .map(|f| {
            let look = |path: &[dicom_core::Tag]| {
                per.get(f).and_then(|g| item(g, path)).or_else(|| shared.and_then(|g| item(g, path)))
            };
            let source = look(&[tags::DERIVATION_IMAGE_SEQUENCE, tags::SOURCE_IMAGE_SEQUENCE]);
            FrameGroup {
                segment: look(&[tags::SEGMENT_IDENTIFICATION_SEQUENCE])
                    .and_then(|i| int(i, tags::REFERENCED_SEGMENT_NUMBER)),
                source: source.and_then(|i| text(i, tags::REFERENCED_SOP_INSTANCE_UID)),
                source_frame: source.and_then(|i| int(i, tags::REFERENCED_FRAME_NUMBER)),
                position: look(&[tags::PLANE_POSITION_SEQUENCE])
                    .and_then(|i| i.element_opt(tags::IMAGE_POSITION_PATIENT).ok().flatten())
                    .and_then(|e| e.to_multi_float64().ok())
                    .filter(|v| v.len() == 3),
            }
        })
        .collect()
}

/// The label of image `id` that a SEG holds: voxels (x fastest) of `dims`, and the series' grid (None: 2-D).
fn seg_mask(
    app: &Shared,
    id: &str,
    obj: &InMemDicomObject,
) -> ApiResult<(Vec<u8>, [usize; 3], Option<crate::volume::Grid>)> {
    let bad = |m: String| ApiError::bad(format!("the segmentation of {id}: {m}"));
    let (images_dir, image) = {
        let ds = app.ds.lock().map_err(|_| ApiError::internal("datastore lock poisoned"))?;
        (ds.images_dir(), ds.image_path(id)?)
    };
    let samples = crate::pool::all_samples(&images_dir, &image).map_err(ApiError::bad)?;
    // Each slice's SOP Instance UID and position, in the order of the label's z.
    let mut slices = Vec::with_capacity(samples.len());
    for s in &samples {
        if s.frame.is_some_and(|f| f > 0) {
            return Err(
                bad("its image is a multi-frame file; medpick takes SEGs of series and one-frame files".into()),
            );
        }
        let h = medpick_core::io::dicom::open_header(&images_dir.join(&s.source))
            .map_err(|e| ApiError::bad(e.to_string()))?;
        let pos = h.element_opt(tags::IMAGE_POSITION_PATIENT).ok().flatten().and_then(|e| e.to_multi_float64().ok());
        slices.push((text(&h, tags::SOP_INSTANCE_UID).unwrap_or_default(), pos));
    }
    let grid = if image.is_dir() { Some(crate::volume::Grid::of(&images_dir, &image, &samples)?) } else { None };
    let (w, h) = crate::volume::slice_size(&image, &samples)?;
    let dims = [w, h, samples.len()];
    let rows = int(obj, tags::ROWS).unwrap_or(0).max(0) as usize;
    let cols = int(obj, tags::COLUMNS).unwrap_or(0).max(0) as usize;
    if (cols, rows) != (w, h) {
        return Err(bad(format!("its frames are {cols}x{rows}, the image's slices {w}x{h}")));
    }
    let kind = text(obj, tags::SEGMENTATION_TYPE).unwrap_or_else(|| "BINARY".into());
    let bits = int(obj, tags::BITS_ALLOCATED).unwrap_or(0);
    let frames = int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
    let per_pixel = match (kind.as_str(), bits) {
        ("BINARY", 1) => 0,
        ("FRACTIONAL", 8) | ("LABELMAP", 8) => 1,
        ("LABELMAP", 16) => 2,
        (k, b) => return Err(bad(format!("Segmentation Type {k} with {b} bits allocated"))),
    };
    let pixels = obj.element_opt(tags::PIXEL_DATA).ok().flatten().ok_or_else(|| bad("no pixel data".into()))?;
    if let DValue::PixelSequence(_) = pixels.value() {
        return Err(bad("compressed pixel data; store it uncompressed (explicit VR little endian)".into()));
    }
    let data = pixels.to_bytes().map_err(|e| bad(format!("pixel data: {e}")))?;
    let n = w * h;
    // From the header, checked: a hostile frame count must not overflow them.
    let need =
        frames.checked_mul(n).and_then(|b| if per_pixel == 0 { Some(b.div_ceil(8)) } else { b.checked_mul(per_pixel) });
    if need.is_none_or(|need| data.len() < need) {
        return Err(bad(format!("pixel data of {} bytes for {frames} frames of {cols}x{rows}", data.len())));
    }
    let groups = frame_groups(obj);
    if groups.len() < frames {
        return Err(bad(format!("{frames} frames, {} with functional groups", groups.len())));
    }
    let segments: Vec<i64> =
        items(obj, tags::SEGMENT_SEQUENCE).iter().filter_map(|i| int(i, tags::SEGMENT_NUMBER)).collect();
    let max_frac = int(obj, tags::MAXIMUM_FRACTIONAL_VALUE).unwrap_or(255).max(1);
    let spacing = grid.as_ref().map_or(1.0, |g| g.header().pixdim[3].abs().max(1e-3) as f64);
    let mut mask = vec![0u8; n * dims[2]];
    for f in 0..frames {
        let g = &groups[f];
        if g.source_frame.is_some_and(|k| k > 1) {
            return Err(bad(format!(
                "frame {} segments frame {} of a multi-frame image",
                f + 1,
                g.source_frame.unwrap_or(0)
            )));
        }
        // The slice: by the source instance's UID, else by position (within half the slice spacing).
        let z = g
            .source
            .as_ref()
            .and_then(|s| slices.iter().position(|(u, _)| u == s))
            .or_else(|| {
                let p = g.position.as_ref()?;
                let d = |q: &Vec<f64>| p.iter().zip(q).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
                let (k, dist) = slices
                    .iter()
                    .enumerate()
                    .filter_map(|(k, (_, q))| Some((k, d(q.as_ref()?))))
                    .min_by(|a, b| a.1.total_cmp(&b.1))?;
                (dist <= spacing / 2.0).then_some(k)
            })
            .ok_or_else(|| bad(format!("frame {} matches no slice of the image (source {:?})", f + 1, g.source)))?;
        let value = |i: usize| -> i64 {
            match per_pixel {
                0 => ((data[(f * n + i) / 8] >> ((f * n + i) % 8)) & 1) as i64,
                1 => data[f * n + i] as i64,
                _ => u16::from_le_bytes([data[2 * (f * n + i)], data[2 * (f * n + i) + 1]]) as i64,
            }
        };
        let segment = g.segment;
        if kind != "LABELMAP" {
            let s = segment.ok_or_else(|| bad(format!("frame {} names no segment", f + 1)))?;
            if !(1..=255).contains(&s) || (!segments.is_empty() && !segments.contains(&s)) {
                return Err(bad(format!("frame {} is segment {s}, not one of its segments 1 to 255", f + 1)));
            }
        }
        let out = &mut mask[z * n..(z + 1) * n];
        for (i, o) in out.iter_mut().enumerate() {
            let v = value(i);
            let label = match kind.as_str() {
                "LABELMAP" => v,
                "FRACTIONAL" if 2 * v > max_frac => segment.unwrap_or(0),
                "BINARY" if v != 0 => segment.unwrap_or(0),
                _ => 0,
            };
            if label > 255 {
                return Err(bad(format!("label value {label} in frame {}: at most 255", f + 1)));
            }
            *o = (*o).max(label as u8);
        }
    }
    Ok((mask, dims, grid))
}

/// Keep the SEG file, then store its label as image `id`'s final label (the SEG's file named in the label's info).
#[allow(clippy::too_many_arguments)]
fn save(
    app: &Shared,
    id: &str,
    sop: &str,
    series: &str,
    obj: &InMemDicomObject,
    bytes: &[u8],
    mask: Vec<u8>,
    dims: [usize; 3],
    grid: Option<crate::volume::Grid>,
) -> ApiResult<()> {
    check_name("image", id)?;
    // One SEG stored at a time: two requests with the same SOP Instance UID must not both find it new.
    static STORING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = STORING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let rel = format!("{SEG_DIR}/{id}/{sop}.dcm");
    let (root, current) = {
        let ds = app.ds.lock().map_err(|_| ApiError::internal("datastore lock poisoned"))?;
        let label = ds.model.objects.get(id).and_then(|o| o.labels.get(FINAL));
        (ds.root.clone(), label.and_then(|l| l.info.get("dicom_seg")).is_some_and(|v| v.as_str() == Some(rel.as_str())))
    };
    let path = root.join(&rel);
    let fresh = match std::fs::read(&path) {
        // Sent again (a retry) while it is the label: nothing to do.
        Ok(old) if old == bytes && current => return Ok(()),
        Ok(old) if old == bytes => false,
        Ok(_) => return Err(ApiError::conflict(format!("SOP instance {sop} is stored already, with other content"))),
        Err(_) => true,
    };
    let is_volume = grid.is_some();
    let prediction = crate::volume::Prediction { dims, mask, grid };
    let (ext, label) = if is_volume {
        (".nii.gz", crate::volume::nifti_bytes(&prediction, true)?)
    } else {
        (".png", crate::labels::write_png(&prediction.mask, dims[0], dims[1])?)
    };
    if fresh {
        let dir = root.join(SEG_DIR).join(id);
        std::fs::create_dir_all(&dir).map_err(|e| ApiError::io(&dir, e))?;
        crate::datastore::atomic_write(&path, bytes)?;
    }
    let mut segments = BTreeMap::new();
    for s in items(obj, tags::SEGMENT_SEQUENCE) {
        if let Some(k) = int(s, tags::SEGMENT_NUMBER) {
            segments.insert(k.to_string(), Value::from(text(s, tags::SEGMENT_LABEL).unwrap_or_default()));
        }
    }
    let mut info = Map::new();
    info.insert("source".into(), "DICOM SEG (STOW-RS)".into());
    info.insert("dicom_seg".into(), rel.into());
    info.insert("sop_instance_uid".into(), sop.into());
    info.insert("series_instance_uid".into(), series.into());
    info.insert("segments".into(), Value::Object(segments.into_iter().collect()));
    if let Some(d) = text(obj, tags::SERIES_DESCRIPTION) {
        info.insert("description".into(), d.into());
    }
    let r = crate::routes::store_label(app, id, FINAL, ext, &label, info);
    if r.is_err() && fresh {
        let _ = std::fs::remove_file(&path);
    }
    r.map(|_| ())
}

/// Where stored SEG files are kept, under the datastore's root.
pub const SEG_DIR: &str = ".medpick/dicom-seg";

/// The stored SEG file that image `id`'s final label came from (its `info`), while it is there: exactly
/// `SEG_DIR/<id>/<UID>.dcm`.
pub fn seg_of(root: &Path, id: &str, info: &Map<String, Value>) -> Option<PathBuf> {
    let rel = info.get("dicom_seg")?.as_str()?;
    let uid = rel.strip_prefix(&format!("{SEG_DIR}/{id}/"))?.strip_suffix(".dcm")?;
    let p = root.join(rel);
    (is_uid(uid) && p.is_file()).then_some(p)
}

/// The label info keys only STOW-RS writes (a client's label upload cannot set them).
pub const OWN_KEYS: [&str; 4] = ["dicom_seg", "source", "sop_instance_uid", "series_instance_uid"];
