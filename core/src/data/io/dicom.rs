//! DICOM through dicom-rs (`dicom-object`, `dicom-pixeldata`): single files, multi-frame files and series.
//!
//! Intensities: the Modality LUT (Rescale Slope/Intercept) is applied, so CT values are Hounsfield units; then a
//! [`Window`] maps them to [0, 1] (presets, the file's own VOI window, or percentiles); MONOCHROME1 is inverted
//! after windowing so that bright means dense everywhere. RGB files keep 3 channels (8-bit, no window).
//! Series: files are grouped by SeriesInstanceUID and sorted by ImagePositionPatient along the slice normal
//! (InstanceNumber when positions are missing); a gap of more than 1.5× the median spacing is a missing slice.

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;

use super::window::{apply_linear, fixed_range, percentile_range};
use super::{check_size, Image2d, Pixels, Window};
use crate::{Error, Result};

/// What medpick needs from a DICOM header.
#[derive(Clone, Debug, Default)]
pub struct DicomInfo {
    pub series_uid: Option<String>,
    pub instance_number: Option<i64>,
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    pub rows: u32,
    pub columns: u32,
    pub frames: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub modality: Option<String>,
    pub photometric: Option<String>,
    pub transfer_syntax: String,
    /// (row spacing, column spacing) in mm.
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub voi_window: Option<(f64, f64)>,
    pub has_pixel_data: bool,
}

fn str_of(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> Option<String> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().trim_end_matches('\0').to_string())
}

