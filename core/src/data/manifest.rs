//! The dataset manifest: one JSON record per sample (id = path relative to the dataset root, plus
//! `#view:slice` for volume slices, `#frame:k` for multi-frame DICOM, `#split:index` for `.npz` archives), its
//! source, size, spacing and labels; written and read as JSON Lines. The first line is a header record
//! (`{"medpick_manifest": {...}}`) carrying the dataset root. Also the loaders of a sample's pixels and masks.
//! Building a manifest from a folder is [`super::ingest`]; the train/val/test split is [`super::split`].

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::io::dicom::{self};
use crate::data::io::image2d::decode_image_file;
use crate::data::io::nifti::{self, View};
use crate::data::io::{npz, Image2d, Pixels, Window, DEFAULT_MAX_PIXELS};
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

/// The inputs of this run (canonical paths), which no output may replace, `--force` or not.
static INPUTS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Register what a run reads (a file or a folder of data) so that no output of the run can replace it: a file
/// given as input, or a data file (image, volume, archive) inside an input folder. Paths that do not exist are
/// ignored.
pub fn protect_input(path: &Path) {
    if let Ok(c) = std::fs::canonicalize(path) {
        INPUTS.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }
}

/// Refuse an output that exists unless `force` (checked before any work, so nothing a user had is overwritten
/// and no work is wasted on an output that will be refused), and refuse one that is an input of this run (see
/// [`protect_input`]) even with `force`.
pub fn refuse_existing(path: &Path, force: bool) -> Result<()> {
    if let Ok(c) = std::fs::canonicalize(path) {
        let data_file = crate::data::ingest::is_data_file(&c);
        let inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(input) = inputs.iter().find(|i| **i == c || (data_file && c.starts_with(i))) {
            let what = if *input == c {
                "is an input of this run".to_string()
            } else {
                format!("is a data file inside the input {}", input.display())
            };
            return Err(Error::Invalid(format!(
                "{}: the output {what}; medpick never writes over its inputs (--force or not): choose another output",
                path.display()
            )));
        }
    }
    if path.exists() && !force {
        return Err(Error::Exists { path: path.display().to_string() });
    }
    Ok(())
}

/// Create `path` for writing, refusing to overwrite an existing file unless `force`.
pub fn create_new(path: &Path, force: bool) -> Result<std::io::BufWriter<std::fs::File>> {
    refuse_existing(path, force)?;
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

/// The binary foreground mask of a sample (1 = foreground), from its mask file `observer` (see
/// [`MaskLoader::load`]); reads a label volume whole, so for consecutive slices keep one [`MaskLoader`].
pub fn load_mask(root: &Path, s: &Sample, observer: usize, max_pixels: u64) -> Result<(u32, u32, Vec<u8>)> {
    MaskLoader { max_pixels, ..MaskLoader::new(root) }.load(s, observer)
}

/// The binary foreground (1) of a 2-D mask image: `> 127` for binary masks (JPEG masks are not exactly
/// 0/255; `> 32767` for 16-bit), `> 0` for instance label maps.
pub fn foreground(img: &Image2d, instances: bool) -> Vec<u8> {
    let thr = match (instances, &img.pixels) {
        (true, _) => 0,
        (false, Pixels::U16(_)) => 32767,
        _ => 127,
    };
    img.first_channel_u32().into_iter().map(|v| (v > thr) as u8).collect()
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
                let v = nifti::read_volume(&path, 0, crate::data::io::volume_cap(self.max_pixels))?;
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
            let m = foreground(&img, s.mask_kind == Some(MaskKind::Instances));
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
                    let v = nifti::read_volume(&path, 0, crate::data::io::volume_cap(self.max_pixels))?;
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
                let vals = crate::data::io::window::apply_linear(&vals, *lo, *hi);
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
