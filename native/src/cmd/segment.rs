//! `medpick segment`: LiteMedSAM's box-prompt segmentation of one image.

use anyhow::Result;

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
    let bx = medpick_core::segment::parse_box(bbox)?;
    medpick_core::manifest::protect_input(image);
    weights.iter().for_each(|w| medpick_core::manifest::protect_input(w));
    let out = out.unwrap_or_else(|| {
        let stem = image.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
        std::path::PathBuf::from(format!("{stem}.mask.png"))
    });
    medpick_core::manifest::refuse_existing(&out, force)?;
    let ctx = if cpu { None } else { open_device()? };
    let t0 = std::time::Instant::now();
    let run = medpick_core::segment::segment_file(ctx.as_ref(), image, bx, sample, weights.as_deref());
    let (id, seg) = pollster::block_on(run)?;
    let secs = t0.elapsed().as_secs_f64();
    let mut file = medpick_core::manifest::create_new(&out, force)?;
    use std::io::Write;
    file.write_all(&seg.to_png()?)?;
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