fn floats_of(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> Option<Vec<f64>> {
    obj.element_opt(tag).ok().flatten().and_then(|e| e.to_multi_float64().ok())
}

fn int_of(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> Option<i64> {
    obj.element_opt(tag).ok().flatten().and_then(|e| e.to_int::<i64>().ok())
}

/// Open a DICOM file (Part 10, with or without preamble).
pub fn open(path: &Path) -> Result<DefaultDicomObject> {
    open_checked(path, false)
}

/// Open a DICOM file's header: every element before the pixel data (which is not read), with the same checks as
/// [`open`].
pub fn open_header(path: &Path) -> Result<DefaultDicomObject> {
    open_checked(path, true)
}

/// [`open`] and [`open_header`]: the file's lengths checked, then parsed with or without the preamble.
fn open_checked(path: &Path, header_only: bool) -> Result<DefaultDicomObject> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() == 0 {
        return Err(Error::decode(path, "empty file (0 bytes)"));
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    super::dicom_lengths::check(path, std::io::BufReader::new(f), meta.len())?;
    let opts = || {
        let o = OpenFileOptions::new();
        if header_only {
            o.read_until(tags::PIXEL_DATA)
        } else {
            o
        }
    };
    opts()
        .open_file(path)
        .or_else(|_| opts().read_preamble(dicom_object::file::ReadPreamble::Never).open_file(path))
        .or_else(|e| {
            // The lengths were checked above: the file is read whole only for a meta group dicom-rs refuses.
            let Ok(bytes) = std::fs::read(path) else { return Err(e) };
            let body = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" { &bytes[128..] } else { &bytes[..] };
            lenient_meta(path, body).ok_or(e)
        })
        .map_err(|e| Error::decode(path, format!("not a readable DICOM file: {e}")))
}

/// A Part 10 body (from `DICM`) whose file meta group breaks a rule dicom-rs enforces, read leniently: OHIF's
/// DICOM SEG export writes an Implementation Version Name of 17 characters ("OHIF-VIEWER-2.0.0", SH allows 16)
/// and no File Meta Information Version. The group's elements are read one by one (explicit VR little endian, as
/// PS3.10 has it), text values over their VR's length are cut to it, and the data set is read as usual in its
/// transfer syntax: the group is written again as dicom-rs writes it, and the stream so repaired goes through the
/// same length check and reader as any other (a hostile data set behind a broken meta group must not allocate what
/// its lengths declare). None when even that fails.
fn lenient_meta(path: &Path, body: &[u8]) -> Option<DefaultDicomObject> {
    use dicom_encoding::TransferSyntaxIndex;
    let rest = body.strip_prefix(b"DICM")?;
    let mut at = 0usize;
    let mut b = dicom_object::meta::FileMetaTableBuilder::new();
    let u16_at = |i: usize| Some(u16::from_le_bytes([*rest.get(i)?, *rest.get(i + 1)?]));
    let mut ts_uid = None;
    while u16_at(at)? == 0x0002 {
        let elem = u16_at(at + 2)?;
        let vr = rest.get(at + 4..at + 6)?;
        let (len, head) =
            if matches!(vr, b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN" | b"UC" | b"UR" | b"OD" | b"OL" | b"OV") {
                (u32::from_le_bytes(rest.get(at + 8..at + 12)?.try_into().ok()?) as usize, 12)
            } else {
                (u16_at(at + 6)? as usize, 8)
            };
        let value = rest.get(at + head..at.checked_add(head)?.checked_add(len)?)?;
        let text = |max: usize| {
            let t = String::from_utf8_lossy(value);
            let t = t.trim_end_matches(['\0', ' ']);
            t.chars().take(max).collect::<String>()
        };
        b = match elem {
            0x0002 => b.media_storage_sop_class_uid(text(64)),
            0x0003 => b.media_storage_sop_instance_uid(text(64)),
            0x0010 => {
                ts_uid = Some(text(64));
                b.transfer_syntax(text(64))
            }
            0x0012 => b.implementation_class_uid(text(64)),
            0x0013 => b.implementation_version_name(text(16)),
            0x0016 => b.source_application_entity_title(text(16)),
            _ => b,
        };
        at = at + head + len;
    }
    let meta = b.build().ok()?;
    dicom_transfer_syntax_registry::TransferSyntaxRegistry.get(&ts_uid?)?;
    let mut repaired = b"DICM".to_vec();
    meta.write(&mut repaired).ok()?;
    repaired.extend_from_slice(rest.get(at..)?);
    super::dicom_lengths::check(path, std::io::Cursor::new(&repaired), repaired.len() as u64).ok()?;
    OpenFileOptions::new().read_preamble(dicom_object::file::ReadPreamble::Never).from_reader(&repaired[..]).ok()
}

/// Parse a DICOM file already in memory (`path` names it in errors); with or without the 128-byte preamble.
pub fn open_bytes(path: &Path, bytes: &[u8]) -> Result<DefaultDicomObject> {
    if bytes.is_empty() {
        return Err(Error::decode(path, "empty file (0 bytes)"));
    }
    super::dicom_lengths::check(path, std::io::Cursor::new(bytes), bytes.len() as u64)?;
    let body = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" { &bytes[128..] } else { bytes };
    OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .from_reader(body)
        .or_else(|e| lenient_meta(path, body).ok_or(e))
        .map_err(|e| Error::decode(path, format!("not a readable DICOM file: {e}")))
}

/// Header fields of an open object.
pub fn info(obj: &DefaultDicomObject) -> DicomInfo {
    let voi = match (floats_of(obj, tags::WINDOW_CENTER), floats_of(obj, tags::WINDOW_WIDTH)) {
        (Some(c), Some(w)) if !c.is_empty() && !w.is_empty() && w[0] > 0.0 => Some((c[0], w[0])),
        _ => None,
    };
    DicomInfo {
        series_uid: str_of(obj, tags::SERIES_INSTANCE_UID).filter(|s| !s.is_empty()),
        instance_number: int_of(obj, tags::INSTANCE_NUMBER),
        position: floats_of(obj, tags::IMAGE_POSITION_PATIENT).filter(|v| v.len() == 3).map(|v| [v[0], v[1], v[2]]),
        orientation: floats_of(obj, tags::IMAGE_ORIENTATION_PATIENT)
            .filter(|v| v.len() == 6)
            .map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]),
        rows: int_of(obj, tags::ROWS).unwrap_or(0).max(0) as u32,
        columns: int_of(obj, tags::COLUMNS).unwrap_or(0).max(0) as u32,
        frames: int_of(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as u32,
        samples_per_pixel: int_of(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1).max(1) as u16,
        bits_allocated: int_of(obj, tags::BITS_ALLOCATED).unwrap_or(16).max(0) as u16,
        modality: str_of(obj, tags::MODALITY),
        photometric: str_of(obj, tags::PHOTOMETRIC_INTERPRETATION),
        transfer_syntax: obj.meta().transfer_syntax().trim_end_matches('\0').to_string(),
        pixel_spacing: floats_of(obj, tags::PIXEL_SPACING).filter(|v| v.len() == 2).map(|v| [v[0], v[1]]),
        slice_thickness: floats_of(obj, tags::SLICE_THICKNESS).and_then(|v| v.first().copied()),
        voi_window: voi,
        has_pixel_data: obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_some(),
    }
}

/// Read the header of a file (the whole file is parsed; pixel data stays encoded).
pub fn read_info(path: &Path) -> Result<DicomInfo> {
    Ok(info(&open(path)?))
}

fn ts_name(uid: &str) -> String {
    use dicom_encoding::TransferSyntaxIndex;
    use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
    TransferSyntaxRegistry.get(uid).map(|ts| format!("{} ({uid})", ts.name())).unwrap_or_else(|| uid.to_string())
}

/// Decode frame `frame` of a file: Modality LUT, then `window`, MONOCHROME1 inverted.
pub fn read_frame(path: &Path, frame: u32, window: Window, max_pixels: u64) -> Result<Image2d> {
    read_frame_of(&open(path)?, path, frame, window, max_pixels)
}

/// `read_frame` for an object already open (`path` names it in errors).
pub fn read_frame_of(
    obj: &DefaultDicomObject,
    path: &Path,
    frame: u32,
    window: Window,
    max_pixels: u64,
) -> Result<Image2d> {
    let inf = info(obj);
    if !inf.has_pixel_data {
        return Err(Error::decode(path, "DICOM file has no Pixel Data (not an image)"));
    }
    for (tag, name, v) in [("(0028,0010)", "Rows", inf.rows), ("(0028,0011)", "Columns", inf.columns)] {
        if v == 0 {
            return Err(Error::decode(path, format!("DICOM {name} {tag} is 0: an image needs at least one")));
        }
    }
    // Bits Allocated / Stored / High Bit must describe a sample the decoder can hold: the pixel decoder asserts
    // (panics) on 0 bits stored and builds a 2^bits-entry lookup table, so these are checked here, by name.
    let ba = inf.bits_allocated;
    let bs = int_of(obj, tags::BITS_STORED).unwrap_or(ba as i64);
    let hb = int_of(obj, tags::HIGH_BIT).unwrap_or(bs - 1);
    if ![1, 8, 16, 32, 64].contains(&ba) {
        return Err(Error::unsupported(
            path,
            format!("DICOM Bits Allocated (0028,0100) {ba} (medpick reads 1, 8, 16, 32, 64)"),
        ));
    }
    if bs < 1 || bs > ba as i64 {
        return Err(Error::decode(
            path,
            format!("DICOM Bits Stored (0028,0101) {bs} is not between 1 and Bits Allocated ({ba})"),
        ));
    }
    if hb < bs - 1 || hb >= ba as i64 {
        return Err(Error::decode(
            path,
            format!("DICOM High Bit (0028,0102) {hb} does not fit {bs} bits stored in {ba} allocated"),
        ));
    }
    check_size(
        path,
        "DICOM image",
        &[inf.columns as u64, inf.rows as u64, inf.frames as u64],
        super::volume_cap(max_pixels),
    )?;
    check_size(path, "DICOM frame", &[inf.columns as u64, inf.rows as u64], max_pixels)?;
    if frame >= inf.frames {
        return Err(Error::Invalid(format!(
            "{}: frame {frame} requested, the file has {}",
            path.display(),
            inf.frames
        )));
    }
    {
        use dicom_encoding::TransferSyntaxIndex;
        let reg = dicom_transfer_syntax_registry::TransferSyntaxRegistry;
        match reg.get(&inf.transfer_syntax) {
            None => {
                return Err(Error::unsupported(path, format!("unknown transfer syntax {}", inf.transfer_syntax)));
            }
            Some(ts) if !ts.can_decode_all() && !ts.is_codec_free() => {
                return Err(Error::unsupported(
                    path,
                    format!("transfer syntax {} cannot be decoded by this build", ts_name(&inf.transfer_syntax)),
                ));
            }
            _ => {}
        }
    }
    if inf.bits_allocated == 1 {
        return read_bitmap_frame(obj, path, &inf, frame);
    }
    let decoded = obj.decode_pixel_data_frame(frame).map_err(|e| {
        Error::unsupported(path, format!("cannot decode pixel data ({}): {e}", ts_name(&inf.transfer_syntax)))
    })?;
    let (w, h) = (decoded.columns(), decoded.rows());
    let spp = decoded.samples_per_pixel();
    if spp == 3 {
        // Colour: 8-bit RGB as stored (YBR is converted to RGB by the decoder).
        let v: Vec<u8> = decoded
            .to_vec_frame::<u8>(0)
            .map_err(|e| Error::decode(path, format!("cannot convert colour pixel data: {e}")))?;
        if v.len() != (w * h * 3) as usize {
            return Err(Error::decode(path, format!("pixel data holds {} values, expected {}", v.len(), w * h * 3)));
        }
        return Ok(Image2d { width: w, height: h, channels: 3, pixels: Pixels::U8(v) });
    }
    if spp != 1 {
        return Err(Error::unsupported(path, format!("{spp} samples per pixel")));
    }
    let values: Vec<f32> =
        decoded.to_vec_frame::<f32>(0).map_err(|e| Error::decode(path, format!("cannot convert pixel data: {e}")))?;
    if values.len() != (w * h) as usize {
        return Err(Error::decode(path, format!("pixel data holds {} values, expected {}x{}", values.len(), w, h)));
    }
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::decode(
            path,
            format!("pixel {at} is {} after Rescale Slope/Intercept: medpick refuses NaN/Inf intensities", values[at]),
        ));
    }
    let (lo, hi) = window_range(&values, window, inf.voi_window);
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(Error::decode(
            path,
            format!("the intensity window {lo}..{hi} is not finite (Window Center/Width?)"),
        ));
    }
    let mut out = apply_linear(&values, lo, hi);
    if inf.photometric.as_deref() == Some("MONOCHROME1") {
        for v in &mut out {
            *v = 1.0 - *v;
        }
    }
    Ok(Image2d { width: w, height: h, channels: 1, pixels: Pixels::F32(out) })
}

