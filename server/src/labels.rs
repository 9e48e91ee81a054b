//! Label files as annotation tools send them and as medpick returns them: 2-D masks (PNG, TIFF, BMP), NIfTI
//! volumes and NRRD (3D Slicer's labelmaps), checked against their image before they are stored (size, one
//! channel, integer values), read back as binary masks for training, and written as the infer result.

use std::io::Read;
use std::path::Path;

use medpick_core::io::{decode_image_file, Pixels, DEFAULT_MAX_PIXELS};

use crate::{ApiError, ApiResult};

/// A label's geometry and foreground: width × height × depth (depth 1 for 2-D), 1 where the label is non-zero.
#[derive(Debug)]
pub struct Mask {
    pub dims: [usize; 3],
    pub data: Vec<u8>,
}

/// The size of a datastore image: [width, height, depth].
pub fn image_dims(path: &Path) -> ApiResult<[usize; 3]> {
    if path.is_dir() {
        // A DICOM series: its slices' size and count (ingest refuses a series with a gap or mixed sizes).
        let ss = crate::pool::all_samples(path, path).map_err(ApiError::bad)?;
        let (w, h) = crate::volume::slice_size(path, &ss)?;
        return Ok([w, h, ss.len()]);
    }
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        let h = medpick_core::io::nifti::read_header(path).map_err(|e| ApiError::bad(e.to_string()))?;
        let d = h.dim;
        let n = d[0].clamp(1, 7) as usize;
        let get = |i: usize| if i <= n { d[i].max(1) as usize } else { 1 };
        return Ok([get(1), get(2), get(3)]);
    }
    if name.ends_with(".nrrd") {
        let m = read_nrrd(&std::fs::read(path).map_err(|e| ApiError::io(path, e))?, path)?;
        return Ok(m.dims);
    }
    let img = decode_image_file(path, DEFAULT_MAX_PIXELS).map_err(|e| ApiError::bad(e.to_string()))?;
    Ok([img.width as usize, img.height as usize, 1])
}

/// The size of an uploaded image (`name`, its format from `ext`) from its bytes: [width, height, depth]; an error
/// names the file and what is wrong.
pub fn image_dims_bytes(name: &str, ext: &str, bytes: &[u8]) -> ApiResult<[usize; 3]> {
    let bad = |e: medpick_core::Error| ApiError::bad(e.to_string()); // core's errors name the file
    let p = Path::new(name);
    match ext {
        ".nii" | ".nii.gz" => {
            let v = medpick_core::io::nifti::read_volume_bytes(
                p,
                bytes,
                0,
                medpick_core::io::volume_cap(DEFAULT_MAX_PIXELS),
            )
            .map_err(bad)?;
            Ok(v.dims)
        }
        ".png" | ".jpg" | ".jpeg" | ".tif" | ".tiff" | ".bmp" => {
            let img = medpick_core::io::image2d::decode_image_bytes(p, bytes, DEFAULT_MAX_PIXELS).map_err(bad)?;
            Ok([img.width as usize, img.height as usize, 1])
        }
        other => Err(ApiError::bad(format!("{name}: images are PNG, JPEG, TIFF, BMP or NIfTI files, not {other:?}"))),
    }
}

