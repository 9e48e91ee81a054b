//! NIfTI-1 volumes (`.nii`, `.nii.gz`) through the `nifti` crate, cut into 2-D slices.
//!
//! Orientation: the voxel-to-world matrix (sform if `sform_code > 0`, else qform if `qform_code > 0`, else the
//! voxel sizes alone) decides which voxel axis runs along world x (sagittal), y (coronal) and z (axial), so
//! `axial` means axial whatever the storage order. In-plane, the image's rows are flipped where needed so that
//! the top row is anterior (axial) or superior (coronal, sagittal); columns follow the remaining voxel axis in
//! storage order. 4-D files: the first volume (t = 0) unless another is asked for.

use std::path::Path;

pub use nifti::NiftiHeader;
use nifti::{IntoNdArray, NiftiObject};
use serde::{Deserialize, Serialize};

use super::check_size;
use crate::{Error, Result};

/// Anatomical viewing direction of a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Sagittal,
    Coronal,
    Axial,
}

impl View {
    pub const ALL: [View; 3] = [View::Sagittal, View::Coronal, View::Axial];

    pub fn name(self) -> &'static str {
        match self {
            View::Sagittal => "sagittal",
            View::Coronal => "coronal",
            View::Axial => "axial",
        }
    }

    pub fn parse(s: &str) -> Option<View> {
        match s {
            "sagittal" => Some(View::Sagittal),
            "coronal" => Some(View::Coronal),
            "axial" => Some(View::Axial),
            _ => None,
        }
    }

    /// World axis (0 = x, 1 = y, 2 = z) normal to this view.
    fn world_axis(self) -> usize {
        self as usize
    }
}

/// A NIfTI file's header and geometry without its voxels: where a label volume's slices go, and the header a
/// label written for it carries (the browser keeps one per dropped volume).
#[derive(Clone, Debug)]
pub struct VolumeGrid {
    pub header: NiftiHeader,
    pub geom: Volume,
}

impl VolumeGrid {
    /// The grid of a single-file NIfTI in memory whose voxels were read as `v` (its data is not kept).
    pub fn of_bytes(path: &Path, bytes: &[u8], v: &Volume) -> Result<VolumeGrid> {
        let header = header_bytes(path, bytes)?;
        Ok(VolumeGrid { header, geom: Volume { data: Vec::new(), ..v.clone_geometry() } })
    }
}

/// One volume in memory, f32 (after `scl_slope`/`scl_inter`), x fastest: `data[i + nx·(j + ny·k)]`.
#[derive(Clone, Debug)]
pub struct Volume {
    pub dims: [usize; 3],
    /// Voxel size in mm along each voxel axis.
    pub spacing: [f32; 3],
    /// 3×3 voxel-axis directions in world space (column a = direction of voxel axis a).
    pub directions: [[f64; 3]; 3],
    pub data: Vec<f32>,
}

fn affine_3x3(h: &NiftiHeader) -> [[f64; 3]; 3] {
    let mut m = [[0f64; 3]; 3]; // m[row][col]
    if h.sform_code > 0 {
        for (r, row) in [h.srow_x, h.srow_y, h.srow_z].iter().enumerate() {
            for c in 0..3 {
                m[r][c] = row[c] as f64;
            }
        }
        return m;
    }
    let (px, py, pz) =
        (h.pixdim[1].abs().max(1e-6) as f64, h.pixdim[2].abs().max(1e-6) as f64, h.pixdim[3].abs().max(1e-6) as f64);
    if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let r = [
            [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
            [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
            [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ];
        for row in 0..3 {
            m[row][0] = r[row][0] * px;
            m[row][1] = r[row][1] * py;
            m[row][2] = r[row][2] * pz * qfac;
        }
        return m;
    }
    m[0][0] = px;
    m[1][1] = py;
    m[2][2] = pz;
    m
}

/// Read the header only: (dims incl. t, voxel sizes).
pub fn read_header(path: &Path) -> Result<NiftiHeader> {
    NiftiHeader::from_file(path).map_err(|e| Error::decode(path, format!("not a readable NIfTI header: {e}")))
}

/// Read one 3-D volume (`time` selects the volume of a 4-D file), refusing more than `max_voxels`.
pub fn read_volume(path: &Path, time: usize, max_voxels: u64) -> Result<Volume> {
    let h = read_header(path)?;
    let gz = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut magic = [0u8; 2];
            std::io::Read::read_exact(&mut f, &mut magic).map(|_| magic == [0x1f, 0x8b])
        })
        .map_err(|e| Error::io(path, e))?;
    let len = if gz { None } else { Some(std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len()) };
    check_volume_header(path, &h, time, max_voxels, len)?;
    let f = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| Error::io(path, e))?);
    if gz {
        check_extensions(path, &h, flate2::read::GzDecoder::new(f))?;
    } else {
        check_extensions(path, &h, f)?;
    }
    let obj = nifti::ReaderOptions::new()
        .read_file(path)
        .map_err(|e| Error::decode(path, format!("corrupt or truncated NIfTI: {e}")))?;
    volume_of(path, obj, time)
}

