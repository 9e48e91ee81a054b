//! The dataset manifest: one JSON record per sample (id = path relative to the dataset root, plus
//! `#view:slice` for volume slices, `#frame:k` for multi-frame DICOM, `#split:index` for `.npz` archives), its
//! source, size, spacing and labels; written and read as JSON Lines. The first line is a header record
//! (`{"medpick_manifest": {...}}`) carrying the dataset root. Also the deterministic seeded train/val/test split.
//!
//! [`ingest`] walks a dataset (streaming: one file decoded at a time), validates every file fully, and reports
//! what it skipped and why.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::io::dicom::{self, DicomInfo};
use crate::io::image2d::{decode_image_file, image_dimensions, is_image_path};
use crate::io::nifti::{self, View};
use crate::io::walk::{walk_files, WalkNotes};
use crate::io::{npz, Image2d, Pixels, Window, DEFAULT_MAX_PIXELS};
use crate::rng::Rng;
use crate::{Error, Result};

/// What kind of source a sample comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    Image,
    Nifti,
    Dicom,
    Npz,
}

/// How a segmentation mask file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskKind {
    /// Foreground where the first channel is > 127 (JPEG masks such as Kvasir-SEG are not exactly 0/255).
    Binary,
    /// Instance label map (0 = background, 1..N objects); binary foreground = label > 0.
    Instances,
    /// A NIfTI label volume beside a NIfTI image with the same slice layout, sliced like it; binary foreground =
    /// label ≠ 0 (every class of a multi-class label map).
    Volume,
}

/// One sample (a 2-D image the models see).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub id: String,
    pub kind: SampleKind,
    /// Source file, relative to the dataset root.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u32>,
    /// `.npz`: the array prefix (train/val/test) and row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npz_split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npz_index: Option<usize>,
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    /// Pixel spacing in mm: (columns, rows[, slice thickness]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spacing: Option<Vec<f32>>,
    /// Split unit: all samples of one group (a volume, a series, a file) land in the same split.
    pub group: String,
    /// Segmentation masks, relative paths (several when there are several observers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_kind: Option<MaskKind>,
    /// Number of instances in the (first) instance mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// Classification label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Split fixed by the dataset itself (`.npz` train/val/test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_split: Option<Split>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Split> {
        match s.trim() {
            "train" => Some(Split::Train),
            "val" | "valid" | "validation" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

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
}

/// The first line of a manifest file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManifestHeader {
    pub version: u32,
    pub root: String,
    pub created_by: String,
}

#[derive(Serialize, Deserialize)]
struct HeaderLine {
    medpick_manifest: ManifestHeader,
}

/// A manifest in memory: the root and every sample.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub root: PathBuf,
    pub samples: Vec<Sample>,
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

