//! 2-D images through the `image` crate: PNG (8/16-bit grey, grey+alpha, RGB, RGBA), JPEG, TIFF, BMP.
//! Alpha is dropped (as PIL's `convert("RGB")` does); grey stays 1 channel.

use std::path::Path;

use image::{DynamicImage, ImageReader};

use super::{check_size, Image2d, Pixels};
use crate::{Error, Result};

/// File extensions handled as 2-D images (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff", "bmp"];

pub fn is_image_path(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Decode an image file, refusing headers larger than `max_pixels` before decoding.
pub fn decode_image_file(path: &Path, max_pixels: u64) -> Result<Image2d> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_image_bytes(path, &bytes, max_pixels)
}

/// Decode image bytes (`path` only names the source in errors and gives the format hint).
pub fn decode_image_bytes(path: &Path, bytes: &[u8], max_pixels: u64) -> Result<Image2d> {
    if bytes.is_empty() {
        return Err(Error::decode(path, "empty file (0 bytes)"));
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::decode(path, format!("cannot detect the image format: {e}")))?;
    if reader.format().is_none() {
        return Err(Error::decode(path, "not a PNG, JPEG, TIFF or BMP image"));
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_has_end(bytes) {
        // The JPEG decoder fills a cut-short scan with grey and reports success: refuse it instead.
        return Err(Error::decode(path, "truncated JPEG: the data ends before the image's end marker (FF D9)"));
    }
    let (w, h) = reader.into_dimensions().map_err(|e| image_error(path, e))?;
    check_size(path, "image", &[w as u64, h as u64], max_pixels)?;
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::decode(path, e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(max_pixels.saturating_mul(16));
    reader.limits(limits);
    let img = reader.decode().map_err(|e| image_error(path, e))?;
    Ok(from_dynamic(img))
}

/// The image crate's error in medpick's words: a valid file of a kind medpick does not read is "unsupported", not
/// "corrupt"; a file past the decoder's limits names the cap.
fn image_error(path: &Path, e: image::ImageError) -> Error {
    use image::ImageError as E;
    match e {
        E::Unsupported(u) => Error::unsupported(path, format!("{u}")),
        E::Limits(l) => {
            Error::decode(path, format!("over the decoder's memory limit for this size cap ({l}): raise --max-pixels"))
        }
        E::IoError(io) => Error::decode(path, format!("truncated or unreadable image data: {io}")),
        other => Error::decode(path, format!("corrupt or truncated image: {other}")),
    }
}

/// Whether a JPEG's last scan (the last start-of-scan marker FF DA) is followed by the end-of-image marker FF D9.
/// Inside entropy-coded data an FF byte is always followed by 00 or a restart marker, so neither marker can
/// appear there; an EXIF thumbnail's markers come before the main scan.
pub fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last = |m: u8| bytes.windows(2).rposition(|w| w == [0xff, m]);
    match (last(0xda), last(0xd9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        (None, Some(_)) => true,
        _ => false,
    }
}

fn from_dynamic(img: DynamicImage) -> Image2d {
    let (width, height) = (img.width(), img.height());
    let (channels, pixels) = match img {
        DynamicImage::ImageLuma8(b) => (1, Pixels::U8(b.into_raw())),
        DynamicImage::ImageLumaA8(b) => (1, Pixels::U8(b.into_raw().chunks_exact(2).map(|p| p[0]).collect())),
        DynamicImage::ImageRgb8(b) => (3, Pixels::U8(b.into_raw())),
        DynamicImage::ImageRgba8(b) => {
            (3, Pixels::U8(b.into_raw().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()))
        }
        DynamicImage::ImageLuma16(b) => (1, Pixels::U16(b.into_raw())),
        DynamicImage::ImageLumaA16(b) => (1, Pixels::U16(b.into_raw().chunks_exact(2).map(|p| p[0]).collect())),
        DynamicImage::ImageRgb16(b) => (3, Pixels::U16(b.into_raw())),
        DynamicImage::ImageRgba16(b) => {
            (3, Pixels::U16(b.into_raw().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()))
        }
        other => (3, Pixels::U8(other.to_rgb8().into_raw())),
    };
    Image2d { width, height, channels, pixels }
}

/// Width and height from the header only (cheap; for listing).
pub fn image_dimensions(path: &Path) -> Result<(u32, u32)> {
    ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::decode(path, e.to_string()))?
        .into_dimensions()
        .map_err(|e| Error::decode(path, format!("corrupt or truncated image header: {e}")))
}

/// Encode an 8-bit grey image (row-major) as PNG bytes.
pub fn encode_png_gray(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let img = image::GrayImage::from_raw(width, height, pixels.to_vec())
        .ok_or_else(|| Error::Invalid(format!("png: {} pixels for {width}x{height}", pixels.len())))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(|e| Error::Invalid(format!("png: {e}")))?;
    Ok(out.into_inner())
}
