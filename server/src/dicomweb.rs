//! DICOMweb over the datastore's DICOM images (series folders and single `.dcm` files), read-only: QIDO-RS
//! (search studies, series, instances) and WADO-RS (metadata, frames, instances) at the paths where MONAI Label
//! proxies its DICOMweb server (`/proxy/dicom/qido/…` and `/proxy/dicom/wado/…`, which the OHIF build in MONAI
//! Label's wheel is configured for) and at `/dicom-web/…`. So OHIF (served by [`crate::ohif`]) shows the images
//! that annotators are handed, with no PACS beside the server.
//!
//! The index of instances is built from the files' headers, cached per file (size and modification time) and
//! refreshed at most every few seconds. Frames are served as stored: native pixel data as
//! `application/octet-stream` (explicit VR little endian), encapsulated frames with their transfer syntax's media
//! type. A request for an unknown UID is a 404 that names it; QIDO's matching is [`crate::qido`]'s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use base64::Engine;
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value as DValue};
use dicom_core::VR;
use dicom_object::InMemDicomObject;
use serde_json::{json, Map, Value};

use crate::datastore::SERIES_EXT;
use crate::qido;
use crate::routes::Q;
use crate::{ApiError, ApiResult, Shared};

/// How long an index is trusted before the files are looked at again.
const FRESH: Duration = Duration::from_secs(3);
/// Binary elements up to this size are inlined (base64) in the metadata; larger ones are left out.
const INLINE_MAX: usize = 64 << 10;

/// One DICOM file of the datastore.
pub struct Instance {
    /// The datastore image (a series folder's name, or a `.dcm` file's id) it belongs to.
    pub image: String,
    pub path: PathBuf,
    pub study: String,
    pub series: String,
    pub sop: String,
    pub number: i64,
    /// The attributes QIDO's rows return ([`qido::ROW_TAGS`]), parsed.
    pub attrs: Map<String, Value>,
    /// The whole header as DICOM JSON text (PS3.18 F.2), pixel data left out. As a `serde_json` tree a header
    /// takes about 20 times its text (250 KB for a CT slice's 13 KB), so the index keeps the text: metadata
    /// answers copy it as it is, and QIDO parses it only to match an attribute that is not in `attrs`.
    pub json: Box<str>,
}

impl Instance {
    /// An instance of datastore image `image` from its header in the DICOM JSON model; `None` without the
    /// study, series or SOP instance UID.
    pub fn new(image: &str, path: &Path, header: &Map<String, Value>) -> Option<Instance> {
        let (study, series, sop) =
            (first_str(header, "0020000D")?, first_str(header, "0020000E")?, first_str(header, "00080018")?);
        let number = first_str(header, "00200013").and_then(|s| s.parse().ok()).unwrap_or(0);
        let attrs = qido::ROW_TAGS.iter().filter_map(|t| Some((t.to_string(), header.get(*t)?.clone()))).collect();
        let json = serde_json::to_string(header).ok()?.into_boxed_str();
        Some(Instance { image: image.to_string(), path: path.to_path_buf(), study, series, sop, number, attrs, json })
    }

    /// The whole header, parsed from [`Instance::json`].
    pub fn header(&self) -> Map<String, Value> {
        serde_json::from_str(&self.json).unwrap_or_default()
    }
}

/// The instances by file, with what the files looked like when read.
#[derive(Default)]
pub struct Index {
    files: HashMap<PathBuf, (SystemTime, u64, Option<Arc<Instance>>)>,
    refreshed: Option<Instant>,
}

