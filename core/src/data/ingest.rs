//! [`ingest`]: walk a dataset (streaming: one file decoded at a time), validate every file fully, emit one
//! [`Sample`] per 2-D image, volume slice, frame or archive entry, and report what it skipped and why. Class
//! labels from folders or a labels CSV; masks from `images/` + `masks/` layouts, suffixes or label volumes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::io::dicom::{self, DicomInfo};
use crate::data::io::image2d::{decode_image_file, image_dimensions, is_image_path};
use crate::data::io::nifti::{self, View};
use crate::data::io::walk::{walk_files, WalkNotes};
use crate::data::io::{npz, Image2d, Window, DEFAULT_MAX_PIXELS};
use crate::{Error, Result};

use super::manifest::{MaskKind, Sample, SampleKind, Split};

/// Where classification labels come from.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSource {
    /// Masks by folder convention, else `labels.csv` at the root, else class sub-folders.
    Auto,
    None,
    /// The first path component under the root is the class (`class/img.png`).
    Folders,
    /// A CSV with columns `id,label` (id = relative path or file stem).
    Csv(PathBuf),
}

/// Ingest settings.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Views to slice volumes along (axial by default).
    pub views: Vec<View>,
    pub window: Window,
    pub max_pixels: u64,
    pub labels: LabelSource,
    /// Masks next to their images: `<stem><suffix>.<ext>` (e.g. CHASE_DB1's `_1stHO`, `_2ndHO`).
    pub mask_suffixes: Vec<String>,
    /// Volume index in 4-D NIfTI files.
    pub time: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            views: vec![View::Axial],
            window: Window::File,
            max_pixels: DEFAULT_MAX_PIXELS,
            labels: LabelSource::Auto,
            mask_suffixes: Vec::new(),
            time: 0,
        }
    }
}

/// What an ingest found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestReport {
    pub root: String,
    pub samples: usize,
    pub files: usize,
    pub per_kind: BTreeMap<String, usize>,
    pub per_label: BTreeMap<String, usize>,
    pub with_mask: usize,
    pub instances_total: u64,
    /// (path, reason): files that were not ingested.
    pub skipped: Vec<(String, String)>,
    /// Hidden files and folders skipped.
    pub hidden_skipped: usize,
    /// Files that are not images/volumes (skipped with a note).
    pub not_media: usize,
    /// Skipped files whose header claims more pixels than the size cap (a front end can say how to raise it).
    #[serde(default)]
    pub over_size_cap: usize,
}

impl IngestReport {
    /// Data files (images, volumes, archives) that could not be ingested: what makes a run exit 3. Files medpick
    /// does not read at all (a README, a spreadsheet) are listed but do not count.
    pub fn failed(&self) -> usize {
        self.skipped.len() - self.not_media
    }
}

/// Image folders and the mask folders looked for beside each, in order (shared with `upload`): `images/` with
/// [`MASK_DIRS`], and the Medical Segmentation Decathlon's `imagesTr/` with `labelsTr/`.
pub(crate) const LAYOUTS: &[(&str, &[(&str, MaskKind)])] =
    &[("images", MASK_DIRS), ("imagesTr", &[("labelsTr", MaskKind::Binary)])];

/// Mask folder names beside `images/`, in the order they are looked for.
pub(crate) const MASK_DIRS: &[(&str, MaskKind)] = &[
    ("masks", MaskKind::Binary),
    ("mask", MaskKind::Binary),
    ("labels", MaskKind::Binary),
    ("gt", MaskKind::Binary),
    ("ground_truth", MaskKind::Binary),
    ("instance_labels", MaskKind::Instances),
    ("instances", MaskKind::Instances),
];

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn stem_of(p: &Path) -> String {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".nii.gz") {
        return name[..name.len() - 7].to_string();
    }
    p.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string()
}