/// 1-bit pixel data (DICOM SEG, overlays): frames packed back to back, least significant bit first; values
/// 0/1 as they are (no window).
fn read_bitmap_frame(obj: &DefaultDicomObject, path: &Path, inf: &DicomInfo, frame: u32) -> Result<Image2d> {
    let el = obj.element(tags::PIXEL_DATA).map_err(|e| Error::decode(path, format!("no Pixel Data: {e}")))?;
    let bytes = el.to_bytes().map_err(|e| Error::unsupported(path, format!("encapsulated 1-bit pixel data: {e}")))?;
    let n = inf.rows as usize * inf.columns as usize;
    let start = frame as usize * n;
    if (start + n).div_ceil(8) > bytes.len() {
        return Err(Error::decode(
            path,
            format!("1-bit pixel data holds {} bytes, frame {frame} needs {}", bytes.len(), (start + n).div_ceil(8)),
        ));
    }
    let v: Vec<f32> = (start..start + n).map(|i| ((bytes[i / 8] >> (i % 8)) & 1) as f32).collect();
    Ok(Image2d { width: inf.columns, height: inf.rows, channels: 1, pixels: Pixels::F32(v) })
}

/// Modality values (Rescale Slope/Intercept applied: HU for CT) of one frame of a single-channel file.
pub fn read_modality_values(path: &Path, frame: u32) -> Result<(u32, u32, Vec<f32>)> {
    let obj = open(path)?;
    let decoded = obj
        .decode_pixel_data_frame(frame)
        .map_err(|e| Error::unsupported(path, format!("cannot decode pixel data: {e}")))?;
    let v: Vec<f32> =
        decoded.to_vec_frame::<f32>(0).map_err(|e| Error::decode(path, format!("cannot convert pixel data: {e}")))?;
    Ok((decoded.columns(), decoded.rows(), v))
}