/// `read_volume` for a single-file NIfTI (`.nii` or `.nii.gz`) already in memory; `path` names it in errors.
pub fn read_volume_bytes(path: &Path, bytes: &[u8], time: usize, max_voxels: u64) -> Result<Volume> {
    let gz = bytes.starts_with(&[0x1f, 0x8b]);
    let corrupt = |e: nifti::NiftiError| Error::decode(path, format!("corrupt or truncated NIfTI: {e}"));
    let h = if gz {
        NiftiHeader::from_reader(flate2::read::GzDecoder::new(bytes))
    } else {
        NiftiHeader::from_reader(bytes)
    }
    .map_err(|e| Error::decode(path, format!("not a readable NIfTI header: {e}")))?;
    check_volume_header(path, &h, time, max_voxels, (!gz).then_some(bytes.len() as u64))?;
    if gz {
        check_extensions(path, &h, flate2::read::GzDecoder::new(bytes))?;
    } else {
        check_extensions(path, &h, bytes)?;
    }
    let obj = if gz {
        nifti::InMemNiftiObject::from_reader(flate2::read::GzDecoder::new(bytes))
    } else {
        nifti::InMemNiftiObject::from_reader(bytes)
    }
    .map_err(corrupt)?;
    volume_of(path, obj, time)
}

/// The voxel types medpick reads (NIfTI datatype code, name, bits per voxel): integers and reals. Complex, RGB
/// and the rest are valid NIfTI that are refused as unsupported, by name.
const DATATYPES: [(i16, &str, i16); 10] = [
    (2, "uint8", 8),
    (4, "int16", 16),
    (8, "int32", 32),
    (16, "float32", 32),
    (64, "float64", 64),
    (256, "int8", 8),
    (512, "uint16", 16),
    (768, "uint32", 32),
    (1024, "int64", 64),
    (1280, "uint64", 64),
];

