//! A MONAI Label local datastore, read and written in MONAI Label 0.8.5's own layout so that an existing datastore
//! works unchanged and what medpick writes is readable by MONAI Label: images directly in the studies folder,
//! labels in `labels/<tag>/<id><ext>` (`final`, `original`, ...), the state in `datastore_v2.json`
//! (`monailabel/datastore/local.py`). Ids are derived as MONAI Label derives them (the file name without its
//! configured extension). Differences, on purpose: a label that replaces an existing one is kept as a version
//! (`labels/<tag>/.versions/`), and every write is atomic (temporary file, fsync, rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ApiError, ApiResult};

/// The state file's name (MONAI Label's `datastore_config` default).
pub const STATE_FILE: &str = "datastore_v2.json";
/// MONAI Label's default file patterns (`MONAI_LABEL_DATASTORE_FILE_EXT`), plus the 2-D formats medpick reads.
/// Order matters as in MONAI Label: the last matching extension wins.
pub const EXTENSIONS: &[&str] = &[".nii.gz", ".nii", ".nrrd", ".jpg", ".png", ".tif", ".jpeg", ".tiff", ".bmp", ".dcm"];
/// Label tags MONAI Label creates.
pub const FINAL: &str = "final";
pub const ORIGINAL: &str = "original";

/// One file's entry: its extension and free-form info (ts, name, strategy, label_info, ...).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DataModel {
    #[serde(default)]
    pub ext: String,
    #[serde(default)]
    pub info: Map<String, Value>,
}

/// An image and its labels by tag.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageLabelModel {
    pub image: DataModel,
    #[serde(default)]
    pub labels: BTreeMap<String, DataModel>,
}

/// `datastore_v2.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatastoreModel {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_description")]
    pub description: String,
    #[serde(default = "default_images_dir")]
    pub images_dir: String,
    #[serde(default = "default_labels_dir")]
    pub labels_dir: String,
    #[serde(default)]
    pub objects: BTreeMap<String, ImageLabelModel>,
}

fn default_name() -> String {
    "new-dataset".into()
}
fn default_description() -> String {
    "New Dataset".into()
}
fn default_images_dir() -> String {
    ".".into()
}
fn default_labels_dir() -> String {
    "labels".into()
}

pub fn now_ts() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `(id, ext)` of a file name as MONAI Label's `_to_id` derives them: the last configured extension the name ends
/// with (else the chain of trailing suffixes), and the name without it. Unlike MONAI Label (which removes the
/// extension wherever it occurs in the name) only the trailing extension is removed.
pub fn to_id(file: &str) -> (String, String) {
    let mut ext = suffix_chain(file);
    for e in EXTENSIONS {
        if file.ends_with(e) {
            ext = e.to_string();
        }
    }
    (file[..file.len() - ext.len()].to_string(), ext)
}

/// Every trailing suffix of at most 10 characters, as MONAI Label's `file_ext`.
fn suffix_chain(file: &str) -> String {
    let parts: Vec<&str> = file.split('.').collect();
    let mut ext = String::new();
    for p in parts.iter().skip(1).rev() {
        if p.is_empty() || p.len() > 10 {
            break;
        }
        ext = format!(".{p}{ext}");
    }
    if ext.len() >= file.len() {
        String::new()
    } else {
        ext
    }
}

/// An id or tag is one plain file-name component: no separators, no `..`, no NUL, not hidden, not empty.
pub fn check_name(what: &str, s: &str) -> ApiResult<()> {
    let bad = s.is_empty()
        || s.len() > 200
        || s.starts_with('.')
        || s.contains(['/', '\\', '\0'])
        || s.chars().any(|c| c.is_control());
    if bad {
        return Err(ApiError::bad(format!("{what} {s:?} is not a datastore name (one plain file name, not hidden)")));
    }
    Ok(())
}