/// The tag of a DICOM JSON key ("0020000D").
fn key(tag: dicom_core::Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

fn trim(s: &str) -> String {
    s.trim_end_matches([' ', '\0']).to_string()
}

/// One element's DICOM JSON value (`None`: left out — pixel data, large or unreadable binaries, NaN).
fn element_json(vr: VR, v: &DValue<InMemDicomObject, dicom_object::mem::InMemFragment>) -> Option<Value> {
    let mut out = Map::new();
    out.insert("vr".into(), vr.to_string().into());
    let p = match v {
        DValue::Sequence(s) => {
            if !s.items().is_empty() {
                let items = s.items().iter().map(|o| Value::Object(object_json(o))).collect();
                out.insert("Value".into(), Value::Array(items));
            }
            return Some(Value::Object(out));
        }
        DValue::PixelSequence(_) => return None,
        DValue::Primitive(p) => p,
    };
    if p.multiplicity() == 0 || matches!(p, PrimitiveValue::Empty) {
        return Some(Value::Object(out));
    }
    let values: Vec<Value> = match vr {
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => {
            let b = p.to_bytes();
            if b.len() > INLINE_MAX {
                return None;
            }
            out.insert("InlineBinary".into(), base64::engine::general_purpose::STANDARD.encode(&b).into());
            return Some(Value::Object(out));
        }
        VR::PN => p
            .to_multi_str()
            .iter()
            .map(|s| {
                let mut m = Map::new();
                for (name, part) in ["Alphabetic", "Ideographic", "Phonetic"].iter().zip(s.split('=')) {
                    if !trim(part).is_empty() {
                        m.insert(name.to_string(), trim(part).into());
                    }
                }
                if m.is_empty() {
                    Value::Null
                } else {
                    Value::Object(m)
                }
            })
            .collect(),
        VR::AT => match p {
            PrimitiveValue::Tags(t) => t.iter().map(|&t| key(t).into()).collect(),
            _ => return None,
        },
        // Decimal and integer strings value by value: an empty or unreadable one is null, the others stay (an
        // "1.0" in an IS is 1).
        VR::IS | VR::DS => p
            .to_multi_str()
            .iter()
            .map(|s| match s.trim().trim_end_matches('\0').parse::<f64>() {
                Ok(v) if v.is_finite() && vr == VR::IS && v.fract() == 0.0 && v.abs() < 9e15 => Value::from(v as i64),
                Ok(v) if v.is_finite() => Value::from(v),
                _ => Value::Null,
            })
            .collect(),
        VR::US | VR::SS | VR::UL | VR::SL | VR::SV | VR::UV => {
            p.to_multi_int::<i64>().ok()?.into_iter().map(Value::from).collect()
        }
        VR::FL | VR::FD => p
            .to_multi_float64()
            .ok()?
            .into_iter()
            .map(|v| if v.is_finite() { Value::from(v) } else { Value::Null })
            .collect(),
        _ => p
            .to_multi_str()
            .iter()
            .map(|s| if trim(s).is_empty() { Value::Null } else { Value::from(trim(s)) })
            .collect(),
    };
    out.insert("Value".into(), Value::Array(values));
    Some(Value::Object(out))
}

/// A data set in the DICOM JSON model, pixel data (7FE0,0010) left out.
fn object_json(obj: &InMemDicomObject) -> Map<String, Value> {
    let mut out = Map::new();
    for e in obj {
        if e.tag() == dicom_dictionary_std::tags::PIXEL_DATA {
            continue;
        }
        if let Some(v) = element_json(e.vr(), e.value()) {
            out.insert(key(e.tag()), v);
        }
    }
    out
}

/// The first string value of a DICOM JSON element.
pub(crate) fn first_str(m: &Map<String, Value>, tag: &str) -> Option<String> {
    match m.get(tag)?.get("Value")?.get(0)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o.get("Alphabetic").and_then(|v| v.as_str()).map(str::to_string),
        _ => None,
    }
}

/// Native (not encapsulated) transfer syntaxes: their frames are served as explicit VR little endian.
const NATIVE: &[&str] = &["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"];

fn read_instance(image: &str, path: &Path) -> Option<Instance> {
    let obj = medpick_core::io::dicom::open_header(path).ok()?;
    let mut json = object_json(&obj);
    let ts = trim(obj.meta().transfer_syntax());
    // The transfer syntax frames are served in (PS3.18: AvailableTransferSyntaxUID).
    let served = if NATIVE.contains(&ts.as_str()) { "1.2.840.10008.1.2.1".to_string() } else { ts };
    json.insert("00083002".into(), json!({"vr": "UI", "Value": [served]}));
    Instance::new(image, path, &json)
}

/// The DICOM files of a datastore image: a series folder's own DICOM files (links out of it left out, as the
/// series' slices are read), or the one `.dcm` file.
fn files_of(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut v = crate::datastore::series_files(path).unwrap_or_default();
    v.retain(|p| medpick_core::io::dicom::is_dicom_path(p));
    v
}