/// Everything the header claims, checked before any voxel is read: dimensionality and each dimension (named), the
/// voxel cap, the volume asked for, the voxel type and its bits, the scaling, and where the voxels start —
/// `vox_offset` past the 352 header bytes, whole, and (when `file_len` is known: an uncompressed file) with the
/// voxels inside the file.
fn check_volume_header(
    path: &Path,
    h: &NiftiHeader,
    time: usize,
    max_voxels: u64,
    file_len: Option<u64>,
) -> Result<()> {
    let nd = h.dim[0];
    if !(2..=4).contains(&nd) {
        return Err(Error::unsupported(path, format!("{nd}-D NIfTI (medpick reads 2-D, 3-D and 4-D)")));
    }
    let nd = nd as usize;
    for (i, name) in ["x", "y", "z", "t"].iter().enumerate().take(nd) {
        if h.dim[i + 1] < 1 {
            return Err(Error::decode(path, format!("NIfTI dim[{}] (the {name} size) is {}", i + 1, h.dim[i + 1])));
        }
    }
    let dims: Vec<u64> = (1..=nd).map(|i| h.dim[i] as u64).collect();
    check_size(path, "volume", &dims, max_voxels)?;
    let nt = if nd == 4 { h.dim[4] as usize } else { 1 };
    if time >= nt {
        return Err(Error::Invalid(format!("{}: volume {time} requested, the file has {nt}", path.display())));
    }
    let Some(&(_, tname, bits)) = DATATYPES.iter().find(|(code, _, _)| *code == h.datatype) else {
        let name = match h.datatype {
            0 => "unknown",
            1 => "binary",
            32 => "complex64",
            128 => "RGB24",
            1536 => "float128",
            1792 => "complex128",
            2048 => "complex256",
            2304 => "RGBA32",
            _ => "not a NIfTI datatype",
        };
        return Err(Error::unsupported(
            path,
            format!("NIfTI datatype {name} (code {}): medpick reads integer and real voxels", h.datatype),
        ));
    };
    if h.bitpix != bits {
        return Err(Error::decode(
            path,
            format!("NIfTI bitpix {} does not match datatype {tname} ({bits} bits)", h.bitpix),
        ));
    }
    if !h.scl_slope.is_finite() || !h.scl_inter.is_finite() {
        return Err(Error::decode(
            path,
            format!("NIfTI scaling scl_slope {} / scl_inter {} is not finite", h.scl_slope, h.scl_inter),
        ));
    }
    if &h.magic == b"n+1\0" {
        let off = h.vox_offset;
        // Extensions between the header and the voxels are kept to a sane size (an absurd offset is refused).
        if !off.is_finite() || off < 352.0 || off.fract() != 0.0 || off > (352 + (64 << 20)) as f32 {
            return Err(Error::decode(
                path,
                format!("NIfTI vox_offset {off} is not a whole byte offset between 352 (the header's end) and 64 MiB"),
            ));
        }
        let need = off as u64 + dims.iter().product::<u64>() * (bits as u64 / 8);
        if let Some(len) = file_len.filter(|&len| len < need) {
            return Err(Error::decode(
                path,
                format!("truncated NIfTI: the header puts the voxels at bytes {off}..{need}, the file has {len} bytes"),
            ));
        }
    }
    Ok(())
}

/// The extensions between the header and the voxels (`n+1` files), checked before the nifti crate reads them:
/// it allocates each extension's declared `esize` before reading it, so one header field could ask for 2 GB.
/// `stream` is the (decompressed) file from its first byte. Each esize must be at least 8 (its own two fields)
/// and end at or before `vox_offset`.
fn check_extensions(path: &Path, h: &NiftiHeader, mut stream: impl std::io::Read) -> Result<()> {
    use std::io::Read;
    if &h.magic != b"n+1\0" {
        return Ok(());
    }
    let end = h.vox_offset as u64; // whole and in 352..=352 + 64 MiB: check_volume_header ran first
    let cut = |e: std::io::Error| Error::decode(path, format!("truncated NIfTI (in its header or extensions): {e}"));
    let mut head = [0u8; 352];
    stream.read_exact(&mut head).map_err(cut)?;
    if head[348] == 0 {
        return Ok(());
    }
    let i32_at = |b: [u8; 4]| match h.endianness {
        nifti::Endianness::Little => i32::from_le_bytes(b),
        nifti::Endianness::Big => i32::from_be_bytes(b),
    };
    let mut at = 352u64;
    while at < end {
        let mut f = [0u8; 8];
        stream.read_exact(&mut f).map_err(cut)?;
        let esize = i32_at(f[..4].try_into().expect("4 bytes")) as i64;
        if esize < 8 || at + esize as u64 > end {
            return Err(Error::decode(
                path,
                format!("NIfTI extension at byte {at} declares esize {esize}: extensions must fit between byte 352 and vox_offset {end}"),
            ));
        }
        let skip = esize as u64 - 8;
        if std::io::copy(&mut (&mut stream).take(skip), &mut std::io::sink()).map_err(cut)? != skip {
            return Err(Error::decode(
                path,
                format!("truncated NIfTI: extension at byte {at} ends past the file's end"),
            ));
        }
        at += esize as u64;
    }
    Ok(())
}