/// `root` joined with a relative folder, without `.` components (`images_dir` is "." in MONAI Label's layout).
fn under(root: &Path, rel: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in Path::new(rel).components() {
        if let std::path::Component::Normal(s) = c {
            p.push(s);
        }
    }
    p
}

/// The datastore: its folder, its state, and where its files are.
pub struct Datastore {
    pub root: PathBuf,
    pub model: DatastoreModel,
    /// The exclusive lock on `<root>/.lock` (the file MONAI Label's filelock uses): one server per datastore.
    _lock: std::fs::File,
}

/// The `ext` of a DICOM series (a folder of slices) in the state file: none, the folder's name is the id.
pub const SERIES_EXT: &str = "";

/// Two paths name the same folder (symlinks resolved).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A folder holds DICOM files (by extension, or the `DICM` preamble of a file without one): the first 64
/// entries are enough to tell.
pub fn is_series_dir(p: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(p) else { return false };
    rd.flatten().take(64).any(|e| {
        let f = e.path();
        !e.file_name().to_string_lossy().starts_with('.') && f.is_file() && medpick_core::io::dicom::is_dicom_path(&f)
    })
}

/// A series folder's own files, sorted by name: not hidden, and resolving into the folder itself (a link that
/// leads anywhere else is left out).
pub fn series_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let folder = std::fs::canonicalize(dir)?;
    let inside = |p: &Path| std::fs::canonicalize(p).is_ok_and(|c| c.parent() == Some(folder.as_path()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) && inside(p))
        .collect();
    files.sort();
    Ok(files)
}

/// A DICOM series as one download: a zip of its folder's files (stored, sorted by name, fixed times, so the same
/// folder always gives the same bytes and the same checksum).
/// Only the folder's own files: a link that resolves anywhere else (out of the datastore, or to its state or
/// another image) is left out, as it is from the series' slices.
pub fn zip_series(dir: &Path) -> ApiResult<Vec<u8>> {
    let files = series_files(dir).map_err(|e| ApiError::io(dir, e))?;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .large_file(false);
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(&f).map_err(|e| ApiError::io(&f, e))?;
        w.start_file(name.as_str(), opts).map_err(|e| ApiError::internal(format!("{}: {e}", f.display())))?;
        std::io::Write::write_all(&mut w, &bytes).map_err(|e| ApiError::io(&f, e))?;
    }
    let out = w.finish().map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
    Ok(out.into_inner())
}

/// Extensions a label file may have (after MONAI Label's id rule `x.seg.nrrd` is `.nrrd`).
pub const LABEL_EXTS: &[&str] = &[".png", ".tif", ".tiff", ".bmp", ".nii", ".nii.gz", ".nrrd"];

