//! Feature grids and masks: the grid's shape, layout changes (channels-first ↔ channels-last), the loss-row order
//! of the segmentation head's pixel shuffle, nearest-neighbour mask resizing and the 8 flips / rotations used for
//! augmentation. Shared by the head, its training loop and the pseudo-labels.

/// Channels and spatial size of a feature grid, stored channels-last [h, w, c].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GridShape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl GridShape {
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mean over positions of each channel of a grid [h, w, c].
    pub fn spatial_mean(&self, grid: &[f32]) -> Vec<f32> {
        let p = (self.h * self.w).max(1);
        (0..self.c).map(|c| ((0..p).map(|k| grid[k * self.c + c] as f64).sum::<f64>() / p as f64) as f32).collect()
    }

    /// The upsampling factor r that brings the grid to at least 256 pixels a side.
    pub fn default_scale(&self) -> usize {
        256usize.div_ceil(self.h.max(self.w).max(1))
    }
}

/// [h, w, c] → [c, h, w] (the inverse of `chw_to_hwc`).
pub fn hwc_to_chw(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut y = vec![0f32; c * h * w];
    for p in 0..h * w {
        for ch in 0..c {
            y[ch * h * w + p] = x[p * c + ch];
        }
    }
    y
}

/// [c, h, w] → [h, w, c].
pub fn chw_to_hwc(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut y = vec![0f32; c * h * w];
    for ch in 0..c {
        for p in 0..h * w {
            y[p * c + ch] = x[ch * h * w + p];
        }
    }
    y
}

/// A full-resolution mask [h·r, w·r] (non-zero = foreground) as one label per loss row (grid pixel, sub-pixel):
/// row (gy·w + gx)·r² + i·r + j holds pixel (gy·r + i, gx·r + j).
pub fn targets_from_mask(mask: &[u8], h: usize, w: usize, r: usize) -> Vec<u32> {
    let ow = w * r;
    let mut t = vec![0u32; h * w * r * r];
    for gy in 0..h {
        for gx in 0..w {
            for i in 0..r {
                for j in 0..r {
                    t[(gy * w + gx) * r * r + i * r + j] = (mask[(gy * r + i) * ow + gx * r + j] != 0) as u32;
                }
            }
        }
    }
    t
}

/// The inverse reordering: per-row values → an image [h·r, w·r].
pub fn image_from_rows(rows: &[f32], h: usize, w: usize, r: usize) -> Vec<f32> {
    let ow = w * r;
    let mut img = vec![0f32; h * w * r * r];
    for gy in 0..h {
        for gx in 0..w {
            for i in 0..r {
                for j in 0..r {
                    img[(gy * r + i) * ow + gx * r + j] = rows[(gy * w + gx) * r * r + i * r + j];
                }
            }
        }
    }
    img
}

/// Nearest-neighbour resize of a mask (pixel centres: source = ⌊(y + ½)·h / oh⌋).
pub fn resize_nearest_u8(src: &[u8], h: usize, w: usize, oh: usize, ow: usize) -> Vec<u8> {
    let mut out = vec![0u8; oh * ow];
    for y in 0..oh {
        let sy = (((y as f64 + 0.5) * h as f64 / oh as f64) as usize).min(h - 1);
        for x in 0..ow {
            let sx = (((x as f64 + 0.5) * w as f64 / ow as f64) as usize).min(w - 1);
            out[y * ow + x] = src[sy * w + sx];
        }
    }
    out
}

/// One of the 8 flips / 90° rotations of an image [h, w, c]: bit 2 transposes, bit 0 flips columns, bit 1 rows
/// (of the source). Returns the image and its (h, w).
pub fn dihedral<T: Copy>(src: &[T], h: usize, w: usize, c: usize, t: u32) -> (Vec<T>, usize, usize) {
    let (oh, ow) = if t & 4 != 0 { (w, h) } else { (h, w) };
    let mut out = Vec::with_capacity(src.len());
    for y in 0..oh {
        for x in 0..ow {
            let (mut a, mut b) = if t & 4 != 0 { (x, y) } else { (y, x) };
            if t & 1 != 0 {
                b = w - 1 - b;
            }
            if t & 2 != 0 {
                a = h - 1 - a;
            }
            out.extend_from_slice(&src[(a * w + b) * c..(a * w + b + 1) * c]);
        }
    }
    (out, oh, ow)
}
