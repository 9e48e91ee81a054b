//! MONAI Label's sessions (`/session/`, monailabel/endpoints/session.py and utils/sessions.py of 0.8.5): a client
//! uploads an image that is not in the datastore (or several files, or a zip of them with `uncompress=true`),
//! gets an id, and runs inference on it (`POST /infer/{model}?session_id=`) — 3D Slicer does this for a local
//! volume. A session lives in `<datastore>/.medpick/sessions/<id>/` (hidden: never a datastore image) with its
//! `meta.json` written last, so a half-made session is never found; it expires `expiry` seconds (at most an hour,
//! MONAI Label's default) after it was last used, and expired ones are removed whenever sessions are touched.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use axum::extract::{Multipart, Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::datastore::{atomic_write, now_ts, to_id};
use crate::routes::Q;
use crate::{ApiError, ApiResult, Shared};

/// The longest (and default) expiry, in seconds.
pub const MAX_EXPIRY: i64 = 3600;
/// Most files one session may hold (uploaded, or unpacked from a zip).
const MAX_FILES: usize = 4096;

/// MONAI Label's `SessionInfo`, field for field.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionInfo {
    pub name: String,
    pub path: String,
    /// The session's image: its one file, or the folder of its files.
    pub image: String,
    pub meta: serde_json::Map<String, serde_json::Value>,
    pub create_ts: i64,
    pub last_access_ts: i64,
    pub expiry: i64,
}

impl SessionInfo {
    pub fn image_path(&self) -> PathBuf {
        PathBuf::from(&self.image)
    }
}

pub fn root(datastore: &Path) -> PathBuf {
    datastore.join(".medpick").join("sessions")
}

/// A session id as this server makes them (a UUID's shape: hex digits and dashes), so an id never names a path.
fn check_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(ApiError::not_found(format!("session {id:?} not found (ids are hex digits and dashes)")));
    }
    Ok(())
}

fn new_id() -> String {
    use sha2::Digest;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let c = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let seed = std::collections::hash_map::RandomState::new();
    let salt = std::hash::BuildHasher::hash_one(&seed, (t, c, std::process::id()));
    let h = sha2::Sha256::digest(format!("{t}:{c}:{}:{salt}", std::process::id()));
    let x: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    // Version 4, variant 1 (a random UUID's layout).
    format!("{}-{}-4{}-a{}-{}", &x[0..8], &x[8..12], &x[13..16], &x[17..20], &x[20..32])
}

/// A client's file name reduced to one safe component (the last of a path; never hidden, empty or `..`).
fn safe_name(name: &str, n: usize) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let ok = !base.is_empty()
        && !base.starts_with('.')
        && base.len() <= 200
        && !base.chars().any(|c| c.is_control() || c == '\0' || c == ':');
    if ok {
        base.to_string()
    } else {
        format!("file-{n}")
    }
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.join("meta.json")
}

fn read_meta(dir: &Path) -> Option<SessionInfo> {
    serde_json::from_slice(&std::fs::read(meta_path(dir)).ok()?).ok()
}

fn write_meta(dir: &Path, s: &SessionInfo) -> ApiResult<()> {
    let bytes = serde_json::to_vec(s).map_err(|e| ApiError::internal(e.to_string()))?;
    atomic_write(&meta_path(dir), &bytes)
}

/// Remove the sessions whose expiry has passed, and folders without a meta file (a create still writing, or one a
/// crash interrupted) once they are older than the longest expiry. Returns how many went.
pub fn remove_expired(root: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(root) else { return 0 };
    let now = now_ts();
    let mut gone = 0;
    for e in rd.flatten() {
        let dir = e.path();
        let age =
            || e.metadata().and_then(|m| m.modified()).ok().and_then(|m| m.elapsed().ok()).map_or(0, |a| a.as_secs());
        let stale = match read_meta(&dir) {
            Some(s) => s.last_access_ts + s.expiry < now,
            // A session being written (or one a crash left half made): gone after the longest expiry.
            None => age() > MAX_EXPIRY as u64,
        };
        if stale && std::fs::remove_dir_all(&dir).is_ok() {
            gone += 1;
        }
    }
    gone
}