impl Datastore {
    /// Open (and reconcile with the folder) the datastore in `root`; creates `labels/final` and `labels/original`
    /// as MONAI Label does, and the state file if missing.
    pub fn open(root: &Path) -> std::result::Result<Datastore, String> {
        let root = std::fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
        if !root.is_dir() {
            return Err(format!("{}: not a folder", root.display()));
        }
        let lock_path = root.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        if let Err(e) = lock.try_lock() {
            return Err(match e {
                std::fs::TryLockError::WouldBlock => {
                    format!("{}: another server (medpick serve or MONAI Label) has this datastore open", root.display())
                }
                std::fs::TryLockError::Error(e) => format!("{}: {e}", lock_path.display()),
            });
        }
        let state = root.join(STATE_FILE);
        // The state as it was before medpick first rewrote it.
        let backup = root.join(".datastore_v2.json.before-medpick");
        if state.is_file() && !backup.exists() {
            std::fs::copy(&state, &backup).map_err(|e| format!("{}: {e}", backup.display()))?;
        }
        let model = if state.is_file() {
            let text = std::fs::read_to_string(&state).map_err(|e| format!("{}: {e}", state.display()))?;
            serde_json::from_str::<DatastoreModel>(&text)
                .map_err(|e| format!("{}: not a MONAI Label datastore state ({e})", state.display()))?
        } else {
            DatastoreModel {
                name: default_name(),
                description: default_description(),
                images_dir: default_images_dir(),
                labels_dir: default_labels_dir(),
                objects: BTreeMap::new(),
            }
        };
        for d in [&model.images_dir, &model.labels_dir] {
            if Path::new(d).is_absolute() || d.split(['/', '\\']).any(|c| c == "..") {
                return Err(format!("{}: images_dir/labels_dir {d:?} leaves the datastore", state.display()));
            }
        }
        // Entries the state file holds that medpick cannot serve safely (a name that is not one plain file name, an
        // extension it does not read) are left out (the backup above keeps them).
        let mut model = model;
        model.objects.retain(|id, o| {
            check_name("image", id).is_ok() && (EXTENSIONS.contains(&o.image.ext.as_str()) || o.image.ext == SERIES_EXT)
        });
        for o in model.objects.values_mut() {
            o.labels.retain(|tag, l| check_name("tag", tag).is_ok() && LABEL_EXTS.contains(&l.ext.as_str()));
        }
        let mut ds = Datastore { root, model, _lock: lock };
        for tag in [FINAL, ORIGINAL] {
            let d = ds.labels_dir().join(tag);
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        // Temporary files of writes that a crash interrupted (the complete file was never renamed over).
        let mut dirs = vec![ds.root.clone(), ds.images_dir()];
        if let Ok(rd) = std::fs::read_dir(ds.labels_dir()) {
            dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        for d in dirs {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('.') && n.ends_with(".tmp") && e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        ds.reconcile();
        ds.save().map_err(|e| e.message)?;
        Ok(ds)
    }

    pub fn images_dir(&self) -> PathBuf {
        under(&self.root, &self.model.images_dir)
    }

    pub fn labels_dir(&self) -> PathBuf {
        under(&self.root, &self.model.labels_dir)
    }

    /// Files of a folder that match the extensions: (id, ext, file name). Not recursive, hidden files skipped,
    /// symlinks followed only when they stay inside the datastore. With `series`, a sub-folder that holds DICOM
    /// files is one image too (a DICOM series: id its name, ext [`SERIES_EXT`]); the labels folder never is.
    fn listing(&self, dir: &Path, series: bool) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(dir) else { return out };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == STATE_FILE {
                continue;
            }
            let p = e.path();
            if series && p.is_dir() && self.inside(&p) && !same_dir(&p, &self.labels_dir()) && is_series_dir(&p) {
                if check_name("image", &name).is_ok() {
                    out.push((name.clone(), SERIES_EXT.to_string(), name));
                }
                continue;
            }
            if !self.inside(&p) || !p.is_file() {
                continue;
            }
            let (id, ext) = to_id(&name);
            if !EXTENSIONS.contains(&ext.as_str()) || id.is_empty() {
                continue;
            }
            out.push((id, ext, name));
        }
        out.sort();
        out
    }

    /// `p` resolves (symlinks followed) to a place inside the datastore's folder.
    pub fn inside(&self, p: &Path) -> bool {
        std::fs::canonicalize(p).map(|c| c.starts_with(&self.root)).unwrap_or(false)
    }

    /// Bring the state in line with the files: new images and labels are added, entries whose files are gone are
    /// dropped (MONAI Label's reconcile).
    pub fn reconcile(&mut self) -> bool {
        let ts = now_ts();
        let mut changed = false;
        let images = self.listing(&self.images_dir(), true);
        let present: std::collections::HashSet<&String> = images.iter().map(|(id, _, _)| id).collect();
        // Gone: no file at all. An entry whose file exists but is not served (a link out of the folder) keeps its
        // info (labels, stamps) in the state; it is simply not offered.
        let images_dir = self.images_dir();
        let gone: Vec<String> = self
            .model
            .objects
            .iter()
            .filter(|(k, o)| {
                !present.contains(k)
                    && std::fs::symlink_metadata(images_dir.join(format!("{k}{}", o.image.ext))).is_err()
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in gone {
            self.model.objects.remove(&id);
            changed = true;
        }
        for (id, ext, name) in &images {
            let o = self.model.objects.entry(id.clone()).or_insert_with(|| {
                changed = true;
                let mut info = Map::new();
                info.insert("ts".into(), ts.into());
                info.insert("name".into(), name.clone().into());
                ImageLabelModel { image: DataModel { ext: ext.clone(), info }, labels: BTreeMap::new() }
            });
            if &o.image.ext != ext {
                o.image.ext = ext.clone();
                changed = true;
            }
        }
        let labels_dir = self.labels_dir();
        let tags: Vec<String> = std::fs::read_dir(&labels_dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|t| !t.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        for tag in tags {
            let files = self.listing(&labels_dir.join(&tag), false);
            let have: std::collections::HashSet<&String> = files.iter().map(|(id, _, _)| id).collect();
            for o in self.model.objects.iter_mut() {
                if o.1.labels.contains_key(&tag) && !have.contains(o.0) {
                    o.1.labels.remove(&tag);
                    changed = true;
                }
            }
            for (id, ext, name) in &files {
                if let Some(o) = self.model.objects.get_mut(id) {
                    if o.labels.get(&tag).map(|l| &l.ext) != Some(ext) {
                        let mut info = Map::new();
                        info.insert("ts".into(), ts.into());
                        info.insert("name".into(), name.clone().into());
                        o.labels.insert(tag.clone(), DataModel { ext: ext.clone(), info });
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// Write the state file atomically (MONAI Label's format: indent 2).
    pub fn save(&self) -> ApiResult<()> {
        let text = serde_json::to_string_pretty(&self.model).map_err(|e| ApiError::internal(e.to_string()))?;
        atomic_write(&self.root.join(STATE_FILE), text.as_bytes())
    }

    pub fn image_path(&self, id: &str) -> ApiResult<PathBuf> {
        check_name("image", id)?;
        let o = self.model.objects.get(id).ok_or_else(|| ApiError::not_found(format!("image {id:?} not found")))?;
        let p = self.images_dir().join(format!("{id}{}", o.image.ext));
        // A series is a folder of DICOM files, every other image a file (whatever a hand-edited state says).
        let kind_ok = if o.image.ext == SERIES_EXT { p.is_dir() && is_series_dir(&p) } else { p.is_file() };
        if !kind_ok || !self.inside(&p) {
            return Err(ApiError::not_found(format!("image {id:?} not found in the datastore")));
        }
        Ok(p)
    }

    pub fn label_path(&self, id: &str, tag: &str) -> ApiResult<PathBuf> {
        check_name("label", id)?;
        check_name("tag", tag)?;
        let o = self.model.objects.get(id).ok_or_else(|| ApiError::not_found(format!("label {id:?} not found")))?;
        let l = o.labels.get(tag).ok_or_else(|| ApiError::not_found(format!("label {id:?} has no tag {tag:?}")))?;
        let p = self.labels_dir().join(tag).join(format!("{id}{}", l.ext));
        if !self.inside(&p) {
            return Err(ApiError::not_found(format!("label {id:?} ({tag}) not found in the datastore")));
        }
        Ok(p)
    }

    /// Ids of the images with a `final` label.
    pub fn labeled(&self) -> Vec<String> {
        self.model.objects.iter().filter(|(_, o)| o.labels.contains_key(FINAL)).map(|(k, _)| k.clone()).collect()
    }

    /// `GET /datastore/?output=stats` (MONAI Label's `status()`).
    pub fn stats(&self) -> Value {
        let mut tags: BTreeMap<String, usize> = BTreeMap::new();
        for o in self.model.objects.values() {
            for t in o.labels.keys() {
                *tags.entry(t.clone()).or_default() += 1;
            }
        }
        serde_json::json!({
            "total": self.model.objects.len(),
            "completed": self.labeled().len(),
            "label_tags": tags,
        })
    }

    /// `GET /datastore/?output=train`: absolute image and final label paths.
    pub fn train_list(&self) -> Value {
        let mut out = Vec::new();
        for id in self.labeled() {
            if let (Ok(i), Ok(l)) = (self.image_path(&id), self.label_path(&id, FINAL)) {
                out.push(serde_json::json!({"image": i.display().to_string(), "label": l.display().to_string()}));
            }
        }
        Value::Array(out)
    }

    /// The folder a label of `tag` is written to (created), for [`stage`].
    pub fn label_dir(&self, tag: &str) -> ApiResult<PathBuf> {
        check_name("tag", tag)?;
        let dir = self.labels_dir().join(tag);
        std::fs::create_dir_all(&dir).map_err(|e| ApiError::io(&dir, e))?;
        Ok(dir)
    }

    /// Store the staged file as the `tag` label of image `id` (extension `ext`), atomically; an existing label file is
    /// kept under `labels/<tag>/.versions/` first. Returns the version file, if one was made. The caller saves the
    /// state ([`Datastore::save`]).
    pub fn save_label(
        &mut self,
        id: &str,
        tag: &str,
        ext: &str,
        staged: Staged,
        mut info: Map<String, Value>,
    ) -> ApiResult<Option<PathBuf>> {
        check_name("image", id)?;
        check_name("tag", tag)?;
        if !self.model.objects.contains_key(id) {
            return Err(ApiError::not_found(format!("image {id:?} not found")));
        }
        let dir = self.labels_dir().join(tag);
        std::fs::create_dir_all(&dir).map_err(|e| ApiError::io(&dir, e))?;
        let ts = now_ts();
        let mut version = None;
        let mut replaced = None;
        if let Some(old) = self.model.objects.get(id).and_then(|o| o.labels.get(tag)).cloned() {
            let old_path = dir.join(format!("{id}{}", old.ext));
            if old_path.is_file() {
                let vdir = dir.join(".versions");
                std::fs::create_dir_all(&vdir).map_err(|e| ApiError::io(&vdir, e))?;
                let dest = free_name(&vdir, &format!("{id}.v{ts}"), &old.ext);
                // A hard link keeps the old file under its version name; the rename below then replaces the
                // final name atomically, so at every moment one complete label is there.
                std::fs::hard_link(&old_path, &dest).map_err(|e| ApiError::io(&dest, e))?;
                sync_dir(&vdir);
                if old.ext != ext {
                    replaced = Some(old_path);
                }
                version = Some(dest);
            }
        }
        let path = dir.join(format!("{id}{ext}"));
        staged.commit(&path)?;
        // The old file under another extension goes only now that the new one is in place (its version is kept).
        if let Some(old) = replaced {
            let _ = std::fs::remove_file(old);
        }
        info.insert("ts".into(), ts.into());
        info.insert("name".into(), format!("{id}{ext}").into());
        if let Some(v) = &version {
            let rel = v.strip_prefix(&self.root).unwrap_or(v).display().to_string();
            info.insert("previous_version".into(), rel.into());
        }
        if let Some(o) = self.model.objects.get_mut(id) {
            o.labels.insert(tag.to_string(), DataModel { ext: ext.to_string(), info });
        }
        // The label file is durable now; the state file follows within a second (the server's flusher), so that
        // concurrent uploads do not queue behind rewriting it. A crash in between loses only the label's info:
        // the next start finds the file and lists it again.
        Ok(version)
    }

    /// `DELETE /datastore/label?id=&tag=`: the file goes to `.versions` (nothing a user made is lost).
    pub fn delete_label(&mut self, id: &str, tag: &str) -> ApiResult<()> {
        check_name("image", id)?;
        check_name("tag", tag)?;
        let Some(o) = self.model.objects.get(id) else { return Ok(()) };
        let Some(l) = o.labels.get(tag).cloned() else { return Ok(()) };
        let dir = self.labels_dir().join(tag);
        let path = dir.join(format!("{id}{}", l.ext));
        if path.is_file() {
            let vdir = dir.join(".versions");
            std::fs::create_dir_all(&vdir).map_err(|e| ApiError::io(&vdir, e))?;
            let dest = free_name(&vdir, &format!("{id}.deleted{}", now_ts()), &l.ext);
            // A link then an unlink: the link fails rather than replace an existing version.
            std::fs::hard_link(&path, &dest).map_err(|e| ApiError::io(&dest, e))?;
            std::fs::remove_file(&path).map_err(|e| ApiError::io(&path, e))?;
            sync_dir(&vdir);
        }
        if let Some(o) = self.model.objects.get_mut(id) {
            o.labels.remove(tag);
        }
        Ok(()) // the caller saves the state
    }

    /// Add an uploaded image (`PUT /datastore/?image=`): a new id only; an existing image is never replaced.
    pub fn add_image(&mut self, id: &str, ext: &str, bytes: &[u8], mut info: Map<String, Value>) -> ApiResult<()> {
        check_name("image", id)?;
        if self.model.objects.contains_key(id) {
            return Err(ApiError::conflict(format!("image {id:?} exists; medpick does not replace images")));
        }
        let path = self.images_dir().join(format!("{id}{ext}"));
        if path.exists() {
            return Err(ApiError::conflict(format!("{} exists", path.display())));
        }
        atomic_write(&path, bytes)?;
        info.insert("ts".into(), now_ts().into());
        info.insert("name".into(), format!("{id}{ext}").into());
        self.model.objects.insert(
            id.to_string(),
            ImageLabelModel { image: DataModel { ext: ext.into(), info }, labels: BTreeMap::new() },
        );
        Ok(()) // the caller saves the state
    }
}

/// `dir/<stem>-<n><ext>` for the first n ≥ 1 that does not exist.
fn free_name(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    let mut n = 1;
    loop {
        let p = dir.join(format!("{stem}-{n}{ext}"));
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
        n += 1;
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A file written and fsynced under a temporary name in its final folder, waiting for its rename.
pub struct Staged(PathBuf);

impl Staged {
    /// Rename into place (atomic within the folder) and fsync the folder.
    pub fn commit(self, path: &Path) -> ApiResult<()> {
        std::fs::rename(&self.0, path).map_err(|e| ApiError::io(path, e))?;
        if let Some(d) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = d.sync_all();
        }
        let _ = std::mem::ManuallyDrop::new(self);
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Write `bytes` under a temporary (hidden) name in `dir` and fsync it: the slow half of an atomic write, done
/// without holding the datastore's lock.
pub fn stage(dir: &Path, name: &str, bytes: &[u8]) -> ApiResult<Staged> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let staged = Staged(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&staged.0)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| ApiError::io(&staged.0, e))?;
    Ok(staged)
}

/// Write `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the folder. A crash
/// leaves either the old file or the new one, never half of one (temporary files start with `.` and are not
/// datastore files).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> ApiResult<()> {
    let dir = path.parent().ok_or_else(|| ApiError::internal(format!("{}: no folder", path.display())))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ApiError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_monai_label_derives_them() {
        assert_eq!(to_id("spleen_10.nii.gz"), ("spleen_10".into(), ".nii.gz".into()));
        assert_eq!(to_id("img.v2.nii.gz"), ("img.v2".into(), ".nii.gz".into()));
        assert_eq!(to_id("x.seg.nrrd"), ("x.seg".into(), ".nrrd".into()));
        assert_eq!(to_id("a.png"), ("a".into(), ".png".into()));
        assert_eq!(to_id("noext"), ("noext".into(), "".into()));
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for bad in ["..", "../x", "a/b", "a\\b", "", ".hidden", "/etc/passwd", "x\0y"] {
            assert!(check_name("image", bad).is_err(), "{bad:?}");
        }
        check_name("image", "case_001").unwrap();
    }
}