/// The datastore's DICOM images: (id, path), the files looked at after the datastore's lock is released (a series
/// folder holding DICOM files, a `.dcm` file, each resolving inside the datastore).
fn dicom_images(app: &Shared) -> ApiResult<Vec<(String, PathBuf)>> {
    let (dir, root, ids, segs) = {
        let ds = app.ds.lock().map_err(|_| ApiError::internal("datastore lock poisoned"))?;
        let ids: Vec<(String, String)> = ds
            .model
            .objects
            .iter()
            .filter(|(_, o)| o.image.ext == SERIES_EXT || o.image.ext == ".dcm")
            .map(|(k, o)| (k.clone(), o.image.ext.clone()))
            .collect();
        // The DICOM SEG that an image's final label came from (STOW-RS), with the image's study.
        let segs: Vec<(String, Map<String, Value>)> = ds
            .model
            .objects
            .iter()
            .filter_map(|(k, o)| Some((k.clone(), o.labels.get(crate::datastore::FINAL)?.info.clone())))
            .collect();
        (ds.images_dir(), ds.root.clone(), ids, segs)
    };
    let segs = segs.into_iter().filter_map(|(id, info)| {
        let p = crate::stow::seg_of(&root, &id, &info)?;
        std::fs::canonicalize(&p).is_ok_and(|c| c.starts_with(&root)).then_some((id, p))
    });
    Ok(ids
        .into_iter()
        .filter(|(id, _)| crate::datastore::check_name("image", id).is_ok())
        .map(|(id, ext)| {
            let p = dir.join(format!("{id}{ext}"));
            (id, ext, p)
        })
        .filter(|(_, ext, p)| {
            let kind = if ext == SERIES_EXT { p.is_dir() && crate::datastore::is_series_dir(p) } else { p.is_file() };
            kind && std::fs::canonicalize(p).is_ok_and(|c| c.starts_with(&root))
        })
        .map(|(id, _, p)| (id, p))
        .chain(segs)
        .collect())
}

/// A final label changed: the index looks at the files again at its next use (a SEG that became or stopped being
/// a label is listed or left out at once).
pub fn labels_changed(app: &Shared) {
    app.dicom_stale.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// A SEG file kept by STOW-RS (not an image of the datastore `root`).
pub fn is_seg_file(root: &Path, path: &Path) -> bool {
    path.starts_with(root.join(crate::stow::SEG_DIR))
}

/// A file still resolves inside the datastore when it is read (not swapped for a link out since it was indexed).
fn still_inside(app: &Shared, path: &Path) -> ApiResult<()> {
    let root = app.ds.lock().map_err(|_| ApiError::internal("datastore lock poisoned"))?.root.clone();
    match std::fs::canonicalize(path) {
        Ok(c) if c.starts_with(&root) => Ok(()),
        _ => Err(ApiError::not_found(format!("{} is no longer in the datastore", path.display()))),
    }
}

/// The index brought up to date (at most every [`FRESH`], or `force`), and its instances.
pub(crate) fn instances(app: &Shared, force: bool) -> ApiResult<Vec<Arc<Instance>>> {
    // A panic while indexing leaves a stale index, not a dead one: the next refresh rebuilds it.
    let mut idx = app.dicom.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let stale = app.dicom_stale.swap(false, std::sync::atomic::Ordering::SeqCst);
    if force || stale || idx.refreshed.is_none_or(|t| t.elapsed() > FRESH) {
        let mut seen = HashMap::new();
        for (id, dir) in dicom_images(app)? {
            for f in files_of(&dir) {
                let Ok(meta) = std::fs::metadata(&f) else { continue };
                let (mtime, len) = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
                let entry = match idx.files.remove(&f) {
                    Some((t, l, inst)) if t == mtime && l == len && inst.as_ref().is_none_or(|i| i.image == id) => {
                        (t, l, inst)
                    }
                    _ => (mtime, len, read_instance(&id, &f).map(Arc::new)),
                };
                seen.insert(f, entry);
            }
        }
        idx.files = seen;
        idx.refreshed = Some(Instant::now());
    }
    let mut v: Vec<Arc<Instance>> = idx.files.values().filter_map(|e| e.2.clone()).collect();
    v.sort_by(|a, b| (&a.study, &a.series, a.number, &a.sop).cmp(&(&b.study, &b.series, b.number, &b.sop)));
    Ok(v)
}

/// The datastore image a client names: its id, or (OHIF names images by series) a SeriesInstanceUID.
pub fn resolve_image(app: &Shared, name: &str) -> String {
    let known = app.ds.lock().map(|ds| ds.model.objects.contains_key(name)).unwrap_or(true);
    if known || !name.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return name.to_string();
    }
    instances(app, false)
        .ok()
        .and_then(|v| v.iter().find(|i| i.series == name).map(|i| i.image.clone()))
        .unwrap_or_else(|| name.to_string())
}