fn volume_of(path: &Path, obj: nifti::InMemNiftiObject, time: usize) -> Result<Volume> {
    let h = obj.header().clone();
    let arr = obj
        .into_volume()
        .into_ndarray::<f32>()
        .map_err(|e| Error::decode(path, format!("cannot convert the voxel data: {e}")))?;
    let shape = arr.shape().to_vec();
    let (nx, ny, nz) = (shape[0], *shape.get(1).unwrap_or(&1), *shape.get(2).unwrap_or(&1));
    let mut data = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let v = match shape.len() {
                    2 => arr[[i, j]],
                    3 => arr[[i, j, k]],
                    _ => arr[[i, j, k, time]],
                };
                data.push(v);
            }
        }
    }
    if let Some(at) = data.iter().position(|v| !v.is_finite()) {
        let bad = data.iter().filter(|v| !v.is_finite()).count();
        let (i, j, k) = (at % nx, at / nx % ny, at / (nx * ny));
        return Err(Error::decode(
            path,
            format!(
                "{bad} voxel(s) are not finite, the first ({i}, {j}, {k}) is {}: medpick refuses NaN/Inf intensities",
                data[at]
            ),
        ));
    }
    let m = affine_3x3(&h);
    let mut directions = [[0f64; 3]; 3];
    for (a, dir) in directions.iter_mut().enumerate() {
        *dir = [m[0][a], m[1][a], m[2][a]];
    }
    let spacing = [h.pixdim[1].abs(), h.pixdim[2].abs(), h.pixdim[3].abs()];
    Ok(Volume { dims: [nx, ny, nz], spacing, directions, data })
}

/// For each world axis (x, y, z), the voxel axis that runs most nearly along it (a permutation), given the
/// voxel axes' world directions.
fn axis_map(directions: &[[f64; 3]; 3]) -> [usize; 3] {
    let mut assigned = [usize::MAX; 3];
    let mut used = [false; 3];
    // Assign z first (axial matters most), then x, then y.
    for w in [2usize, 0, 1] {
        let mut best = None;
        for a in 0..3 {
            if used[a] {
                continue;
            }
            let d = directions[a];
            let norm = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-12);
            let score = d[w].abs() / norm;
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((a, score));
            }
        }
        let (a, _) = best.unwrap_or((w, 0.0));
        assigned[w] = a;
        used[a] = true;
    }
    assigned
}

/// What decides how a volume is cut into slices: its size, the voxel axis along each world axis and whether
/// that axis points the positive world way. A label volume must have its image's layout to be sliced alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceLayout {
    pub dims: [usize; 3],
    pub axes: [usize; 3],
    pub positive: [bool; 3],
}

impl std::fmt::Display for SliceLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [x, y, z] = self.dims;
        let dir = |w: usize| format!("{}{}", if self.positive[w] { "+" } else { "-" }, ["i", "j", "k"][self.axes[w]]);
        write!(f, "{x}×{y}×{z}, world x/y/z along {}/{}/{}", dir(0), dir(1), dir(2))
    }
}

fn layout_of(dims: [usize; 3], directions: &[[f64; 3]; 3]) -> SliceLayout {
    let axes = axis_map(directions);
    SliceLayout { dims, axes, positive: [0, 1, 2].map(|w| directions[axes[w]][w] > 0.0) }
}

/// The voxel-to-world affine of a header (rows x, y, z of [R | t], RAS+ millimetres, as NIfTI defines it): the
/// sform when set, else the qform, else the voxel sizes at the origin.
pub fn affine(h: &NiftiHeader) -> [[f64; 4]; 3] {
    let m = affine_3x3(h);
    let t = if h.sform_code > 0 {
        [h.srow_x[3], h.srow_y[3], h.srow_z[3]].map(|v| v as f64)
    } else if h.qform_code > 0 {
        [h.quatern_x, h.quatern_y, h.quatern_z].map(|v| v as f64)
    } else {
        [0.0; 3]
    };
    [0, 1, 2].map(|r| [m[r][0], m[r][1], m[r][2], t[r]])
}