/// The (lo, hi) input range of a window for these values.
pub fn window_range(values: &[f32], window: Window, voi: Option<(f64, f64)>) -> (f64, f64) {
    match window {
        Window::Fixed { center, width } => fixed_range(center, width),
        Window::File => match voi {
            Some((c, w)) => fixed_range(c, w),
            None => percentile_range(values, 0.5, 99.5),
        },
        Window::Percentile { low, high } => percentile_range(values, low, high),
    }
}

/// Rescale slope and intercept as stored (1, 0 when absent).
pub fn rescale(path: &Path) -> Result<(f64, f64)> {
    let obj = open(path)?;
    let slope = floats_of(&obj, tags::RESCALE_SLOPE).and_then(|v| v.first().copied()).unwrap_or(1.0);
    let intercept = floats_of(&obj, tags::RESCALE_INTERCEPT).and_then(|v| v.first().copied()).unwrap_or(0.0);
    Ok((slope, intercept))
}

/// Sort key of a slice within its series: position along the slice normal, else instance number.
pub fn slice_key(inf: &DicomInfo) -> Option<f64> {
    if let (Some(p), Some(o)) = (inf.position, inf.orientation) {
        let n = [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]];
        return Some(p[0] * n[0] + p[1] * n[1] + p[2] * n[2]);
    }
    if let Some(p) = inf.position {
        return Some(p[2]);
    }
    inf.instance_number.map(|i| i as f64)
}