/// A new session from uploaded files: `(client file name, bytes)`. One file is the session's image (checked to
/// be an image medpick reads); several go into a folder (a DICOM series); with `uncompress` the one file is a zip
/// whose files are unpacked (entries that would leave the folder are refused).
pub fn create(
    root: &Path,
    files: Vec<(String, Vec<u8>)>,
    expiry: i64,
    uncompress: bool,
    max_unpacked: u64,
) -> ApiResult<SessionInfo> {
    remove_expired(root);
    if files.is_empty() {
        return Err(ApiError::bad("multipart part 'files' (the session's image) is missing"));
    }
    if files.len() > MAX_FILES {
        return Err(ApiError::bad(format!("{} files: a session holds at most {MAX_FILES}", files.len())));
    }
    let files = if uncompress {
        if files.len() != 1 {
            return Err(ApiError::bad(format!("uncompress takes one zip file, not {}", files.len())));
        }
        unzip(&files[0].0, &files[0].1, max_unpacked)?
    } else {
        files.into_iter().enumerate().map(|(n, (name, b))| (safe_name(&name, n), b)).collect()
    };
    if files.len() == 1 {
        let (name, bytes) = &files[0];
        let ext = to_id(name).1;
        crate::labels::image_dims_bytes(name, &ext, bytes)?;
    }
    let id = new_id();
    // Written under a hidden name and renamed once complete, so neither a reader nor the expiry sweep sees a
    // session while it is being written.
    let (dir, part) = (root.join(&id), root.join(format!(".{id}.partial")));
    let io = |e: std::io::Error, p: &Path| ApiError::internal(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(&part).map_err(|e| io(e, &part))?;
    let written = write_files(&part, &dir, &files, expiry);
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&part);
    }
    let s = written?;
    std::fs::rename(&part, &dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&part);
        io(e, &dir)
    })?;
    Ok(s)
}

/// The session's files and meta into `part`, naming the places they will have once `part` is renamed `dir`.
fn write_files(part: &Path, dir: &Path, files: &[(String, Vec<u8>)], expiry: i64) -> ApiResult<SessionInfo> {
    let io = |e: std::io::Error, p: &Path| ApiError::internal(format!("{}: {e}", p.display()));
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let image = if files.len() == 1 {
        let p = part.join(&files[0].0);
        std::fs::write(&p, &files[0].1).map_err(|e| io(e, &p))?;
        dir.join(&files[0].0)
    } else {
        let folder = part.join("files");
        std::fs::create_dir_all(&folder).map_err(|e| io(e, &folder))?;
        let mut seen = std::collections::HashSet::new();
        for (n, (name, bytes)) in files.iter().enumerate() {
            // Two parts of the same name keep both (a number in front until the name is free).
            let mut name = name.clone();
            let mut k = n;
            while !seen.insert(name.clone()) {
                name = format!("{k}-{name}");
                k += 1;
            }
            let p = folder.join(&name);
            std::fs::write(&p, bytes).map_err(|e| io(e, &p))?;
        }
        dir.join("files")
    };
    let now = now_ts();
    let s = SessionInfo {
        name: id.clone(),
        path: dir.to_string_lossy().into_owned(),
        image: image.to_string_lossy().into_owned(),
        meta: serde_json::Map::new(),
        create_ts: now,
        last_access_ts: now,
        expiry: if expiry > 0 { expiry.min(MAX_EXPIRY) } else { MAX_EXPIRY },
    };
    write_meta(part, &s)?;
    Ok(s)
}