/// A uint8 label volume (`data` x fastest, `dims` [x, y, z]) as the bytes of a single-file NIfTI-1 (`.nii`, or
/// `.nii.gz` when `gz`) with the geometry of header `h` (affine, voxel sizes, units, description) and the label's
/// own type, dims and scaling (slope 1). No file system is needed, so the browser writes the same files.
pub fn label_bytes(h: &NiftiHeader, dims: [usize; 3], data: &[u8], gz: bool) -> Result<Vec<u8>> {
    let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n != Some(data.len()) || dims.iter().any(|&d| d == 0 || d > i16::MAX as usize) {
        return Err(Error::Invalid(format!("a label of {} voxels cannot have dims {dims:?}", data.len())));
    }
    let mut b = Vec::with_capacity(352 + data.len());
    let i16s = |b: &mut Vec<u8>, v: &[i16]| v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
    let f32s = |b: &mut Vec<u8>, v: &[f32]| v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
    let fixed = |b: &mut Vec<u8>, v: &[u8], len: usize| {
        let mut f = v[..v.len().min(len)].to_vec();
        f.resize(len, 0);
        b.extend_from_slice(&f);
    };
    b.extend_from_slice(&348i32.to_le_bytes());
    b.extend_from_slice(&[0u8; 10 + 18 + 4 + 2]); // data_type, db_name, extents, session_error
    b.push(b'r'); // regular
    b.push(h.dim_info);
    i16s(&mut b, &[3, dims[0] as i16, dims[1] as i16, dims[2] as i16, 1, 1, 1, 1]);
    f32s(&mut b, &[0.0, 0.0, 0.0]); // intent parameters
    i16s(&mut b, &[1002, 2, 8, h.slice_start]); // NIFTI_INTENT_LABEL, datatype uint8, bitpix 8
    let mut pixdim = h.pixdim;
    pixdim[0] = if pixdim[0] < 0.0 { -1.0 } else { 1.0 }; // qfac, as the reader takes it
    f32s(&mut b, &pixdim);
    f32s(&mut b, &[352.0, 1.0, 0.0]); // vox_offset, scl_slope, scl_inter
    i16s(&mut b, &[h.slice_end]);
    b.push(h.slice_code);
    b.push(h.xyzt_units);
    f32s(&mut b, &[1.0, 0.0, h.slice_duration, h.toffset]); // cal_max, cal_min
    b.extend_from_slice(&[0u8; 8]); // glmax, glmin
    fixed(&mut b, &h.descrip, 80);
    fixed(&mut b, &h.aux_file, 24);
    i16s(&mut b, &[h.qform_code, h.sform_code]);
    f32s(&mut b, &[h.quatern_b, h.quatern_c, h.quatern_d, h.quatern_x, h.quatern_y, h.quatern_z]);
    f32s(&mut b, &h.srow_x);
    f32s(&mut b, &h.srow_y);
    f32s(&mut b, &h.srow_z);
    fixed(&mut b, b"label", 16);
    b.extend_from_slice(b"n+1\0");
    debug_assert_eq!(b.len(), 348);
    b.extend_from_slice(&[0u8; 4]); // no extensions
    b.extend_from_slice(data);
    if !gz {
        return Ok(b);
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, &b).map_err(|e| Error::Invalid(format!("compressing a label: {e}")))?;
    e.finish().map_err(|e| Error::Invalid(format!("compressing a label: {e}")))
}

/// A header with voxel sizes `spacing` (mm) and no orientation (NIfTI's "method 1"), for a label with no
/// reference image.
pub fn plain_header(spacing: [f32; 3]) -> NiftiHeader {
    NiftiHeader {
        pixdim: [1.0, spacing[0], spacing[1], spacing[2], 1.0, 1.0, 1.0, 1.0],
        xyzt_units: 2, // millimetres
        ..NiftiHeader::default()
    }
}

