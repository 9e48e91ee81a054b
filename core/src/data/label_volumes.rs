//! Volumes in label exports and imports: a NIfTI volume's or a DICOM series' annotated slices as one NIfTI label
//! volume on its grid ([`super::label_export`] writes and reads the zip).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::label_export::Imported;
use super::label_export::{below_dirs, key_of_id, stem, strip_ext};
use crate::data::io::dicom::DicomInfo;
use crate::data::io::nifti::{self, NiftiHeader, View};
use crate::data::io::DEFAULT_MAX_PIXELS;
use crate::train::labelled::MaskLabel;

/// A DICOM series whose masks export as one NIfTI label volume: slice k of the label is the series' k-th file
/// (rows and columns as stored), on the series' own geometry.
#[derive(Clone, Debug)]
pub struct Series {
    /// The label's name (the series' folder; a folder holding several series numbers them).
    pub key: String,
    pub header: NiftiHeader,
    pub width: usize,
    pub height: usize,
    /// Its slices' ids (their files' paths) in order along the normal.
    pub ids: Vec<String>,
}

impl Series {
    /// The series of two or more single-frame slices of one size among `files` ((id, header) of each DICOM file),
    /// ordered as the pool orders them ([`crate::manifest::order_dicom_series`]; a series with a gap is left out,
    /// as the pool leaves it out).
    pub fn group(files: Vec<(String, DicomInfo)>) -> Vec<Series> {
        let (series, _) =
            crate::manifest::order_dicom_series(files.into_iter().map(|(id, inf)| (id, inf, ())).collect());
        let mut out: Vec<Series> = Vec::new();
        for members in series {
            let first = &members[0].1;
            let (w, h) = (first.columns as usize, first.rows as usize);
            if members.len() < 2
                || members.iter().any(|(_, i, _)| i.frames > 1 || (i.columns as usize, i.rows as usize) != (w, h))
            {
                continue;
            }
            let folder = members[0].0.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_else(|| "series".into());
            let mut key = folder.clone();
            let mut n = 1;
            while out.iter().any(|s| s.key == key) {
                n += 1;
                key = format!("{folder}_series{n}");
            }
            let header = series_header(first, &members[members.len() - 1].1, members.len());
            out.push(Series { key, header, width: w, height: h, ids: members.into_iter().map(|m| m.0).collect() });
        }
        out
    }
}

/// The NIfTI header of a DICOM series' label: voxel (column, row, slice) to RAS millimetres from the first
/// slice's position and orientation, the pixel spacing, and the step to the last slice (DICOM's LPS axes turned
/// to NIfTI's RAS); voxel sizes only when the series has no position or orientation.
pub fn series_header(first: &DicomInfo, last: &DicomInfo, n: usize) -> NiftiHeader {
    let [dj, di] = first.pixel_spacing.unwrap_or([1.0, 1.0]);
    let (Some(o), Some(p0)) = (first.orientation, first.position) else {
        let t = first.slice_thickness.unwrap_or(1.0) as f32;
        return nifti::plain_header([di as f32, dj as f32, t]);
    };
    let (x, y) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let step = match last.position {
        Some(p1) if n > 1 => [0, 1, 2].map(|a| (p1[a] - p0[a]) / (n - 1) as f64),
        _ => {
            let nrm = [x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]];
            nrm.map(|v| v * first.slice_thickness.unwrap_or(1.0))
        }
    };
    let sz = step.iter().map(|v| v * v).sum::<f64>().sqrt();
    let row =
        |a: usize, sign: f64| [x[a] * di * sign, y[a] * dj * sign, step[a] * sign, p0[a] * sign].map(|v| v as f32);
    NiftiHeader {
        sform_code: 1,
        srow_x: row(0, -1.0),
        srow_y: row(1, -1.0),
        srow_z: row(2, 1.0),
        ..nifti::plain_header([di as f32, dj as f32, sz as f32])
    }
}

