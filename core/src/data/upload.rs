//! Files handed over in memory, as the browser app gets them from a dropped folder: which files are samples,
//! in the order the CLI walks the same folder, and each file's bytes → its 2-D samples with the same ids and
//! pixels that `manifest::ingest` + `SampleLoader` give natively (so the same folder gives the same picks).
//!
//! Rules, mirroring `ingest`: paths are relative to the dropped folder (its own name is stripped); hidden
//! entries (a component starting with '.') are skipped; a folder with `images/` beside a mask folder
//! (`masks/`, `instance_labels/`, …) contributes only `images/` (and `imagesTr/` beside `labelsTr/` only
//! `imagesTr/`); files are ordered by their path components
//! in byte order; NIfTI volumes give axial slices `<path>#axial:<k>` windowed over the whole volume, multi-frame
//! DICOM gives `<path>#frame:<k>`. Not supported in memory: `.npz` archives and two-file NIfTI (`.hdr/.img`).

use std::path::Path;

use crate::data::io::image2d::{decode_image_bytes, is_image_path};
use crate::data::io::nifti::{is_nifti_path, View};
use crate::data::io::window::apply_linear;
use crate::data::io::{dicom, nifti, Image2d, Pixels, Window, DEFAULT_MAX_PIXELS};
use crate::{Error, Result};

/// The files of a dropped folder to decode, in order, and the ones set aside.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct UploadPlan {
    /// Indices into the input list, in the CLI's walk order.
    pub order: Vec<usize>,
    /// The id prefix of each planned file (its path relative to the dropped folder), parallel to `order`.
    pub rel: Vec<String>,
    /// (path, reason) of files that are not samples (masks, hidden files).
    pub skipped: Vec<(String, String)>,
}

/// Plan a dropped folder given each file's relative path (`webkitRelativePath`, e.g. `scans/images/a.png`).
pub fn plan(paths: &[String]) -> UploadPlan {
    let split: Vec<Vec<&str>> =
        paths.iter().map(|p| p.split('/').filter(|c| !c.is_empty() && *c != ".").collect()).collect();
    // One shared top folder (the one the user chose) is the root, as `medpick ingest <that folder>`.
    let first = split.first().and_then(|c| c.first().copied());
    let strip = !split.is_empty() && split.iter().all(|c| c.len() > 1 && c.first().copied() == first);
    let comps: Vec<&[&str]> = split.iter().map(|c| if strip { &c[1..] } else { &c[..] }).collect();
    let top_dirs: std::collections::HashSet<&str> = comps.iter().filter(|c| c.len() > 1).map(|c| c[0]).collect();
    // images/ beside masks/ (…) or imagesTr/ beside labelsTr/: only the image folder holds samples.
    let images_only = crate::manifest::LAYOUTS.iter().find_map(|(images, masks)| {
        (top_dirs.contains(images) && masks.iter().any(|(m, _)| top_dirs.contains(m))).then_some((*images, *masks))
    });
    let mut plan = UploadPlan::default();
    let mut keep: Vec<usize> = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        let rel = c.join("/");
        if c.is_empty() {
            continue;
        }
        if c.iter().any(|x| x.starts_with('.')) {
            plan.skipped.push((rel, "hidden file".into()));
        } else if let Some((images, masks)) = images_only.filter(|(images, _)| c[0] != *images) {
            let why = if masks.iter().any(|(m, _)| *m == c[0]) {
                format!("mask ({}/ beside {images}/)", c[0])
            } else {
                format!("outside {images}/ (the folder has {images}/ and masks)")
            };
            plan.skipped.push((rel, why));
        } else {
            keep.push(i);
        }
    }
    keep.sort_by(|&a, &b| comps[a].iter().map(|s| s.as_bytes()).cmp(comps[b].iter().map(|s| s.as_bytes())));
    plan.rel = keep.iter().map(|&i| comps[i].join("/")).collect();
    plan.order = keep;
    plan
}

/// One decoded file.
#[derive(Debug)]
pub struct Decoded {
    /// (id, image) per 2-D sample.
    pub samples: Vec<(String, Image2d)>,
    /// The header of a DICOM file: DICOM samples are ordered by series and slice position (see [`order`]).
    pub dicom: Option<dicom::DicomInfo>,
    /// A NIfTI volume's header and geometry (its labels are exported as a NIfTI on this grid).
    pub volume: Option<nifti::VolumeGrid>,
}