/// Check a sorted series for missing slices. `keys` are positions along the normal (mm) or instance numbers.
/// Returns the index after which a slice is missing and the gap, if any.
pub fn find_gap(keys: &[f64], by_position: bool) -> Option<(usize, f64, f64)> {
    if keys.len() < 3 {
        return None;
    }
    let mut gaps: Vec<f64> = keys.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let mut sorted = gaps.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = sorted[sorted.len() / 2];
    let expected = if by_position { median } else { 1.0 };
    if expected <= 0.0 {
        return None;
    }
    let (i, g) = gaps.drain(..).enumerate().max_by(|a, b| a.1.total_cmp(&b.1))?;
    (g > 1.5 * expected).then_some((i, g, expected))
}

/// True for `.dcm`/`.dicom`/`.ima` files, and for extension-less files that start with a DICOM preamble.
pub fn is_dicom_path(p: &Path) -> bool {
    if p.extension().is_some() {
        return is_dicom(p, &[]);
    }
    use std::io::Read;
    let mut buf = [0u8; 132];
    std::fs::File::open(p).and_then(|mut f| f.read_exact(&mut buf)).is_ok() && is_dicom(p, &buf)
}

/// `is_dicom_path` for a file whose first bytes (`head`, at least 132 to see the preamble) are in memory.
pub fn is_dicom(p: &Path, head: &[u8]) -> bool {
    let ext = p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("dcm") | Some("dicom") | Some("ima") => true,
        None => head.len() >= 132 && &head[128..132] == b"DICM",
        _ => false,
    }
}
