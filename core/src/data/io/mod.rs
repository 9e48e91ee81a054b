//! Reading what users have: 2-D images (PNG 8/16-bit, JPEG, TIFF, BMP), NIfTI volumes sliced along an axis,
//! DICOM files and series, and MedMNIST `.npz` archives. Every reader works one file at a time (a dataset is
//! never held in memory), refuses oversized headers before allocating, and reports errors that name the file.
//!
//! All readers produce an [`Image2d`]: one 2-D plane, 1 or 3 channels, with its native sample type.

pub mod dicom;
mod dicom_lengths;
pub mod image2d;
pub mod nifti;
pub mod npz;
pub mod pth;
pub mod tensors;
pub mod walk;
pub mod weights;
pub mod window;

pub use image2d::decode_image_file;
pub use window::Window;

/// Default cap on the pixels of one 2-D image (`--max-pixels`): 67 M, an 8192 × 8192 image, about 0.9 GB at its
/// peak while decoded and converted. Checked against the header before anything is decoded or allocated.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 26;

/// The cap on the voxels of one volume (NIfTI, multi-frame DICOM) for a 2-D cap of `max_pixels`: four times it
/// (268 M voxels by default, e.g. 512 × 512 × 1024).
pub const fn volume_cap(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(4)
}

/// The samples of a 2-D plane, in their native type.
#[derive(Clone, Debug, PartialEq)]
pub enum Pixels {
    U8(Vec<u8>),
    U16(Vec<u16>),
    /// Already mapped to [0, 1] (windowed DICOM/NIfTI intensities).
    F32(Vec<f32>),
}

/// One 2-D image, row-major, channels interleaved (HWC). `channels` is 1 (grey) or 3 (RGB).
#[derive(Clone, Debug, PartialEq)]
pub struct Image2d {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub pixels: Pixels,
}

impl Image2d {
    /// The image as RGB in [0, 255] as f32, HWC. The documented mapping for every input kind:
    /// - 8-bit: values as they are; grey is replicated to 3 channels (as PIL's `convert("RGB")`).
    /// - 16-bit: linear rescale of the full range, v · 255 / 65535 (no windowing: 16-bit PNG/TIFF carry display
    ///   values); grey replicated.
    /// - f32 (windowed DICOM/NIfTI, already in [0, 1]): v · 255; grey replicated.
    pub fn to_rgb_f32_255(&self) -> Vec<f32> {
        let n = (self.width * self.height) as usize;
        let c = self.channels as usize;
        let get = |i: usize| -> f32 {
            match &self.pixels {
                Pixels::U8(v) => v[i] as f32,
                Pixels::U16(v) => v[i] as f32 * (255.0 / 65535.0),
                Pixels::F32(v) => v[i].clamp(0.0, 1.0) * 255.0,
            }
        };
        let mut out = Vec::with_capacity(n * 3);
        for p in 0..n {
            for ch in 0..3 {
                out.push(get(p * c + if c == 1 { 0 } else { ch }));
            }
        }
        out
    }

    /// The image as RGB u8, HWC: 8-bit as is, 16-bit rounded from v·255/65535, f32 rounded from v·255.
    /// Used where the reference pipeline works on uint8 (DINOv2's resize).
    pub fn to_rgb_u8(&self) -> Vec<u8> {
        match (&self.pixels, self.channels) {
            (Pixels::U8(v), 3) => v.clone(),
            _ => self.to_rgb_f32_255().into_iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect(),
        }
    }

    /// Per-pixel intensity for masks/label maps: the first channel as u32.
    pub fn first_channel_u32(&self) -> Vec<u32> {
        let c = self.channels as usize;
        let n = (self.width * self.height) as usize;
        match &self.pixels {
            Pixels::U8(v) => (0..n).map(|i| v[i * c] as u32).collect(),
            Pixels::U16(v) => (0..n).map(|i| v[i * c] as u32).collect(),
            Pixels::F32(v) => (0..n).map(|i| (v[i * c] * 255.0).round() as u32).collect(),
        }
    }
}

/// Check a header's claimed size against the cap before anything is allocated.
pub(crate) fn check_size(path: &std::path::Path, what: &'static str, dims: &[u64], cap: u64) -> crate::Result<()> {
    let total = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
    if total > cap {
        return Err(crate::Error::ImageTooLarge {
            path: path.display().to_string(),
            what,
            width: dims.first().copied().unwrap_or(0),
            height: dims.get(1).copied().unwrap_or(0),
            depth: dims.iter().skip(2).map(|d| format!("x{d}")).collect(),
            cap,
        });
    }
    Ok(())
}
