//! Volumes in the datastore (NIfTI files and DICOM series folders) for the segmentation head: which labelled
//! slices it trains on, and its label volume on the image's own voxel grid, written as NIfTI with the image's
//! affine or as NRRD with the same space, as MONAI Label returns a volume's label.

use std::path::{Path, PathBuf};

use medpick_core::io::nifti::{self, View, Volume};
use medpick_core::manifest::Sample;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::datastore::now_ts;
use crate::labels::Mask;
use crate::{ApiError, ApiResult};

/// At most this many slices of one labelled volume are trained on (evenly spaced over its labelled range).
pub const TRAIN_SLICES: usize = 16;

/// How a volume's 2-D samples lie in its voxel array (x fastest), the array its labels are stored in.
pub enum Grid {
    /// A NIfTI volume: slices cut along the world axes as medpick's ingest cuts them (geometry only, no voxels),
    /// and its header (what a label for it carries); `name` names it in errors.
    Nifti { geom: Volume, header: Box<nifti::NiftiHeader>, name: PathBuf },
    /// A DICOM series: its i-th slice in ingest's order (along the normal) is z = i, rows and columns as stored;
    /// `header` places that grid in RAS from the first and last slices' position and orientation.
    Series { w: usize, h: usize, n: usize, header: Box<nifti::NiftiHeader> },
}

impl Grid {
    /// The grid of `image` (a NIfTI file or a series folder) whose every slice is `samples` (sources relative to
    /// `root`), in ingest's order.
    pub fn of(root: &Path, image: &Path, samples: &[Sample]) -> ApiResult<Grid> {
        if image.is_dir() {
            let (w, h) = slice_size(image, samples)?;
            let (first, last) = (&samples[0], &samples[samples.len() - 1]);
            let info = |s: &Sample| {
                medpick_core::io::dicom::read_info(&root.join(&s.source)).map_err(|e| ApiError::bad(e.to_string()))
            };
            let header = medpick_core::data::label_volumes::series_header(&info(first)?, &info(last)?, samples.len());
            return Ok(Grid::Series { w, h, n: samples.len(), header: Box::new(header) });
        }
        let cap = medpick_core::io::volume_cap(medpick_core::io::DEFAULT_MAX_PIXELS);
        let geom = nifti::read_volume(image, 0, cap).map_err(|e| ApiError::bad(e.to_string()))?.clone_geometry();
        let header = Box::new(nifti::read_header(image).map_err(|e| ApiError::bad(e.to_string()))?);
        Ok(Grid::Nifti { geom, header, name: image.to_path_buf() })
    }

    /// The header a label on this grid carries.
    pub fn header(&self) -> &nifti::NiftiHeader {
        match self {
            Grid::Nifti { header, .. } | Grid::Series { header, .. } => header,
        }
    }

    /// [x, y, z] of the voxel array.
    pub fn dims(&self) -> [usize; 3] {
        match self {
            Grid::Nifti { geom, .. } => geom.dims,
            Grid::Series { w, h, n, .. } => [*w, *h, *n],
        }
    }

    /// The voxel of each pixel of sample `s` (the `i`-th of the volume's samples), row-major: (width, height,
    /// voxel indices).
    pub fn voxels(&self, s: &Sample, i: usize) -> ApiResult<(usize, usize, Vec<usize>)> {
        match self {
            Grid::Nifti { geom, name, .. } => {
                let k = s.slice.unwrap_or(0);
                geom.slice_voxels(s.view.unwrap_or(View::Axial), k)
                    .ok_or_else(|| ApiError::bad(format!("{}: no slice {k}", name.display())))
            }
            Grid::Series { w, h, n, .. } => {
                if i >= *n {
                    return Err(ApiError::internal(format!("slice {i} of a series of {n}")));
                }
                Ok((*w, *h, (i * w * h..(i + 1) * w * h).collect()))
            }
        }
    }
}