/// The `image` query parameter, resolved by [`resolve_image`].
pub async fn image_param(app: &Shared, q: &Q) -> ApiResult<String> {
    let name = q
        .get("image")
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "query parameter image is required"))?;
    let a = app.clone();
    tokio::task::spawn_blocking(move || resolve_image(&a, &name)).await.map_err(|e| ApiError::internal(e.to_string()))
}

/// Active learning's samples with [`sample_fields`] added (from each picked image's own first DICOM file, not
/// the index: Next Sample never waits for a datastore's headers).
pub async fn with_sample_fields(mut out: Vec<Value>) -> Vec<Value> {
    let paths: Vec<(String, PathBuf)> = out
        .iter()
        .map(|s| {
            let f = |k: &str| s.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            (f("id"), PathBuf::from(f("path")))
        })
        .collect();
    let fields =
        tokio::task::spawn_blocking(move || paths.iter().map(|(id, p)| sample_fields(id, p)).collect::<Vec<_>>())
            .await
            .unwrap_or_default();
    for (s, f) in out.iter_mut().zip(fields) {
        if let Value::Object(m) = s {
            m.extend(f);
        }
    }
    out
}

/// Study and series fields for a DICOM image (at `path`) handed out by active learning: what OHIF's Next Sample
/// shows and opens; nothing for other images. Not PatientID: 3D Slicer names a sample's volume by it when present
/// and finds a revisited sample by that name, which anonymised datastores repeat.
pub fn sample_fields(id: &str, path: &Path) -> Map<String, Value> {
    let mut out = Map::new();
    let is_dicom = path.is_dir() || path.extension().is_some_and(|e| e.eq_ignore_ascii_case("dcm"));
    let Some(i) = (if is_dicom { files_of(path).first().and_then(|f| read_instance(id, f)) } else { None }) else {
        return out;
    };
    for (name, tag) in [("StudyDate", "00080020"), ("StudyTime", "00080030"), ("Modality", "00080060")] {
        if let Some(v) = first_str(&i.attrs, tag) {
            out.insert(name.into(), v.into());
        }
    }
    out.insert("StudyInstanceUID".into(), i.study.clone().into());
    out.insert("SeriesInstanceUID".into(), i.series.clone().into());
    out.insert("RetrieveURL".into(), format!("/dicom-web/studies/{}/series/{}", i.study, i.series).into());
    out
}

/// A metadata answer: the instances' headers, each copied as the index keeps its text.
fn metadata_json(v: &[Arc<Instance>]) -> Response {
    let mut body = String::with_capacity(2 + v.iter().map(|i| i.json.len() + 1).sum::<usize>());
    body.push('[');
    for (k, i) in v.iter().enumerate() {
        if k > 0 {
            body.push(',');
        }
        body.push_str(&i.json);
    }
    body.push(']');
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"))], body).into_response()
}