/// The files of a zip (a client's `uncompress=true`): plain files only, names kept to their last component,
/// at most `max_unpacked` bytes in all (a zip bomb is refused, not unpacked).
fn unzip(name: &str, bytes: &[u8], max_unpacked: u64) -> ApiResult<Vec<(String, Vec<u8>)>> {
    let bad = |m: String| ApiError::bad(format!("{name:?} (uncompress): {m}"));
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(format!("not a zip file: {e}")))?;
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| bad(format!("entry {i}: {e}")))?;
        if !f.is_file() {
            continue;
        }
        let Some(path) = f.enclosed_name() else {
            return Err(bad(format!("entry {:?} would leave the session's folder", f.name())));
        };
        let base = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if base.starts_with('.') || base.is_empty() {
            continue; // hidden files (__MACOSX's ._ files, .DS_Store)
        }
        if out.len() >= MAX_FILES {
            return Err(bad(format!("more than {MAX_FILES} files")));
        }
        let mut buf = Vec::new();
        let left = max_unpacked.saturating_sub(total);
        (&mut f).take(left.saturating_add(1)).read_to_end(&mut buf).map_err(|e| bad(format!("{base}: {e}")))?;
        total += buf.len() as u64;
        if total > max_unpacked {
            return Err(bad(format!("unpacks to more than {max_unpacked} bytes")));
        }
        let n = out.len();
        out.push((safe_name(&base, n), buf));
    }
    if out.is_empty() {
        return Err(bad("no files in the zip".into()));
    }
    Ok(out)
}

/// A session made for one request, removed when the request ends (or is dropped because its client left).
pub struct Temporary(PathBuf);

impl Temporary {
    pub fn new(datastore: &Path, id: &str) -> Self {
        Temporary(root(datastore).join(id))
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The session `id` (404 when unknown, expired or its image is gone); `touch` renews its expiry.
pub fn get(root: &Path, id: &str, touch: bool) -> ApiResult<SessionInfo> {
    check_id(id)?;
    remove_expired(root);
    let dir = root.join(id);
    let missing = || ApiError::not_found(format!("session {id:?} not found (or expired)"));
    let mut s = read_meta(&dir).ok_or_else(missing)?;
    if !s.image_path().exists() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(missing());
    }
    if touch {
        s.last_access_ts = now_ts();
        write_meta(&dir, &s)?;
    }
    Ok(s)
}

/// Remove session `id`; returns what it was.
pub fn remove(root: &Path, id: &str) -> ApiResult<SessionInfo> {
    let s = get(root, id, false)?;
    std::fs::remove_dir_all(root.join(id)).map_err(|e| ApiError::internal(format!("session {id}: {e}")))?;
    Ok(s)
}

// The routes.
/// `true`/`false` query flags (FastAPI's bool parsing: 1/0, yes/no, on/off too).
fn flag(q: &Q, name: &str) -> ApiResult<bool> {
    match q.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["false", "0", "no", "off", ""].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(ApiError::bad(format!("{name}={v:?}: true or false"))),
    }
}

/// `PUT /session/?expiry=&uncompress=`: a session from the multipart `files` parts.
pub(crate) async fn create_route(State(app): State<Shared>, q: Q, mut mp: Multipart) -> ApiResult<Json<Value>> {
    let mut files = Vec::new();
    while let Some(field) =
        mp.next_field().await.map_err(|e| ApiError::new(e.status(), format!("multipart body: {}", e.body_text())))?
    {
        let (name, filename) = (field.name().unwrap_or("").to_string(), field.file_name().map(|s| s.to_string()));
        let data = field
            .bytes()
            .await
            .map_err(|e| ApiError::new(e.status(), format!("multipart part {name}: {}", e.body_text())))?;
        if name == "files" {
            files.push((filename.unwrap_or_default(), data.to_vec()));
        }
    }
    let expiry = match q.get("expiry").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => v.parse::<i64>().map_err(|_| ApiError::bad(format!("expiry={v:?}: whole seconds")))?,
    };
    let uncompress = flag(&q, "uncompress")?;
    let root = root(&app.cfg.datastore);
    let max = (app.cfg.max_body as u64).saturating_mul(4);
    let s = tokio::task::spawn_blocking(move || create(&root, files, expiry, uncompress, max))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(json!({"session_id": s.name, "session_info": s})))
}