/// One NIfTI label volume: matched to the pool's volume with its key (or its one file stem), checked slice by
/// slice against that volume's slices, and imported as the masks of its annotated slices.
pub(super) fn import_volume(
    name: &str,
    bytes: &[u8],
    images: &[(String, usize, usize)],
    grids: &HashMap<String, nifti::VolumeGrid>,
    volumes: &BTreeMap<&str, Vec<(usize, View, usize)>>,
    listed: &HashSet<String>,
    seen_mask: &mut HashMap<usize, String>,
    out: &mut Imported,
) {
    let mut problem = |why: String| out.problems.push((name.to_string(), why));
    let key = strip_ext(below_dirs(name));
    let by_key = volumes.iter().find(|(f, _)| key_of_id(f) == key);
    let by_stem: Vec<_> = volumes.iter().filter(|(f, _)| stem(&key_of_id(f)) == stem(&key)).collect();
    let Some((file, slices)) = by_key.or(match by_stem.as_slice() {
        [one] => Some(*one),
        _ => None,
    }) else {
        problem(format!("no volume of this pool is named `{key}`"));
        return;
    };
    let v = match nifti::read_volume_bytes(Path::new(name), bytes, 0, crate::data::io::volume_cap(DEFAULT_MAX_PIXELS)) {
        Ok(v) => v,
        Err(e) => return problem(e.to_string()),
    };
    if v.data.iter().any(|x| !x.is_finite() || x.fract() != 0.0) {
        return problem("a label volume holds non-integer values (a label is one class index per voxel)".into());
    }
    if let Some(g) = grids.get(*file) {
        let (want, got) = (g.geom.layout(), v.layout());
        if want != got {
            return problem(format!("the label is {got} but its volume {file} is {want}; they would not slice alike"));
        }
    }
    let view = slices[0].1;
    if v.slices(view) != slices.len() {
        return problem(format!(
            "the label has {} {} slices, its volume {file} {}",
            v.slices(view),
            view.name(),
            slices.len()
        ));
    }
    let annotated = slices.iter().any(|(i, ..)| listed.contains(&images[*i].0));
    let mut masks = Vec::new();
    for &(i, view, k) in slices {
        let (id, w, h) = &images[i];
        let Some((lw, lh, vals)) = v.slice(view, k) else {
            return problem(format!("the label has no {} slice {k} for {id}", view.name()));
        };
        if (lw, lh) != (*w, *h) {
            return problem(format!("the label's slices are {lw}x{lh} but {id} is {w}x{h}"));
        }
        let fg: Vec<u8> = vals.iter().map(|&x| (x != 0.0) as u8).collect();
        let wanted = if annotated { listed.contains(id) } else { fg.contains(&1) };
        if wanted && fg.contains(&1) {
            masks.push((i, MaskLabel::new(id, *w, *h, fg)));
        }
    }
    if masks.is_empty() {
        return problem(format!("no foreground voxel in an annotated slice: nothing imported over {file}"));
    }
    for (i, m) in masks {
        match m {
            Ok(m) => match seen_mask.insert(i, name.to_string()) {
                Some(prev) => problem(format!("a second mask for {} (the first: {prev})", images[i].0)),
                None => out.masks.push(m),
            },
            Err(e) => problem(e.to_string()),
        }
    }
}

/// One NIfTI label volume of a DICOM series: width × height × its slice count, slice k its k-th file's mask.
pub(super) fn import_series(
    name: &str,
    bytes: &[u8],
    se: &Series,
    known: &HashMap<&str, usize>,
    listed: &HashSet<String>,
    seen_mask: &mut HashMap<usize, String>,
    out: &mut Imported,
) {
    let mut problem = |why: String| out.problems.push((name.to_string(), why));
    let v = match nifti::read_volume_bytes(Path::new(name), bytes, 0, crate::data::io::volume_cap(DEFAULT_MAX_PIXELS)) {
        Ok(v) => v,
        Err(e) => return problem(e.to_string()),
    };
    let (w, h, n) = (se.width, se.height, se.ids.len());
    if v.dims != [w, h, n] {
        let d = v.dims;
        return problem(format!("the label is {}x{}x{}, the series {} is {w}x{h}x{n}", d[0], d[1], d[2], se.key));
    }
    if v.data.iter().any(|x| !x.is_finite() || x.fract() != 0.0) {
        return problem("a label volume holds non-integer values (a label is one class index per voxel)".into());
    }
    let annotated = se.ids.iter().any(|id| listed.contains(id));
    let mut any = false;
    for (k, id) in se.ids.iter().enumerate() {
        let fg: Vec<u8> = v.data[k * w * h..(k + 1) * w * h].iter().map(|&x| (x != 0.0) as u8).collect();
        let wanted = if annotated { listed.contains(id) } else { fg.contains(&1) };
        let Some(&i) = known.get(id.as_str()) else { continue };
        if !wanted || !fg.contains(&1) {
            continue;
        }
        any = true;
        match seen_mask.insert(i, name.to_string()) {
            Some(prev) => problem(format!("a second mask for {id} (the first: {prev})")),
            None => match MaskLabel::new(id, w, h, fg) {
                Ok(m) => out.masks.push(m),
                Err(e) => problem(e.to_string()),
            },
        }
    }
    if !any {
        problem(format!("no foreground voxel in an annotated slice: nothing imported over the series {}", se.key));
    }
}