/// Read a label file's bytes (named `what` in errors, its format from `ext`) as a binary mask.
pub fn read_mask(bytes: &[u8], ext: &str, what: &str) -> ApiResult<Mask> {
    let bad = |m: String| ApiError::bad(format!("{what}: {m}"));
    match ext {
        ".nrrd" => read_nrrd(bytes, Path::new(what)),
        ".nii" | ".nii.gz" => {
            let p = Path::new(what);
            let v = medpick_core::io::nifti::read_volume_bytes(
                p,
                bytes,
                0,
                medpick_core::io::volume_cap(DEFAULT_MAX_PIXELS),
            )
            .map_err(|e| bad(e.to_string()))?;
            if v.data.iter().any(|x| !x.is_finite() || x.fract() != 0.0) {
                return Err(bad(
                    "a label volume holds non-integer values (a label is one class index per voxel)".into()
                ));
            }
            Ok(Mask { dims: v.dims, data: v.data.iter().map(|&x| (x != 0.0) as u8).collect() })
        }
        ".png" | ".tif" | ".tiff" | ".bmp" => {
            let tmp = Path::new(what);
            let img = medpick_core::io::image2d::decode_image_bytes(tmp, bytes, DEFAULT_MAX_PIXELS)
                .map_err(|e| bad(e.to_string()))?;
            if img.channels != 1 {
                let all_grey = match &img.pixels {
                    Pixels::U8(v) => v.chunks(img.channels as usize).all(|c| c.iter().all(|&x| x == c[0])),
                    Pixels::U16(v) => v.chunks(img.channels as usize).all(|c| c.iter().all(|&x| x == c[0])),
                    Pixels::F32(_) => false,
                };
                if !all_grey {
                    return Err(bad(format!(
                        "a label image has one channel of class indices; this one has {} channels that differ",
                        img.channels
                    )));
                }
            }
            let first = img.first_channel_u32();
            Ok(Mask {
                dims: [img.width as usize, img.height as usize, 1],
                data: first.iter().map(|&v| (v != 0) as u8).collect(),
            })
        }
        other => Err(bad(format!("labels are PNG, TIFF, BMP, NIfTI or NRRD files, not {other:?}"))),
    }
}

/// Check an uploaded label against its image: same size (a 2-D label of a 2-D image may carry a depth of 1).
pub fn check_against(mask: &Mask, image: [usize; 3], what: &str) -> ApiResult<()> {
    if mask.dims != image {
        return Err(ApiError::bad(format!(
            "{what}: the label is {}×{}×{}, its image is {}×{}×{}",
            mask.dims[0], mask.dims[1], mask.dims[2], image[0], image[1], image[2]
        )));
    }
    Ok(())
}

/// A minimal NRRD reader for labelmaps (3D Slicer's `.nrrd` / `.seg.nrrd`): attached data only, encodings raw and
/// gzip, integer types; anything else is refused by name.
pub fn read_nrrd(bytes: &[u8], path: &Path) -> ApiResult<Mask> {
    let bad = |m: &str| ApiError::bad(format!("{}: {m}", path.display()));
    if !bytes.starts_with(b"NRRD000") {
        return Err(bad("not an NRRD file (no NRRD000x magic)"));
    }
    let end = bytes.windows(2).position(|w| w == b"\n\n").ok_or_else(|| bad("NRRD header without its blank line"))?;
    if end > 1 << 20 {
        return Err(bad("NRRD header longer than 1 MiB"));
    }
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| bad("NRRD header is not text"))?;
    let (mut ty, mut dim, mut sizes, mut enc, mut endian) = (None, None, None, None, "little".to_string());
    for line in header.lines().skip(1) {
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim_start_matches('=').trim();
        match k.trim() {
            "type" => ty = Some(v.to_string()),
            "dimension" => dim = v.parse::<usize>().ok(),
            "sizes" => sizes = Some(v.split_whitespace().map(|s| s.parse::<usize>()).collect::<Result<Vec<_>, _>>()),
            "encoding" => enc = Some(v.to_string()),
            "endian" => endian = v.to_string(),
            "data file" | "datafile" => return Err(bad("detached NRRD data (data file) is not accepted")),
            _ => {}
        }
    }
    let sizes = sizes.and_then(|r| r.ok()).ok_or_else(|| bad("NRRD without valid sizes"))?;
    let dim = dim.ok_or_else(|| bad("NRRD without dimension"))?;
    if dim != sizes.len() || !(2..=4).contains(&dim) || sizes.contains(&0) {
        return Err(bad("NRRD dimension and sizes disagree, or are not 2-D/3-D"));
    }
    let bytes_per = match ty.as_deref().unwrap_or("") {
        "uchar" | "uint8" | "unsigned char" | "uint8_t" => 1,
        "signed char" | "int8" | "int8_t" | "char" => 1,
        "short" | "int16" | "int16_t" | "signed short" | "short int" => 2,
        "ushort" | "uint16" | "uint16_t" | "unsigned short" | "unsigned short int" => 2,
        "int" | "int32" | "int32_t" | "signed int" => 4,
        "uint" | "uint32" | "uint32_t" | "unsigned int" => 4,
        t => return Err(bad(&format!("NRRD type {t:?}: a label is integer class indices"))),
    };
    // A 4-D labelmap (layers first, as .seg.nrrd may have) is accepted only with one layer.
    let (lead, space): (usize, &[usize]) = if dim == 4 { (sizes[0], &sizes[1..]) } else { (1, &sizes[..]) };
    if lead != 1 {
        return Err(bad("a multi-layer segmentation (4-D NRRD) is not accepted: export one labelmap"));
    }
    let n: usize = space.iter().try_fold(1usize, |a, &s| a.checked_mul(s)).ok_or_else(|| bad("NRRD sizes overflow"))?;
    if n as u64 > medpick_core::io::volume_cap(DEFAULT_MAX_PIXELS) {
        return Err(bad("NRRD larger than medpick's voxel cap"));
    }
    let body = &bytes[end + 2..];
    let need = n * bytes_per;
    let raw: Vec<u8> = match enc.as_deref().unwrap_or("raw") {
        "raw" => body.to_vec(),
        "gzip" | "gz" => {
            let mut out = Vec::with_capacity(need.min(1 << 26));
            flate2::read::GzDecoder::new(body)
                .take(need as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(&format!("NRRD gzip data: {e}")))?;
            out
        }
        e => return Err(bad(&format!("NRRD encoding {e:?}: raw or gzip"))),
    };
    if raw.len() < need {
        return Err(bad(&format!("NRRD data is truncated: {} bytes for {need}", raw.len())));
    }
    // Non-zero is non-zero in either byte order.
    let _ = endian;
    let data: Vec<u8> = raw[..need].chunks(bytes_per).map(|c| c.iter().any(|&b| b != 0) as u8).collect();
    let dims = [space[0], space[1], if space.len() > 2 { space[2] } else { 1 }];
    Ok(Mask { dims, data })
}