/// Decode one file's bytes into its samples; `rel` is its path relative to the dropped folder.
pub fn decode(rel: &str, bytes: &[u8], window: Window) -> Result<Decoded> {
    let path = Path::new(rel);
    let lower = rel.to_ascii_lowercase();
    let plain = |samples| Ok(Decoded { samples, dicom: None, volume: None });
    if is_image_path(path) {
        return plain(vec![(rel.to_string(), decode_image_bytes(path, bytes, DEFAULT_MAX_PIXELS)?)]);
    }
    if is_nifti_path(path) {
        let v = nifti::read_volume_bytes(path, bytes, 0, super::io::volume_cap(DEFAULT_MAX_PIXELS))?;
        let (lo, hi) = dicom::window_range(&v.data, window, None);
        let view = View::Axial;
        let mut out = Vec::new();
        for k in 0..v.slices(view) {
            let Some((w, h, vals)) = v.slice(view, k) else { continue };
            let img = Image2d {
                width: w as u32,
                height: h as u32,
                channels: 1,
                pixels: Pixels::F32(apply_linear(&vals, lo, hi)),
            };
            out.push((format!("{rel}#{}:{k}", view.name()), img));
        }
        let grid = nifti::VolumeGrid::of_bytes(path, bytes, &v)?;
        return Ok(Decoded { samples: out, dicom: None, volume: Some(grid) });
    }
    if dicom::is_dicom(path, bytes) {
        let obj = dicom::open_bytes(path, bytes)?;
        let info = dicom::info(&obj);
        if !info.has_pixel_data {
            return Err(Error::decode(path, "DICOM file without Pixel Data (not an image)"));
        }
        let frames = info.frames.max(1);
        let mut out = Vec::new();
        for f in 0..frames {
            let id = if frames > 1 { format!("{rel}#frame:{f}") } else { rel.to_string() };
            out.push((id, dicom::read_frame_of(&obj, path, f, window, DEFAULT_MAX_PIXELS)?));
        }
        return Ok(Decoded { samples: out, dicom: Some(info), volume: None });
    }
    if lower.ends_with(".npz") {
        return Err(Error::unsupported(path, ".npz archives are read by the CLI only (medpick ingest)"));
    }
    Err(Error::unsupported(path, "not an image, DICOM or NIfTI file"))
}

/// A small PNG of the image (longest side `max_side`) for the picks grid.
pub fn thumbnail_png(img: &Image2d, max_side: u32) -> Result<Vec<u8>> {
    let rgb = img.to_rgb_u8();
    let buf = image::RgbImage::from_raw(img.width, img.height, rgb)
        .ok_or_else(|| Error::Invalid("thumbnail: pixel buffer does not match the size".into()))?;
    let scale = max_side as f64 / img.width.max(img.height).max(1) as f64;
    let (w, h) = if scale < 1.0 {
        (((img.width as f64 * scale).round() as u32).max(1), ((img.height as f64 * scale).round() as u32).max(1))
    } else {
        (img.width, img.height)
    };
    let small = image::imageops::resize(&buf, w, h, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    small.write_to(&mut out, image::ImageFormat::Png).map_err(|e| Error::Invalid(format!("thumbnail: {e}")))?;
    Ok(out.into_inner())
}

/// The final row order of decoded files given in plan order (`rel`, DICOM header if any): every non-DICOM
/// file in plan order, then the DICOM files series by series as `ingest` orders them. Returns file indices
/// and the files dropped for a gap in their series, with the reason.
pub fn order(files: &[(String, Option<dicom::DicomInfo>)]) -> (Vec<usize>, Vec<(String, String)>) {
    let mut out: Vec<usize> = (0..files.len()).filter(|&i| files[i].1.is_none()).collect();
    let dicoms =
        files.iter().enumerate().filter_map(|(i, (r, inf))| inf.clone().map(|inf| (r.clone(), inf, i))).collect();
    let (series, skipped) = crate::manifest::order_dicom_series(dicoms);
    out.extend(series.into_iter().flatten().map(|(_, _, i)| i));
    (out, skipped)
}