/// The one width × height of a series' slices (`samples`, of the folder `series`); a series without slices or
/// with slices of two sizes is refused, naming them.
pub fn slice_size(series: &Path, samples: &[Sample]) -> ApiResult<(usize, usize)> {
    let first = samples.first().ok_or_else(|| ApiError::bad(format!("{}: no slice", series.display())))?;
    let (w, h) = (first.width as usize, first.height as usize);
    if let Some(o) = samples.iter().find(|s| (s.width as usize, s.height as usize) != (w, h)) {
        return Err(ApiError::bad(format!(
            "{}: slice {} is {}×{}, the first {w}×{h}",
            series.display(),
            o.source,
            o.width,
            o.height
        )));
    }
    Ok((w, h))
}

/// A slice to train on: its sample, width, height and mask (0/1, row-major).
pub type LabelSlice = (Sample, usize, usize, Vec<u8>);

/// The slices of a labelled volume to train on: each as (sample, width, height, its mask 0/1 row-major). At most
/// `max`, evenly spaced among the slices with foreground (so a few labelled volumes do not drown the 2-D images);
/// a label with no foreground at all is refused.
pub fn label_slices(
    grid: &Grid,
    samples: &[Sample],
    mask: &Mask,
    what: &str,
    max: usize,
) -> ApiResult<Vec<LabelSlice>> {
    if mask.dims != grid.dims() {
        let (m, g) = (mask.dims, grid.dims());
        return Err(ApiError::bad(format!(
            "{what}: the label is {}×{}×{}, its volume {}×{}×{}",
            m[0], m[1], m[2], g[0], g[1], g[2]
        )));
    }
    let mut slices = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        let (w, h, vox) = grid.voxels(s, i)?;
        let m: Vec<u8> = vox.iter().map(|&v| mask.data[v]).collect();
        slices.push((s.clone(), w, h, m));
    }
    // Only slices with foreground: a label drawn on a few slices leaves the others 0, which is no evidence of
    // background there.
    let fg: Vec<usize> = (0..slices.len()).filter(|&i| slices[i].3.contains(&1)).collect();
    if fg.is_empty() {
        return Err(ApiError::bad(format!("{what}: no voxel of the label is foreground, no slice to train on")));
    }
    let picks: Vec<usize> = if fg.len() <= max {
        fg
    } else {
        let mut p: Vec<usize> = (0..max).map(|k| fg[(k * (fg.len() - 1)) / (max - 1).max(1)]).collect();
        p.dedup();
        p
    };
    let mut out = Vec::with_capacity(picks.len());
    let mut slices: Vec<Option<_>> = slices.into_iter().map(Some).collect();
    for i in picks {
        if let Some(s) = slices[i].take() {
            out.push(s);
        }
    }
    Ok(out)
}

/// A predicted label: 0/1 voxels (x fastest) of `dims`, on the volume `grid` (None for a 2-D image).
pub struct Prediction {
    pub dims: [usize; 3],
    pub mask: Vec<u8>,
    pub grid: Option<Grid>,
}

/// Put per-slice masks (row-major, each at its sample's size) into a label volume of `grid`.
pub fn assemble(grid: Grid, samples: &[Sample], masks: &[Vec<u8>]) -> ApiResult<Prediction> {
    let dims = grid.dims();
    let mut out = vec![0u8; dims[0] * dims[1] * dims[2]];
    for (i, (s, m)) in samples.iter().zip(masks).enumerate() {
        let (_, _, vox) = grid.voxels(s, i)?;
        if vox.len() != m.len() {
            return Err(ApiError::internal(format!("slice {i}: {} pixels for {} voxels", m.len(), vox.len())));
        }
        for (&v, &x) in vox.iter().zip(m) {
            out[v] = x;
        }
    }
    Ok(Prediction { dims, mask: out, grid: Some(grid) })
}

/// The prediction as a NIfTI file (gzipped when `gz`): on the volume's grid and affine (a NIfTI's header, a
/// series' DICOM geometry in RAS); voxel sizes of 1 for a 2-D image.
pub fn nifti_bytes(p: &Prediction, gz: bool) -> ApiResult<Vec<u8>> {
    let h = match &p.grid {
        Some(g) => g.header().clone(),
        None => nifti::plain_header([1.0; 3]),
    };
    nifti::label_bytes(&h, p.dims, &p.mask, gz).map_err(|e| ApiError::internal(e.to_string()))
}

