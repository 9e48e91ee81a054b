//! `medpick segment`: LiteMedSAM's box-prompt segmentation of one image.

use anyhow::{Context, Result};

use crate::open_device;

pub fn segment(
    image: &std::path::Path,
    bbox: &str,
    out: Option<std::path::PathBuf>,
    sample: usize,
    weights: Option<std::path::PathBuf>,
    cpu: bool,
    force: bool,
) -> Result<bool> {
    use medpick_core::segment::Generalist;
    let [x0, y0, x1, y1] = medpick_core::segment::parse_box(bbox)?;
    let bytes = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
    let name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let decoded = medpick_core::upload::decode(&name, &bytes, medpick_core::io::Window::File)
        .map_err(|e| anyhow::anyhow!("{}: {e}", image.display()))?;
    let count = decoded.samples.len();
    let Some((id, img)) = decoded.samples.into_iter().nth(sample) else {
        anyhow::bail!("{}: --sample {sample}, but the file holds {count} 2-D samples", image.display())
    };
    Generalist::check_box([x0, y0, x1, y1], img.width as usize, img.height as usize)
        .map_err(|e| anyhow::anyhow!("{}: {e}", image.display()))?;
    let out = out.unwrap_or_else(|| {
        let stem = image.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
        std::path::PathBuf::from(format!("{stem}.mask.png"))
    });
    medpick_core::manifest::refuse_existing(&out, force)?;
    let path = match weights {
        Some(p) => p,
        None => medpick_core::io::weights::default_litemedsam_path()?,
    };
    let w = medpick_core::io::weights::read_weights(&path)?;
    let ctx = if cpu { None } else { open_device()? };
    let g = Generalist::load(ctx.as_ref(), &w)?;
    let t0 = std::time::Instant::now();
    let seg = pollster::block_on(g.segment_box(ctx.as_ref(), &img, [x0, y0, x1, y1]))?;
    let secs = t0.elapsed().as_secs_f64();
    let png: Vec<u8> = seg.mask.iter().map(|&v| v * 255).collect();
    let encoded = medpick_core::io::image2d::encode_png_gray(&png, seg.width as u32, seg.height as u32)?;
    let mut file = medpick_core::manifest::create_new(&out, force)?;
    use std::io::Write;
    file.write_all(&encoded)?;
    file.flush()?;
    let area = seg.area();
    println!(
        "{id}: mask of {area} pixels ({:.1}% of {}x{}), predicted IoU {:.3}, {:.1} s on {} -> {}",
        100.0 * area as f64 / (seg.width * seg.height) as f64,
        seg.width,
        seg.height,
        seg.iou_pred,
        secs,
        ctx.as_ref().map(|c| c.info.name.clone()).unwrap_or_else(|| "the CPU".into()),
        out.display()
    );
    Ok(true)
}