/// Count the distinct non-zero labels of an instance map.
fn count_instances(img: &Image2d) -> u32 {
    let mut seen = std::collections::HashSet::new();
    for v in img.first_channel_u32() {
        if v != 0 {
            seen.insert(v);
        }
    }
    seen.len() as u32
}

/// Walk `input` (a folder or a single file), validate every file and stream one [`Sample`] per 2-D image to
/// `emit`. `progress(done, total, path)` is called per file.
pub fn ingest(
    input: &Path,
    opts: &IngestOptions,
    emit: &mut dyn FnMut(&Sample) -> Result<()>,
    progress: &mut dyn FnMut(usize, usize, &Path),
) -> Result<IngestReport> {
    let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
    let root: PathBuf = if meta.is_file() {
        input.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    } else {
        input.to_path_buf()
    };
    let mut report = IngestReport { root: root.display().to_string(), ..Default::default() };

    // Layout: images/ + masks/ (or instance_labels/ ...), or imagesTr/ + labelsTr/, with the same stems.
    let mut mask_dir: Option<(PathBuf, MaskKind)> = None;
    let mut walk_root = input.to_path_buf();
    for (images, masks) in LAYOUTS {
        if !meta.is_dir() || !root.join(images).is_dir() {
            continue;
        }
        if let Some((name, kind)) = masks.iter().find(|(name, _)| root.join(name).is_dir()) {
            mask_dir = Some((root.join(name), *kind));
            walk_root = root.join(images);
            break;
        }
    }
    let mask_index: HashMap<String, PathBuf> = match &mask_dir {
        Some((dir, _)) => {
            let mut m = HashMap::new();
            let mut notes = WalkNotes::default();
            walk_files(dir, &mut notes, &mut |p| {
                if is_image_path(p) || nifti::is_nifti_path(p) {
                    m.insert(stem_of(p), p.to_path_buf());
                }
                Ok(())
            })?;
            m
        }
        None => HashMap::new(),
    };

    // Classification labels.
    let mut csv_labels: Option<HashMap<String, String>> = None;
    let mut folder_labels = false;
    match &opts.labels {
        LabelSource::None => {}
        LabelSource::Csv(p) => csv_labels = Some(read_label_csv(p)?),
        LabelSource::Folders => folder_labels = true,
        LabelSource::Auto => {
            if mask_dir.is_none() && meta.is_dir() {
                let csv = root.join("labels.csv");
                if csv.is_file() {
                    csv_labels = Some(read_label_csv(&csv)?);
                } else {
                    folder_labels = looks_like_class_folders(&root);
                }
            }
        }
    }

    // First pass: the list of files (for the progress total and for mask-suffix pairing).
    let mut files = Vec::new();
    let mut notes = WalkNotes::default();
    walk_files(&walk_root, &mut notes, &mut |p| {
        files.push(p.to_path_buf());
        Ok(())
    })?;
    report.hidden_skipped = notes.hidden_skipped;
    for (p, why) in notes.unreadable {
        report.skipped.push((rel(&root, &p), format!("{}: cannot read: {why}", rel(&root, &p))));
    }
    if files.is_empty() {
        return Err(Error::Invalid(format!("{}: no files found (empty folder?)", input.display())));
    }
    report.files = files.len();

    // Suffix masks: `<stem><suffix>.<ext>` next to `<stem>.<ext>`.
    let mut suffix_masks: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    let mut is_suffix_mask = std::collections::HashSet::new();
    if !opts.mask_suffixes.is_empty() {
        let by_dir_stem: HashMap<(PathBuf, String), PathBuf> = files
            .iter()
            .filter(|p| is_image_path(p))
            .map(|p| ((p.parent().unwrap_or(Path::new("")).to_path_buf(), stem_of(p)), p.clone()))
            .collect();
        for p in files.iter().filter(|p| is_image_path(p)) {
            let stem = stem_of(p);
            for suf in &opts.mask_suffixes {
                if let Some(base) = stem.strip_suffix(suf.as_str()) {
                    let key = (p.parent().unwrap_or(Path::new("")).to_path_buf(), base.to_string());
                    if let Some(img) = by_dir_stem.get(&key) {
                        suffix_masks.entry(img.clone()).or_default().push(p.clone());
                        is_suffix_mask.insert(p.clone());
                    }
                }
            }
        }
        for v in suffix_masks.values_mut() {
            v.sort_by_key(|m| {
                let s = stem_of(m);
                opts.mask_suffixes.iter().position(|suf| s.ends_with(suf.as_str())).unwrap_or(usize::MAX)
            });
        }
    }

    let mut dicoms: Vec<(PathBuf, DicomInfo)> = Vec::new();
    let total = files.len();
    let mut out_count = 0usize;
    let mut emit_counted = |s: &Sample, report: &mut IngestReport| -> Result<()> {
        *report.per_kind.entry(format!("{:?}", s.kind).to_lowercase()).or_default() += 1;
        if let Some(l) = &s.label {
            *report.per_label.entry(l.clone()).or_default() += 1;
        }
        if !s.masks.is_empty() {
            report.with_mask += 1;
        }
        report.instances_total += s.instances.unwrap_or(0) as u64;
        out_count += 1;
        emit(s)
    };

    for (i, path) in files.iter().enumerate() {
        progress(i, total, path);
        if is_suffix_mask.contains(path) {
            continue;
        }
        let r = rel(&root, path);
        let class = class_label(&r, path, folder_labels, csv_labels.as_ref());
        let lower = path.to_string_lossy().to_ascii_lowercase();
        let result: Result<()> = if is_image_path(path) {
            ingest_image(&root, path, opts, &mask_dir, &mask_index, suffix_masks.get(path), class, &mut |s| {
                emit_counted(s, &mut report)
            })
        } else if nifti::is_nifti_path(path) {
            ingest_nifti(&root, path, opts, &mask_dir, &mask_index, class, &mut |s| emit_counted(s, &mut report))
        } else if lower.ends_with(".npz") {
            ingest_npz(&root, path, &mut |s| emit_counted(s, &mut report))
        } else if dicom::is_dicom_path(path) {
            match dicom::read_info(path) {
                Ok(inf) if !inf.has_pixel_data => {
                    Err(Error::decode(path, "DICOM file without Pixel Data (not an image)"))
                }
                Ok(inf) => {
                    dicoms.push((path.clone(), inf));
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            report.not_media += 1;
            report.skipped.push((r.clone(), "not an image, volume or archive medpick reads".into()));
            Ok(())
        };
        if let Err(e) = result {
            report.skipped.push((r, e.to_string()));
            report.over_size_cap += usize::from(e.is_over_size_cap());
        }
    }
    progress(total, total, &walk_root);

    // DICOM: group into series, order, check for gaps, then validate and emit each slice.
    let (ordered, gaps) = order_dicom_series(dicoms.into_iter().map(|(p, inf)| (rel(&root, &p), inf, p)).collect());
    report.skipped.extend(gaps);
    for members in ordered {
        for (_, inf, p) in &members {
            let r = rel(&root, p);
            let class = class_label(&r, p, folder_labels, csv_labels.as_ref());
            let res = (|| -> Result<()> {
                // Decode the first frame to validate the pixel data and the transfer syntax.
                let img = dicom::read_frame(p, 0, opts.window, opts.max_pixels)?;
                for f in 0..inf.frames {
                    let id = if inf.frames > 1 { format!("{r}#frame:{f}") } else { r.clone() };
                    let spacing = inf.pixel_spacing.map(|s| {
                        let mut v = vec![s[1] as f32, s[0] as f32];
                        if let Some(t) = inf.slice_thickness {
                            v.push(t as f32);
                        }
                        v
                    });
                    let s = Sample {
                        id,
                        kind: SampleKind::Dicom,
                        source: r.clone(),
                        view: None,
                        slice: None,
                        frame: (inf.frames > 1).then_some(f),
                        npz_split: None,
                        npz_index: None,
                        width: img.width,
                        height: img.height,
                        channels: img.channels,
                        spacing,
                        group: inf.series_uid.clone().map(|u| format!("series:{u}")).unwrap_or_else(|| r.clone()),
                        masks: vec![],
                        mask_kind: None,
                        instances: None,
                        label: class.clone(),
                        given_split: None,
                    };
                    emit_counted(&s, &mut report)?;
                }
                Ok(())
            })();
            if let Err(e) = res {
                report.skipped.push((r, e.to_string()));
                report.over_size_cap += usize::from(e.is_over_size_cap());
            }
        }
    }
    report.samples = out_count;
    Ok(report)
}

/// DICOM files grouped into series (by Series Instance UID, in UID order; a file without one is its own
/// series), each ordered by slice position (or instance number), ties by path. A series of three or more
/// with a missing slice is dropped whole: its files come back in the second list with the reason.
/// `rel` is each file's path relative to the dataset root. Shared by `ingest` and the browser upload.
#[allow(clippy::type_complexity)] // (series of (rel, info, payload)), (rel, reason)
pub fn order_dicom_series<T>(
    files: Vec<(String, DicomInfo, T)>,
) -> (Vec<Vec<(String, DicomInfo, T)>>, Vec<(String, String)>) {
    let mut series: BTreeMap<String, Vec<(String, DicomInfo, T)>> = BTreeMap::new();
    for (r, inf, t) in files {
        let key = inf.series_uid.clone().unwrap_or_else(|| format!("file:{r}"));
        series.entry(key).or_default().push((r, inf, t));
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (uid, mut members) in series {
        let by_pos = members.iter().all(|(_, i, _)| i.position.is_some());
        members.sort_by(|a, b| {
            let ka = dicom::slice_key(&a.1).unwrap_or(0.0);
            let kb = dicom::slice_key(&b.1).unwrap_or(0.0);
            ka.total_cmp(&kb).then_with(|| a.0.split('/').cmp(b.0.split('/')))
        });
        let keys: Vec<f64> = members.iter().filter_map(|(_, i, _)| dicom::slice_key(i)).collect();
        if members.len() >= 3 && keys.len() == members.len() {
            if let Some((after, gap, expected)) = dicom::find_gap(&keys, by_pos) {
                let unit = if by_pos { " mm" } else { "" };
                let msg = format!(
                    "DICOM series {uid}: missing slice between {} and {} (gap {gap:.2}{unit}, expected {expected:.2}{unit}); series skipped",
                    members[after].0,
                    members[after + 1].0
                );
                skipped.extend(members.iter().map(|(r, _, _)| (r.clone(), msg.clone())));
                continue;
            }
        }
        out.push(members);
    }
    (out, skipped)
}

fn looks_like_class_folders(root: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(root) else {
        return false;
    };
    let mut dirs = 0;
    for e in rd.flatten() {
        let p = e.path();
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if p.is_dir() {
            dirs += 1;
        } else if is_image_path(&p) || nifti::is_nifti_path(&p) || dicom::is_dicom_path(&p) {
            return false;
        }
    }
    dirs >= 2
}

fn class_label(rel_path: &str, path: &Path, folders: bool, csv: Option<&HashMap<String, String>>) -> Option<String> {
    if let Some(m) = csv {
        return m.get(rel_path).or_else(|| m.get(&stem_of(path))).cloned();
    }
    if folders {
        let mut parts = rel_path.split('/');
        let first = parts.next()?;
        parts.next()?; // a file directly at the root has no class folder
        return Some(first.to_string());
    }
    None
}

/// id → label from a labels CSV ([`crate::data::csv::read_labels`]: an `id`/`label` header, or `id,label` rows).
pub fn read_label_csv(path: &Path) -> Result<HashMap<String, String>> {
    crate::data::csv::read_labels(path)
}

#[allow(clippy::too_many_arguments)] // one call site; the pieces of the layout the image needs
fn ingest_image(
    root: &Path,
    path: &Path,
    opts: &IngestOptions,
    mask_dir: &Option<(PathBuf, MaskKind)>,
    mask_index: &HashMap<String, PathBuf>,
    suffix_masks: Option<&Vec<PathBuf>>,
    label: Option<String>,
    emit: &mut dyn FnMut(&Sample) -> Result<()>,
) -> Result<()> {
    let img = decode_image_file(path, opts.max_pixels)?;
    let r = rel(root, path);
    let mut masks = Vec::new();
    let mut mask_kind = None;
    let mut instances = None;
    let candidates: Vec<PathBuf> = match (mask_dir, suffix_masks) {
        (Some((_, kind)), _) => {
            mask_kind = Some(*kind);
            match mask_index.get(&stem_of(path)) {
                Some(m) => vec![m.clone()],
                None => return Err(Error::decode(path, "no mask with the same name in the mask folder")),
            }
        }
        (None, Some(v)) => {
            mask_kind = Some(MaskKind::Binary);
            v.clone()
        }
        (None, None) => vec![],
    };
    for m in candidates {
        let (mw, mh) = image_dimensions(&m)?;
        if (mw, mh) != (img.width, img.height) {
            return Err(Error::decode(
                &m,
                format!("mask is {mw}x{mh} but its image {} is {}x{}", rel(root, path), img.width, img.height),
            ));
        }
        if mask_kind == Some(MaskKind::Instances) && instances.is_none() {
            let mimg = decode_image_file(&m, opts.max_pixels)?;
            instances = Some(count_instances(&mimg));
        }
        masks.push(rel(root, &m));
    }
    emit(&Sample {
        id: r.clone(),
        kind: SampleKind::Image,
        source: r.clone(),
        view: None,
        slice: None,
        frame: None,
        npz_split: None,
        npz_index: None,
        width: img.width,
        height: img.height,
        channels: img.channels,
        spacing: None,
        group: r,
        masks,
        mask_kind,
        instances,
        label,
        given_split: None,
    })
}

fn ingest_nifti(
    root: &Path,
    path: &Path,
    opts: &IngestOptions,
    mask_dir: &Option<(PathBuf, MaskKind)>,
    mask_index: &HashMap<String, PathBuf>,
    label: Option<String>,
    emit: &mut dyn FnMut(&Sample) -> Result<()>,
) -> Result<()> {
    let vol = nifti::read_volume(path, opts.time, crate::data::io::volume_cap(opts.max_pixels))?;
    let r = rel(root, path);
    // A label volume beside it: same stem in the mask folder, same slice layout (checked from its header).
    let masks = match mask_dir {
        None => vec![],
        Some(_) => {
            let Some(m) = mask_index.get(&stem_of(path)) else {
                return Err(Error::decode(path, "no label volume with the same name in the mask folder"));
            };
            if !nifti::is_nifti_path(m) {
                return Err(Error::decode(m, format!("the label of volume {r} must be a NIfTI volume too")));
            }
            let (want, got) = (vol.layout(), nifti::slice_layout(m)?);
            if want != got {
                return Err(Error::decode(
                    m,
                    format!("label volume is {got} but its image {r} is {want}; they would not slice alike"),
                ));
            }
            vec![rel(root, m)]
        }
    };
    let mask_kind = (!masks.is_empty()).then_some(MaskKind::Volume);
    for &view in &opts.views {
        let n = vol.slices(view);
        let sp = vol.view_spacing(view);
        for k in 0..n {
            let Some((w, h, _)) = vol.slice(view, k) else {
                continue;
            };
            emit(&Sample {
                id: format!("{r}#{}:{k}", view.name()),
                kind: SampleKind::Nifti,
                source: r.clone(),
                view: Some(view),
                slice: Some(k),
                frame: None,
                npz_split: None,
                npz_index: None,
                width: w as u32,
                height: h as u32,
                channels: 1,
                spacing: Some(sp.to_vec()),
                group: r.clone(),
                masks: masks.clone(),
                mask_kind,
                instances: None,
                label: label.clone(),
                given_split: None,
            })?;
        }
    }
    Ok(())
}

fn ingest_npz(root: &Path, path: &Path, emit: &mut dyn FnMut(&Sample) -> Result<()>) -> Result<()> {
    let entries = npz::list(path)?;
    let r = rel(root, path);
    let mut any = false;
    for split in ["train", "val", "test"] {
        let Some(images) = entries.iter().find(|e| e.name == format!("{split}_images")) else {
            continue;
        };
        any = true;
        if images.descr != "|u1" && images.descr != "<u1" {
            return Err(Error::unsupported(
                path,
                format!("{}: dtype {} (medpick reads uint8 images)", images.name, images.descr),
            ));
        }
        // (N, H, W[, C]) or (N, D, H, W[, 1]): a header with fewer axes, or an axis of 0, holds no image.
        if images.shape.len() < 3 || images.shape.contains(&0) {
            return Err(Error::decode(
                path,
                format!(
                    "{}: shape {:?} holds no images (medpick reads (N, H, W[, 3]) or (N, D, H, W))",
                    images.name, images.shape
                ),
            ));
        }
        let labels = if entries.iter().any(|e| e.name == format!("{split}_labels")) {
            let (n, k, v) = npz::read_labels(path, &format!("{split}_labels"))?;
            if n != images.shape[0] {
                return Err(Error::decode(
                    path,
                    format!("{split}_labels has {n} rows but {split}_images has {}", images.shape[0]),
                ));
            }
            Some((k, v))
        } else {
            None
        };
        let (n, rest) = (images.shape[0], &images.shape[1..]);
        // (N,H,W) grey, (N,H,W,3) colour, (N,D,H,W) volumes (sliced along D), (N,D,H,W,1).
        let (is_volume, h, w, c) = match rest {
            [h, w] => (false, *h, *w, 1),
            [h, w, 3] => (false, *h, *w, 3),
            [h, w, 1] => (false, *h, *w, 1),
            [_, h, w] | [_, h, w, 1] => (true, *h, *w, 1),
            other => return Err(Error::unsupported(path, format!("{}: shape {:?}", images.name, other))),
        };
        let depth = if is_volume { rest[0] } else { 1 };
        for i in 0..n {
            let label = labels
                .as_ref()
                .map(|(k, v)| v[i * k..(i + 1) * k].iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";"));
            for s in 0..depth {
                let id = if is_volume { format!("{r}#{split}:{i}#axial:{s}") } else { format!("{r}#{split}:{i}") };
                emit(&Sample {
                    id,
                    kind: SampleKind::Npz,
                    source: r.clone(),
                    view: is_volume.then_some(View::Axial),
                    slice: is_volume.then_some(s),
                    frame: None,
                    npz_split: Some(split.to_string()),
                    npz_index: Some(i),
                    width: w as u32,
                    height: h as u32,
                    channels: c as u8,
                    spacing: None,
                    group: format!("{r}#{split}:{i}"),
                    masks: vec![],
                    mask_kind: None,
                    instances: None,
                    label: label.clone(),
                    given_split: Split::parse(split),
                })?;
            }
        }
    }
    if !any {
        return Err(Error::decode(
            path,
            "no train_images/val_images/test_images arrays (not a MedMNIST-style archive)",
        ));
    }
    Ok(())
}

/// Whether `p` is a file medpick reads as data (an image, a NIfTI volume, a DICOM file, an `.npz` archive).
pub fn is_data_file(p: &Path) -> bool {
    is_image_path(p)
        || nifti::is_nifti_path(p)
        || p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"))
        || dicom::is_dicom_path(p)
}