/// `GET /session/{id}?update_ts=&image=`: the session's info, or (`image=true`) its image file.
pub(crate) async fn get_route(State(app): State<Shared>, UrlPath(id): UrlPath<String>, q: Q) -> ApiResult<Response> {
    let (touch, image) = (flag(&q, "update_ts")?, flag(&q, "image")?);
    let root = root(&app.cfg.datastore);
    let s = tokio::task::spawn_blocking(move || get(&root, &id, touch))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    if !image {
        return Ok(Json(s).into_response());
    }
    let path = s.image_path();
    if path.is_dir() {
        return Err(ApiError::bad(format!("session {} holds a folder of files, not one image", s.name)));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    tokio::task::spawn_blocking(move || crate::routes::file_response(&path, &name))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

/// `DELETE /session/{id}`: remove it; answers what it was.
pub(crate) async fn delete_route(State(app): State<Shared>, UrlPath(id): UrlPath<String>) -> ApiResult<Json<Value>> {
    let root = root(&app.cfg.datastore);
    let s = tokio::task::spawn_blocking(move || remove(&root, &id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(json!(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x + y) % 256) as u8]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn sessions_are_made_found_renewed_expired_and_removed() {
        let tmp = std::env::temp_dir().join(format!("medpick-session-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let root = root(&tmp);
        // One image; a client path is cut to its file name.
        let s = create(&root, vec![("C:\\scans\\a.png".into(), png(9, 7))], 0, false, 1 << 20).unwrap();
        assert_eq!(s.expiry, MAX_EXPIRY);
        assert!(s.image.ends_with("a.png") && Path::new(&s.image).starts_with(&root));
        assert_eq!(get(&root, &s.name, true).unwrap().image, s.image);
        // Not an image: refused before anything is written.
        let before = std::fs::read_dir(&root).unwrap().count();
        assert!(create(&root, vec![("b.png".into(), b"nope".to_vec())], 0, false, 1 << 20).is_err());
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), before);
        // Ids that are paths are refused as unknown.
        for id in ["..", "../x", "/etc", "", "zz"] {
            assert_eq!(get(&root, id, false).unwrap_err().status.as_u16(), 404, "{id:?}");
        }
        // Several files: a folder; hostile names reduced to one component.
        let m =
            create(&root, vec![("../../x.dcm".into(), vec![1]), ("..".into(), vec![2])], 10, false, 1 << 20).unwrap();
        assert!(m.image.ends_with("files") && Path::new(&m.image).join("x.dcm").exists());
        assert!(Path::new(&m.image).join("file-1").exists());
        assert_eq!(m.expiry, 10);
        // A zip with an entry that climbs out is refused; a plain one unpacks.
        let zip_of = |names: &[&str]| {
            let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            for n in names {
                w.start_file(*n, zip::write::SimpleFileOptions::default()).unwrap();
                std::io::Write::write_all(&mut w, &png(4, 4)).unwrap();
            }
            w.finish().unwrap().into_inner()
        };
        assert!(create(&root, vec![("s.zip".into(), zip_of(&["../evil.png"]))], 0, true, 1 << 20).is_err());
        let z = create(&root, vec![("s.zip".into(), zip_of(&["d/one.png"]))], 0, true, 1 << 20).unwrap();
        assert!(z.image.ends_with("one.png"));
        assert!(create(&root, vec![("s.zip".into(), zip_of(&["a.png", "b.png"]))], 0, true, 10).is_err());
        // Expiry: a session last used long ago goes at the next touch of the sessions.
        let mut old = read_meta(&root.join(&m.name)).unwrap();
        old.last_access_ts -= 11;
        write_meta(&root.join(&m.name), &old).unwrap();
        assert_eq!(get(&root, &m.name, false).unwrap_err().status.as_u16(), 404);
        assert!(!root.join(&m.name).exists());
        // Removal.
        assert_eq!(remove(&root, &s.name).unwrap().name, s.name);
        assert!(get(&root, &s.name, false).is_err());
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