/// The label format asked for (MONAI Label's `result_extension`): PNG, NRRD, NIfTI, or None (the default: PNG for
/// a 2-D image, NIfTI for a volume).
pub fn result_extension(asked: Option<&str>) -> ApiResult<Option<&'static str>> {
    match asked {
        None | Some("") => Ok(None),
        Some(".nrrd" | ".seg.nrrd") => Ok(Some(".nrrd")),
        Some(".png") => Ok(Some(".png")),
        Some(".nii.gz") => Ok(Some(".nii.gz")),
        Some(".nii") => Ok(Some(".nii")),
        Some(e) => Err(ApiError::bad(format!("result_extension {e:?}: .png, .nrrd, .nii or .nii.gz"))),
    }
}

/// The prediction of image `id` as a label file of `ext` (from [`result_extension`], resolved).
pub fn label_file(p: &Prediction, ext: &str, id: &str) -> ApiResult<Vec<u8>> {
    match ext {
        ".nrrd" => Ok(nrrd_bytes(p)),
        ".nii" | ".nii.gz" => nifti_bytes(p, ext == ".nii.gz"),
        _ if p.grid.is_some() => {
            Err(ApiError::bad(format!("{id} is a volume: its label is .nii.gz, .nii or .nrrd, not .png")))
        }
        _ => crate::labels::write_png(&p.mask, p.dims[0], p.dims[1]),
    }
}

/// The prediction as an NRRD labelmap (uint8, raw); a volume's carries its space (RAS, directions, origin: a
/// NIfTI's affine, a series' DICOM geometry) so that 3D Slicer places it on the image.
pub fn nrrd_bytes(p: &Prediction) -> Vec<u8> {
    let [x, y, z] = p.dims;
    let mut head = if z > 1 || p.grid.is_some() {
        format!("NRRD0004\ntype: uint8\ndimension: 3\nsizes: {x} {y} {z}\nencoding: raw\n")
    } else {
        format!("NRRD0004\ntype: uint8\ndimension: 2\nsizes: {x} {y}\nencoding: raw\n")
    };
    if let Some(header) = p.grid.as_ref().map(Grid::header).filter(|h| h.sform_code > 0 || h.qform_code > 0) {
        let a = nifti::affine(header);
        let col = |c: usize| format!("({},{},{})", a[0][c], a[1][c], a[2][c]);
        head += &format!(
            "space: right-anterior-superior\nspace directions: {} {} {}\nspace origin: ({},{},{})\n",
            col(0),
            col(1),
            col(2),
            a[0][3],
            a[1][3],
            a[2][3]
        );
    }
    head.push('\n');
    let mut out = head.into_bytes();
    out.extend_from_slice(&p.mask);
    out
}