/// A QIDO answer; query keys that were ignored are named in a `Warning` (PS3.18 8.3.4.1).
fn dicom_json((v, ignored): (Vec<Value>, Vec<String>)) -> Response {
    let mut r = axum::Json(Value::Array(v)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    let text: String = ignored
        .iter()
        .map(|k| format!("299 medpick: \"The {k} query parameter is not supported\""))
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(w) = HeaderValue::from_str(&text) {
        if !text.is_empty() {
            r.headers_mut().insert(header::WARNING, w);
        }
    }
    r
}

pub fn routes() -> Router<Shared> {
    let mut r = Router::new();
    for base in ["/dicom-web", "/proxy/dicom/qido", "/proxy/dicom/wado"] {
        r = r
            .route(&format!("{base}/studies"), stow(base, get(qido_studies), crate::stow::stow_any))
            .route(&format!("{base}/studies/{{study}}"), stow(base, get(wado_study), crate::stow::stow_study))
            .route(&format!("{base}/studies/{{study}}/metadata"), get(wado_metadata))
            .route(&format!("{base}/studies/{{study}}/series"), get(qido_series))
            .route(&format!("{base}/studies/{{study}}/instances"), get(qido_instances))
            .route(&format!("{base}/studies/{{study}}/series/{{series}}"), get(wado_series))
            .route(&format!("{base}/studies/{{study}}/series/{{series}}/metadata"), get(wado_metadata))
            .route(&format!("{base}/studies/{{study}}/series/{{series}}/instances"), get(qido_instances))
            .route(&format!("{base}/studies/{{study}}/series/{{series}}/instances/{{sop}}"), get(wado_instance))
            .route(
                &format!("{base}/studies/{{study}}/series/{{series}}/instances/{{sop}}/metadata"),
                get(wado_metadata),
            )
            .route(
                &format!("{base}/studies/{{study}}/series/{{series}}/instances/{{sop}}/frames/{{frames}}"),
                get(wado_frames),
            )
            .route(&format!("{base}/series"), get(qido_all_series))
            .route(&format!("{base}/instances"), get(qido_all_instances));
    }
    r
}

/// STOW-RS beside a route's GET where OHIF stores (its `wadoRoot`) and at `/dicom-web`.
fn stow<H, T>(base: &str, r: MethodRouter<Shared>, h: H) -> MethodRouter<Shared>
where
    H: axum::handler::Handler<T, Shared>,
    T: 'static,
{
    if base == "/proxy/dicom/qido" {
        r
    } else {
        r.post(h)
    }
}

/// The instances under a study, series and instance UID (each optional), or a 404 naming what is unknown.
async fn select(app: &Shared, p: &HashMap<String, String>) -> ApiResult<Vec<Arc<Instance>>> {
    let a = app.clone();
    let all = tokio::task::spawn_blocking(move || instances(&a, false))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut v = all;
    for (k, what) in [("study", "study"), ("series", "series"), ("sop", "instance")] {
        if let Some(uid) = p.get(k) {
            v.retain(|i| match k {
                "study" => &i.study == uid,
                "series" => &i.series == uid,
                _ => &i.sop == uid,
            });
            if v.is_empty() {
                return Err(ApiError::not_found(format!("{what} {uid:?} is not in this datastore")));
            }
        }
    }
    Ok(v)
}

type P = UrlPath<HashMap<String, String>>;

async fn qido_studies(State(app): State<Shared>, q: Q) -> ApiResult<Response> {
    let v = select(&app, &HashMap::new()).await?;
    Ok(dicom_json(qido::filtered(qido::study_rows(&v, "/dicom-web"), &q)?))
}
async fn qido_series(State(app): State<Shared>, UrlPath(p): P, q: Q) -> ApiResult<Response> {
    let v = select(&app, &p).await?;
    Ok(dicom_json(qido::filtered(qido::series_rows(&v, "/dicom-web"), &q)?))
}
async fn qido_all_series(State(app): State<Shared>, q: Q) -> ApiResult<Response> {
    let v = select(&app, &HashMap::new()).await?;
    Ok(dicom_json(qido::filtered(qido::series_rows(&v, "/dicom-web"), &q)?))
}
async fn qido_instances(State(app): State<Shared>, UrlPath(p): P, q: Q) -> ApiResult<Response> {
    let v = select(&app, &p).await?;
    Ok(dicom_json(qido::filtered(qido::instance_rows(&v, "/dicom-web"), &q)?))
}
async fn qido_all_instances(State(app): State<Shared>, q: Q) -> ApiResult<Response> {
    let v = select(&app, &HashMap::new()).await?;
    Ok(dicom_json(qido::filtered(qido::instance_rows(&v, "/dicom-web"), &q)?))
}
async fn wado_metadata(State(app): State<Shared>, UrlPath(p): P) -> ApiResult<Response> {
    let v = select(&app, &p).await?;
    Ok(metadata_json(&v))
}
async fn wado_study(State(app): State<Shared>, UrlPath(p): P) -> ApiResult<Response> {
    let v = select(&app, &p).await?;
    instances_response(app, v).await
}
async fn wado_series(State(app): State<Shared>, UrlPath(p): P) -> ApiResult<Response> {
    let v = select(&app, &p).await?;
    instances_response(app, v).await
}
async fn wado_instance(State(app): State<Shared>, UrlPath(p): P) -> ApiResult<Response> {
    let v = select(&app, &p).await?;
    instances_response(app, v).await
}

/// `multipart/related` parts of one media type.
fn multipart(kind: &str, parts: Vec<(String, Vec<u8>)>) -> Response {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let boundary = format!("medpick-{nanos:x}-{n:x}");
    let mut body = Vec::new();
    for (ct, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n", bytes.len()).as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut r = Response::new(axum::body::Body::from(body));
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/related; type=\"{kind}\"; boundary={boundary}")) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// The most one study, series or instance retrieve reads into memory (the files are read whole).
const RETRIEVE_MAX: u64 = 1 << 30;

async fn instances_response(app: Shared, v: Vec<Arc<Instance>>) -> ApiResult<Response> {
    tokio::task::spawn_blocking(move || {
        let total: u64 = v.iter().map(|i| std::fs::metadata(&i.path).map(|m| m.len()).unwrap_or(0)).sum();
        if total > RETRIEVE_MAX {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{} instances of {total} bytes: retrieve a series or an instance at a time", v.len()),
            ));
        }
        let parts = v
            .iter()
            .map(|i| {
                still_inside(&app, &i.path)?;
                Ok(("application/dicom".to_string(), std::fs::read(&i.path).map_err(|e| ApiError::io(&i.path, e))?))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(multipart("application/dicom", parts))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

async fn wado_frames(State(app): State<Shared>, UrlPath(p): P) -> ApiResult<Response> {
    let list: Vec<usize> = p
        .get("frames")
        .map(|s| s.split(',').map(|f| f.trim().parse::<usize>()).collect::<Result<_, _>>())
        .transpose()
        .map_err(|_| ApiError::bad("frames: a comma-separated list of frame numbers from 1"))?
        .unwrap_or_default();
    let v = select(&app, &p).await?;
    let path = v.first().map(|i| i.path.clone()).ok_or_else(|| ApiError::not_found("no such instance"))?;
    let parts = tokio::task::spawn_blocking(move || {
        still_inside(&app, &path)?;
        crate::frames::read_frames(&path, &list)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let kind = parts.first().map(|p| p.0.split(';').next().unwrap_or("").to_string()).unwrap_or_default();
    Ok(multipart(&kind, parts))
}

/// The index for [`crate::App`].
pub fn new_index() -> Mutex<Index> {
    Mutex::new(Index::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DICOM JSON model of the fixtures' headers: numbers as numbers, names as PN objects, no pixel data, and
    /// the UIDs that index them.
    #[test]
    fn headers_become_the_dicom_json_model() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/dicom");
        let Some(i) = read_instance("ct", &root.join("CT_small.dcm")) else {
            panic!("CT_small.dcm: no instance (is ../shared/data there?)");
        };
        let j = &i.header();
        let mut whole = object_json(&medpick_core::io::dicom::open_header(&i.path).unwrap());
        whole.insert("00083002".into(), json!({"vr": "UI", "Value": ["1.2.840.10008.1.2.1"]}));
        for (k, v) in &whole {
            assert_eq!(j.get(k), Some(v), "{k}");
        }
        assert_eq!(j, &whole, "the index's text is the whole header");
        for (tag, v) in &i.attrs {
            assert_eq!(&j[tag], v, "{tag}: QIDO's attributes are the header's");
        }
        assert!(i.attrs.contains_key("00080060") && i.attrs.contains_key("00100010"));
        assert_eq!(j["00280010"], json!({"vr": "US", "Value": [128]}));
        assert_eq!(j["00100010"]["Value"][0]["Alphabetic"], "CompressedSamples^CT1");
        assert_eq!(j["00200032"]["vr"], "DS");
        assert!(j["00200032"]["Value"].as_array().is_some_and(|v| v.len() == 3 && v.iter().all(|x| x.is_f64())));
        assert!(!j.contains_key("7FE00010"), "pixel data is never inlined");
        assert_eq!(j["00083002"]["Value"][0], "1.2.840.10008.1.2.1");
        assert_eq!(first_str(j, "0020000E").as_deref(), Some(i.series.as_str()));
        assert!(i.study.starts_with("1.3.6.1.4.1.5962") && i.sop.starts_with("1.3.6.1.4.1.5962"));
        // One frame of 128 × 128 16-bit pixels, as stored; frame 2 does not exist.
        let f = crate::frames::read_frames(&i.path, &[1]).unwrap();
        assert_eq!((f.len(), f[0].1.len()), (1, 128 * 128 * 2));
        assert!(f[0].0.starts_with("application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"));
        assert_eq!(crate::frames::read_frames(&i.path, &[2]).unwrap_err().status, StatusCode::NOT_FOUND);
        // A list longer than the frames (a request that would copy one frame a million times) is refused.
        assert_eq!(crate::frames::read_frames(&i.path, &[1, 1]).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert!(read_instance("x", &root.join("README.txt")).is_none(), "not DICOM: no instance");
    }
}