/// id → label from a labels CSV ([`crate::csv::read_labels`]: an `id`/`label` header, or `id,label` rows).
pub fn read_label_csv(path: &Path) -> Result<HashMap<String, String>> {
    crate::csv::read_labels(path)
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
    let vol = nifti::read_volume(path, opts.time, opts.max_pixels.saturating_mul(512))?;
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

/// Create `path` for writing, refusing to overwrite an existing file unless `force`.
pub fn create_new(path: &Path, force: bool) -> Result<std::io::BufWriter<std::fs::File>> {
    if path.exists() && !force {
        return Err(Error::Invalid(format!("{} already exists (pass --force to overwrite)", path.display())));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    Ok(std::io::BufWriter::new(f))
}

/// Streaming manifest writer.
pub struct ManifestWriter {
    out: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl ManifestWriter {
    pub fn create(path: &Path, root: &Path, force: bool) -> Result<Self> {
        let mut out = create_new(path, force)?;
        let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let header = HeaderLine {
            medpick_manifest: ManifestHeader {
                version: 1,
                root: abs.display().to_string(),
                created_by: format!("medpick {}", env!("CARGO_PKG_VERSION")),
            },
        };
        let line = serde_json::to_string(&header).map_err(|e| Error::io(path, e))?;
        writeln!(out, "{line}").map_err(|e| Error::io(path, e))?;
        Ok(ManifestWriter { out, path: path.to_path_buf() })
    }

    pub fn write(&mut self, s: &Sample) -> Result<()> {
        let line = serde_json::to_string(s).map_err(|e| Error::io(&self.path, e))?;
        writeln!(self.out, "{line}").map_err(|e| Error::io(&self.path, e))
    }

    pub fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// Read a manifest written by [`ManifestWriter`].
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut root = None;
    let mut samples = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        if i == 0 {
            if let Ok(h) = serde_json::from_str::<HeaderLine>(&line) {
                root = Some(PathBuf::from(h.medpick_manifest.root));
                continue;
            }
        }
        let s: Sample = serde_json::from_str(&line)
            .map_err(|e| Error::decode(path, format!("line {}: not a manifest record: {e}", i + 1)))?;
        samples.push(s);
    }
    let root = root.unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    Ok(Manifest { root, samples })
}

/// Assign every sample to train/val/test, deterministically from `seed`. Samples of one group stay together;
/// a split given by the dataset (`.npz`) is kept. Fractions are of groups.
pub fn make_split(samples: &[Sample], seed: u64, val: f64, test: f64) -> Result<Vec<(String, Split)>> {
    if !(0.0..1.0).contains(&val) || !(0.0..1.0).contains(&test) || val + test >= 1.0 {
        return Err(Error::Invalid(format!("split fractions val={val} test={test} must be in [0,1) and sum below 1")));
    }
    let mut groups: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in samples.iter().filter(|s| s.given_split.is_none()) {
        if seen.insert(s.group.clone()) {
            groups.push(s.group.clone());
        }
    }
    groups.sort();
    let mut rng = Rng::new(seed);
    rng.shuffle(&mut groups);
    let n = groups.len();
    let n_test = (test * n as f64).round() as usize;
    let n_val = (val * n as f64).round() as usize;
    let mut assign: HashMap<&str, Split> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        let s = if i < n_test {
            Split::Test
        } else if i < n_test + n_val {
            Split::Val
        } else {
            Split::Train
        };
        assign.insert(g.as_str(), s);
    }
    Ok(samples
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                s.given_split.unwrap_or_else(|| assign.get(s.group.as_str()).copied().unwrap_or(Split::Train)),
            )
        })
        .collect())
}

/// Write a split as CSV `id,split`.
pub fn write_split(path: &Path, split: &[(String, Split)], force: bool) -> Result<()> {
    let mut w = crate::csv::Writer::new(create_new(path, force)?, path);
    w.row(["id", "split"])?;
    for (id, s) in split {
        w.row([id.as_str(), s.name()])?;
    }
    w.finish()?.flush().map_err(|e| Error::io(path, e))
}

/// Read a split CSV written by [`write_split`] (header `id,split`).
pub fn read_split(path: &Path) -> Result<HashMap<String, Split>> {
    let mut m = HashMap::new();
    for (line, cells) in crate::csv::read_rows(path)?.into_iter().skip(1) {
        let [id, s] = &cells[..] else {
            return Err(Error::decode(path, format!("line {line}: expected id,split, got {} cells", cells.len())));
        };
        let split = Split::parse(s).ok_or_else(|| Error::decode(path, format!("line {line}: unknown split '{s}'")))?;
        m.insert(id.clone(), split);
    }
    Ok(m)
}

/// Quote a CSV field when needed (RFC 4180); see [`crate::csv`].
pub use crate::csv::field as csv_field;


/// The binary foreground mask of a sample (1 = foreground), from its mask file `observer` (see
/// [`MaskLoader::load`]); reads a label volume whole, so for consecutive slices keep one [`MaskLoader`].
pub fn load_mask(root: &Path, s: &Sample, observer: usize, max_pixels: u64) -> Result<(u32, u32, Vec<u8>)> {
    MaskLoader { max_pixels, ..MaskLoader::new(root) }.load(s, observer)
}

/// Reads samples' masks, keeping the last label volume so that consecutive slices are cheap.
pub struct MaskLoader {
    pub root: PathBuf,
    pub max_pixels: u64,
    volume: Option<(String, nifti::Volume)>,
}

impl MaskLoader {
    pub fn new(root: &Path) -> Self {
        MaskLoader { root: root.to_path_buf(), max_pixels: DEFAULT_MAX_PIXELS, volume: None }
    }