/// An NRRD labelmap (uint8, raw) of `dims` [w, h, d] (d = 1: a 2-D NRRD).
pub fn write_nrrd(mask: &[u8], dims: [usize; 3]) -> Vec<u8> {
    let mut out = if dims[2] > 1 {
        format!("NRRD0004\ntype: uint8\ndimension: 3\nsizes: {} {} {}\nencoding: raw\n\n", dims[0], dims[1], dims[2])
    } else {
        format!("NRRD0004\ntype: uint8\ndimension: 2\nsizes: {} {}\nencoding: raw\n\n", dims[0], dims[1])
    }
    .into_bytes();
    out.extend_from_slice(mask);
    out
}

/// A grey 8-bit PNG of class indices (0/1), `w`×`h`.
pub fn write_png(mask: &[u8], w: usize, h: usize) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    let img = image::GrayImage::from_raw(w as u32, h as u32, mask.to_vec())
        .ok_or_else(|| ApiError::internal("mask size mismatch"))?;
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nrrd_round_trip_and_refusals() {
        let m: Vec<u8> = (0..12).map(|i| (i % 3 == 0) as u8).collect();
        let b = write_nrrd(&m, [4, 3, 1]);
        let r = read_nrrd(&b, Path::new("x.nrrd")).unwrap();
        assert_eq!(r.dims, [4, 3, 1]);
        assert_eq!(r.data, m);
        let mut cut = b.clone();
        cut.truncate(b.len() - 3);
        assert!(read_nrrd(&cut, Path::new("x.nrrd")).unwrap_err().message.contains("truncated"));
        let huge = b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 100000 100000 100000\nencoding: raw\n\n".to_vec();
        assert!(read_nrrd(&huge, Path::new("x.nrrd")).is_err());
        let float = b"NRRD0004\ntype: float\ndimension: 2\nsizes: 1 1\nencoding: raw\n\n\0\0\0\0".to_vec();
        assert!(read_nrrd(&float, Path::new("x.nrrd")).unwrap_err().message.contains("integer"));
    }
}