/// MONAI Label's infer answer: a `params` part (JSON, no file name) and one file part, with a Content-Length (the
/// clients parse the raw stream with `cgi` and cannot read chunked bodies).
pub(crate) fn multipart_response(params: &Value, fname: &str, file: &[u8]) -> Response {
    let boundary = format!("{:032x}", (now_ts() as u128) << 64 | (file.len() as u128));
    let mut body = Vec::with_capacity(file.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"params\"\r\nContent-Type: application/json\r\n\r\n{params}\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{fname}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}")) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use medpick_core::io::nifti::NiftiHeader;

    /// A label volume's slices line up with the image's slices pixel for pixel (the image is its label × 200,
    /// stored with flipped x and y axes), a prediction assembled from them is the label again, and the NIfTI
    /// written for it has the image's dims and orientation.
    #[test]
    fn label_slices_follow_the_image_slices_and_assemble_back() {
        let dir = std::env::temp_dir().join(format!("medpick-volume-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dims = [7usize, 5, 4];
        let label: Vec<u8> = (0..dims[0] * dims[1] * dims[2])
            .map(|i| {
                let (x, y, z) = (i % dims[0], (i / dims[0]) % dims[1], i / (dims[0] * dims[1]));
                ((x * 3 + y * 5 + z * 7) % 4 == 0 || (x == 1 && y == 0)) as u8
            })
            .collect();
        let h = NiftiHeader {
            sform_code: 1,
            srow_x: [-0.8, 0.0, 0.0, 10.0],
            srow_y: [0.0, -0.9, 0.0, 20.0],
            srow_z: [0.0, 0.0, 2.0, -5.0],
            pixdim: [1.0, 0.8, 0.9, 2.0, 1.0, 1.0, 1.0, 1.0],
            ..NiftiHeader::default()
        };
        let image = dir.join("vol.nii.gz");
        let pixels: Vec<u8> = label.iter().map(|&v| v * 200).collect();
        std::fs::write(&image, nifti::label_bytes(&h, dims, &pixels, true).unwrap()).unwrap();
        let lab = dir.join("lab.nii.gz");
        std::fs::write(&lab, nifti::label_bytes(&h, dims, &label, false).unwrap()).unwrap();

        let all = crate::pool::all_samples(&dir, &image).unwrap();
        assert_eq!(all.len(), 4);
        let grid = Grid::of(&dir, &image, &all).unwrap();
        assert_eq!(grid.dims(), dims);
        let mask = crate::labels::read_mask(&std::fs::read(&lab).unwrap(), ".nii.gz", "lab.nii.gz").unwrap();
        let slices = label_slices(&grid, &all, &mask, "lab", 100).unwrap();
        assert_eq!(slices.len(), 4);
        let mut loader = medpick_core::manifest::SampleLoader::new(&dir, medpick_core::io::Window::File);
        for (s, w, hh, m) in &slices {
            let img = loader.load(s).unwrap();
            assert_eq!((img.width as usize, img.height as usize), (*w, *hh));
            let fg: Vec<u8> = img.first_channel_u32().iter().map(|&v| (v > 127) as u8).collect();
            assert_eq!(&fg, m, "slice {:?}: the label slice is the image slice's foreground", s.slice);
        }
        // Two slices at most: the first and the last of the labelled range.
        let two = label_slices(&grid, &all, &mask, "lab", 2).unwrap();
        assert_eq!(two.iter().map(|t| t.0.slice).collect::<Vec<_>>(), vec![all[0].slice, all[3].slice]);
        // A label of other dims is refused, naming both sizes.
        let small = crate::labels::Mask { dims: [7, 5, 3], data: vec![0; 105] };
        let e = label_slices(&grid, &all, &small, "lab", 4).unwrap_err().message;
        assert!(e.contains("7×5×3") && e.contains("7×5×4"), "{e}");

        let masks: Vec<Vec<u8>> = slices.iter().map(|t| t.3.clone()).collect();
        let samples: Vec<Sample> = slices.iter().map(|t| t.0.clone()).collect();
        let pred = assemble(Grid::of(&dir, &image, &all).unwrap(), &samples, &masks).unwrap();
        assert_eq!(pred.mask, label);
        let bytes = nifti_bytes(&pred, true).unwrap();
        let back = nifti::read_volume_bytes(Path::new("p.nii.gz"), &bytes, 0, 1 << 20).unwrap();
        let img = nifti::read_volume(&image, 0, 1 << 20).unwrap();
        assert_eq!(back.dims, dims);
        assert_eq!(back.directions, img.directions);
        assert_eq!(back.data.iter().map(|&v| v as u8).collect::<Vec<_>>(), label);
        let nrrd = nrrd_bytes(&pred);
        let text = String::from_utf8_lossy(&nrrd[..nrrd.len() - label.len()]).into_owned();
        assert!(text.contains("sizes: 7 5 4") && text.contains("space origin: (10,20,-5)"), "{text}");
        assert_eq!(crate::labels::read_nrrd(&nrrd, Path::new("p.nrrd")).unwrap().data, label);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