/// The header of a single-file NIfTI already in memory (gzipped or not); `path` names it in errors.
pub fn header_bytes(path: &Path, bytes: &[u8]) -> Result<NiftiHeader> {
    let r = if bytes.starts_with(&[0x1f, 0x8b]) {
        NiftiHeader::from_reader(flate2::read::GzDecoder::new(bytes))
    } else {
        NiftiHeader::from_reader(bytes)
    };
    r.map_err(|e| Error::decode(path, format!("not a readable NIfTI header: {e}")))
}

/// The slice layout of a NIfTI file from its header alone (no voxel data is read).
pub fn slice_layout(path: &Path) -> Result<SliceLayout> {
    Ok(header_layout(&read_header(path)?))
}

/// The slice layout a header describes.
pub fn header_layout(h: &NiftiHeader) -> SliceLayout {
    let m = affine_3x3(h);
    let directions = [0, 1, 2].map(|a| [m[0][a], m[1][a], m[2][a]]);
    layout_of([1, 2, 3].map(|i| h.dim[i].max(1) as usize), &directions)
}

impl Volume {
    /// The dims, spacing and directions, without the voxels.
    pub fn clone_geometry(&self) -> Volume {
        Volume { dims: self.dims, spacing: self.spacing, directions: self.directions, data: Vec::new() }
    }

    /// For each world axis (x, y, z), the voxel axis that runs most nearly along it (a permutation).
    pub fn voxel_axis_of_world(&self) -> [usize; 3] {
        axis_map(&self.directions)
    }

    /// How this volume is cut into slices (see [`SliceLayout`]).
    pub fn layout(&self) -> SliceLayout {
        layout_of(self.dims, &self.directions)
    }

    /// Number of slices in a view.
    pub fn slices(&self, view: View) -> usize {
        self.dims[self.voxel_axis_of_world()[view.world_axis()]]
    }

    /// Slice `k` of `view` as (width, height, values row-major).
    pub fn slice(&self, view: View, k: usize) -> Option<(usize, usize, Vec<f32>)> {
        let (w, h, voxels) = self.slice_voxels(view, k)?;
        Some((w, h, voxels.iter().map(|&i| self.data[i]).collect()))
    }

    /// Where each pixel of slice `k` of `view` lies in `data` (row-major): the layout [`Volume::slice`] reads, and
    /// what writes a slice back into a volume of these dims (a label volume on this volume's grid). Only the
    /// geometry is used, so `data` may be empty.
    pub fn slice_voxels(&self, view: View, k: usize) -> Option<(usize, usize, Vec<usize>)> {
        let map = self.voxel_axis_of_world();
        let normal = map[view.world_axis()];
        if k >= self.dims[normal] {
            return None;
        }
        // In-plane axes in storage order; the row axis is the one that maps to the "up" world axis.
        let up_world = if view == View::Axial { 1 } else { 2 };
        let row_axis = map[up_world];
        let col_axis = (0..3).find(|&a| a != normal && a != row_axis).unwrap_or(0);
        let (w, h) = (self.dims[col_axis], self.dims[row_axis]);
        // Top row = most anterior/superior: flip rows when the row axis points that way.
        let flip = self.directions[row_axis][up_world] > 0.0;
        let stride = [1, self.dims[0], self.dims[0] * self.dims[1]];
        let mut out = Vec::with_capacity(w * h);
        for r in 0..h {
            let rr = if flip { h - 1 - r } else { r };
            for c in 0..w {
                out.push(k * stride[normal] + rr * stride[row_axis] + c * stride[col_axis]);
            }
        }
        Some((w, h, out))
    }

    /// In-plane pixel spacing (columns, rows) and slice thickness of a view, in mm.
    pub fn view_spacing(&self, view: View) -> [f32; 3] {
        let map = self.voxel_axis_of_world();
        let normal = map[view.world_axis()];
        let row_axis = map[if view == View::Axial { 1 } else { 2 }];
        let col_axis = (0..3).find(|&a| a != normal && a != row_axis).unwrap_or(0);
        [self.spacing[col_axis], self.spacing[row_axis], self.spacing[normal]]
    }
}

/// True for `.nii` and `.nii.gz`.
pub fn is_nifti_path(p: &Path) -> bool {
    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
    n.ends_with(".nii") || n.ends_with(".nii.gz")
}