    /// The binary foreground mask (1 = foreground) of a sample from its mask file `observer`, as (width,
    /// height, mask): `> 127` for binary masks (JPEG masks are not exactly 0/255; `> 32767` for 16-bit), `> 0`
    /// for instance label maps, `≠ 0` for a label volume's slice. Errors name the mask file.
    pub fn load(&mut self, s: &Sample, observer: usize) -> Result<(u32, u32, Vec<u8>)> {
        let rel = s.masks.get(observer).ok_or_else(|| Error::Invalid(format!("{}: no mask {observer}", s.id)))?;
        let path = self.root.join(rel);
        let (w, h, mask) = if s.kind == SampleKind::Nifti {
            if self.volume.as_ref().map(|(k, _)| k != rel).unwrap_or(true) {
                self.volume = None;
                let v = nifti::read_volume(&path, 0, self.max_pixels.saturating_mul(512))?;
                self.volume = Some((rel.clone(), v));
            }
            let Some((_, vol)) = &self.volume else { return Err(Error::decode(&path, "volume not loaded")) };
            let k = s.slice.unwrap_or(0);
            let (w, h, vals) = vol
                .slice(s.view.unwrap_or(View::Axial), k)
                .ok_or_else(|| Error::decode(&path, format!("label volume has no slice {k} for {}", s.id)))?;
            (w as u32, h as u32, vals.iter().map(|&v| (v != 0.0) as u8).collect())
        } else {
            let img = decode_image_file(&path, self.max_pixels)?;
            let thr = match s.mask_kind {
                Some(MaskKind::Instances) => 0,
                _ => match img.pixels {
                    Pixels::U16(_) => 32767,
                    _ => 127,
                },
            };
            let m = img.first_channel_u32().into_iter().map(|v| (v > thr) as u8).collect();
            (img.width, img.height, m)
        };
        if (w, h) != (s.width, s.height) {
            return Err(Error::decode(&path, format!("mask is {w}x{h} but its image is {}x{}", s.width, s.height)));
        }
        Ok((w, h, mask))
    }
}

/// Loads sample pixels, keeping the last volume / archive array so that consecutive slices are cheap.
pub struct SampleLoader {
    pub root: PathBuf,
    pub window: Window,
    pub max_pixels: u64,
    /// The last volume read, with its window range (computed once per volume).
    volume: Option<(String, nifti::Volume, (f64, f64))>,
    npz: Option<(String, ndarray::ArrayD<u8>)>,
}

impl SampleLoader {
    pub fn new(root: &Path, window: Window) -> Self {
        SampleLoader { root: root.to_path_buf(), window, max_pixels: DEFAULT_MAX_PIXELS, volume: None, npz: None }
    }

    /// The sample's 2-D image.
    pub fn load(&mut self, s: &Sample) -> Result<Image2d> {
        let path = self.root.join(&s.source);
        match s.kind {
            SampleKind::Image => decode_image_file(&path, self.max_pixels),
            SampleKind::Dicom => dicom::read_frame(&path, s.frame.unwrap_or(0), self.window, self.max_pixels),
            SampleKind::Nifti => {
                if self.volume.as_ref().map(|(k, _, _)| k != &s.source).unwrap_or(true) {
                    let v = nifti::read_volume(&path, 0, self.max_pixels.saturating_mul(512))?;
                    let range = dicom::window_range(&v.data, self.window, None);
                    self.volume = Some((s.source.clone(), v, range));
                }
                let Some((_, vol, (lo, hi))) = &self.volume else {
                    return Err(Error::decode(&path, "volume not loaded"));
                };
                let view = s.view.unwrap_or(View::Axial);
                let (w, h, vals) = vol
                    .slice(view, s.slice.unwrap_or(0))
                    .ok_or_else(|| Error::decode(&path, format!("slice {:?} is out of range", s.slice)))?;
                let vals = crate::io::window::apply_linear(&vals, *lo, *hi);
                Ok(Image2d { width: w as u32, height: h as u32, channels: 1, pixels: Pixels::F32(vals) })
            }
            SampleKind::Npz => {
                let split = s.npz_split.clone().unwrap_or_else(|| "train".into());
                let key = format!("{}#{split}", s.source);
                if self.npz.as_ref().map(|(k, _)| k != &key).unwrap_or(true) {
                    let a = npz::read_u8(&path, &format!("{split}_images"), self.max_pixels.saturating_mul(4096))?;
                    self.npz = Some((key, a));
                }
                let Some((_, arr)) = &self.npz else { return Err(Error::decode(&path, "archive not loaded")) };
                let i = s.npz_index.unwrap_or(0);
                let item = arr.index_axis(ndarray::Axis(0), i.min(arr.shape()[0].saturating_sub(1)));
                if i >= arr.shape()[0] {
                    return Err(Error::decode(&path, format!("row {i} is out of range")));
                }
                let plane = match s.slice {
                    Some(k) => item.index_axis(ndarray::Axis(0), k).to_owned(),
                    None => item.to_owned(),
                };
                let data: Vec<u8> = plane.iter().copied().collect();
                Ok(Image2d { width: s.width, height: s.height, channels: s.channels, pixels: Pixels::U8(data) })
            }
        }
    }
}
