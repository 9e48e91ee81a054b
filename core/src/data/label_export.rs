//! Labels made in the browser, written in the layout the CLI reads and read back: a zip with `masks/<name>.png`
//! (0/255, at the image's size, named like the image so that `masks/` beside the dataset's `images/` pairs them)
//! and `labels.csv` (`id,label`, the format of `medpick train --task cls --labels`). Import takes such a zip,
//! its files one by one, or MONAI Label's `labels/final/` files (named like the image), and checks every mask
//! against its image's size.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use crate::data::io::image2d::is_image_path;
use crate::data::io::image2d::{decode_image_bytes, encode_png_gray};
use crate::data::io::DEFAULT_MAX_PIXELS;
use crate::data::manifest::foreground;
use crate::train::labelled::MaskLabel;
use crate::{Error, Result};

/// The name an id's key is matched by: the id without a leading `images/` and without its extension.
fn key_of_id(id: &str) -> String {
    let rest = id.strip_prefix("images/").unwrap_or(id);
    strip_ext(rest)
}

fn strip_ext(p: &str) -> String {
    let lower = p.to_ascii_lowercase();
    if lower.ends_with(".nii.gz") {
        return p[..p.len() - 7].to_string();
    }
    match p.rfind('.') {
        Some(i) if !p[i..].contains('/') => p[..i].to_string(),
        _ => p.to_string(),
    }
}

fn stem(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Where an id's mask goes in the export: `masks/` + the id without `images/`, as a PNG. Samples inside a file
/// (a volume's slice, a DICOM frame: ids with `#`) have no such file yet.
pub fn mask_file_name(id: &str) -> Result<String> {
    if id.contains('#') {
        return Err(Error::Invalid(format!(
            "{id}: a mask of one slice of a volume cannot be exported yet (2-D images only)"
        )));
    }
    Ok(format!("masks/{}.png", key_of_id(id)))
}

/// The export: masks as 0/255 PNGs, class labels as `labels.csv`, and a README naming the layout.
pub fn export_zip(masks: &[MaskLabel], classes: &[(String, String)]) -> Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let zerr = |e: zip::result::ZipError| Error::Invalid(format!("writing the export: {e}"));
    let ioerr = |e: std::io::Error| Error::io("export.zip", e);
    let mut names = HashMap::new();
    for m in masks {
        let name = mask_file_name(&m.id)?;
        if let Some(other) = names.insert(name.clone(), m.id.clone()) {
            return Err(Error::Invalid(format!("{} and {other} would both be exported as {name}", m.id)));
        }
        let px: Vec<u8> = m.mask.iter().map(|&v| if v != 0 { 255 } else { 0 }).collect();
        let png = encode_png_gray(&px, m.width as u32, m.height as u32)?;
        zw.start_file(name, opts).map_err(zerr)?;
        zw.write_all(&png).map_err(ioerr)?;
    }
    if !classes.is_empty() {
        let csv = crate::csv::to_string(
            std::iter::once(["id".to_string(), "label".to_string()])
                .chain(classes.iter().map(|(id, c)| [id.clone(), c.clone()])),
        );
        zw.start_file("labels.csv", opts).map_err(zerr)?;
        zw.write_all(csv.as_bytes()).map_err(ioerr)?;
    }
    zw.start_file("README.txt", opts).map_err(zerr)?;
    zw.write_all(README.as_bytes()).map_err(ioerr)?;
    Ok(zw.finish().map_err(zerr)?.into_inner())
}

const README: &str = "Labels made with medpick in the browser.\n\
masks/: one 0/255 PNG per annotated image, at the image's size, named like the image. Put masks/ beside the\n\
dataset's images/ folder and `medpick train --task seg --dataset DIR` trains on exactly these images.\n\
labels.csv: id,label for classification (`medpick train --task cls --features F --labels labels.csv`).\n";

/// What an import found: masks and class labels for known images, and what was refused, by file.
#[derive(Debug, Default)]
pub struct Imported {
    pub masks: Vec<MaskLabel>,
    pub classes: Vec<(String, String)>,
    /// (file, why) for every file or row not imported.
    pub problems: Vec<(String, String)>,
}

/// Read labels from `files` ((name, bytes): a medpick export zip, its files, or MONAI Label's `labels/final/`
/// files) for the images `images` ((id, width, height)). A mask is matched to the image whose id (without
/// `images/` and extension) equals its path below `masks/` or `labels/final/`, else to the one image with its
/// file stem; a mask of another size, an undecodable file, an unknown id or an empty class is refused by name.
pub fn import_files(files: &[(String, Vec<u8>)], images: &[(String, usize, usize)]) -> Imported {
    let mut out = Imported::default();
    let mut flat: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, bytes) in files {
        if name.to_ascii_lowercase().ends_with(".zip") {
            match unzip(bytes) {
                Ok(entries) => flat.extend(entries.into_iter().map(|(n, b)| (format!("{name}/{n}"), b))),
                Err(e) => out.problems.push((name.clone(), format!("not a readable zip: {e}"))),
            }
        } else {
            flat.push((name.clone(), bytes.clone()));
        }
    }
    let keys: Vec<String> = images.iter().map(|(id, ..)| key_of_id(id)).collect();
    let by_key: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let mut by_stem: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        by_stem.entry(stem(k)).or_default().push(i);
    }
    let known: HashMap<&str, usize> = images.iter().enumerate().map(|(i, (id, ..))| (id.as_str(), i)).collect();
    let mut seen_mask = HashMap::new();
    for (name, bytes) in &flat {
        let base = name.rsplit('/').next().unwrap_or(name);
        let lower = base.to_ascii_lowercase();
        if base.starts_with('.') || lower == "readme.txt" {
            continue;
        }
        if lower.ends_with(".csv") {
            match crate::csv::parse_labels(Path::new(name), bytes) {
                Ok(m) => {
                    let mut rows: Vec<_> = m.into_iter().collect();
                    rows.sort();
                    for (id, label) in rows {
                        if !known.contains_key(id.as_str()) {
                            out.problems.push((name.clone(), format!("id `{id}` is not an image of this pool")));
                        } else if label.trim().is_empty() {
                            out.problems.push((name.clone(), format!("id `{id}`: empty class name")));
                        } else {
                            out.classes.push((id, label));
                        }
                    }
                }
                Err(e) => out.problems.push((name.clone(), e.to_string())),
            }
            continue;
        }
        if !is_image_path(Path::new(base)) {
            out.problems.push((name.clone(), "neither a mask image nor a labels CSV".into()));
            continue;
        }
        let below = ["masks/", "labels/final/", "labels/original/"]
            .iter()
            .find_map(|d| name.find(d).map(|i| &name[i + d.len()..]))
            .unwrap_or(base);
        let key = strip_ext(below);
        let target = by_key.get(key.as_str()).copied().or_else(|| match by_stem.get(stem(&key)).map(Vec::as_slice) {
            Some([one]) => Some(*one),
            _ => None,
        });
        let Some(i) = target else {
            out.problems.push((name.clone(), format!("no image of this pool is named `{key}`")));
            continue;
        };
        let (id, w, h) = &images[i];
        let img = match decode_image_bytes(Path::new(name), bytes, DEFAULT_MAX_PIXELS) {
            Ok(img) => img,
            Err(e) => {
                out.problems.push((name.clone(), e.to_string()));
                continue;
            }
        };
        if (img.width as usize, img.height as usize) != (*w, *h) {
            out.problems
                .push((name.clone(), format!("mask is {}x{} but its image {id} is {w}x{h}", img.width, img.height)));
            continue;
        }
        if let Some(prev) = seen_mask.insert(i, name.clone()) {
            out.problems.push((name.clone(), format!("a second mask for {id} (the first: {prev})")));
            continue;
        }
        // 0/255 masks (medpick's, most tools') above half range; 0/1 label maps (MONAI Label's) above 0.
        let values = img.first_channel_u32();
        let fg = if values.iter().all(|&v| v <= 1) {
            values.iter().map(|&v| v as u8).collect()
        } else {
            foreground(&img, false)
        };
        if fg.iter().all(|&v| v == 0) {
            out.problems.push((name.clone(), format!("no foreground pixel: an empty mask is not imported over {id}")));
            continue;
        }
        match MaskLabel::new(id, *w, *h, fg) {
            Ok(m) => out.masks.push(m),
            Err(e) => out.problems.push((name.clone(), e.to_string())),
        }
    }
    out
}

fn unzip(bytes: &[u8]) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| e.to_string())?;
        if f.is_dir() {
            continue;
        }
        total += f.size();
        if total > 4 << 30 {
            return Err("more than 4 GiB uncompressed".into());
        }
        let name = f
            .enclosed_name()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .ok_or("an entry's name leaves the archive")?;
        let mut b = Vec::with_capacity(f.size().min(1 << 28) as usize);
        f.read_to_end(&mut b).map_err(|e| format!("{name}: {e}"))?;
        out.push((name, b));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(id: &str, w: usize, h: usize, seed: u8) -> MaskLabel {
        MaskLabel::new(id, w, h, (0..w * h).map(|i| ((i * seed as usize) % 3 == 0) as u8).collect()).unwrap()
    }

    #[test]
    fn an_export_imports_back_to_the_same_labels() {
        let masks = vec![mask("images/a.png", 5, 4, 7), mask("images/sub/b.jpg", 3, 3, 11)];
        let classes = vec![("images/a.png".to_string(), "tumour".to_string())];
        let zip = export_zip(&masks, &classes).unwrap();
        let images = vec![("images/a.png".to_string(), 5, 4), ("images/sub/b.jpg".to_string(), 3, 3)];
        let got = import_files(&[("labels.zip".into(), zip)], &images);
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        assert_eq!(got.masks.len(), 2);
        for (g, w) in got.masks.iter().zip(&masks) {
            assert_eq!((&g.id, &g.mask), (&w.id, &w.mask));
        }
        assert_eq!(got.classes, classes);
    }

    #[test]
    fn wrong_sizes_unknown_names_and_corrupt_files_are_refused_by_name() {
        let zip = export_zip(&[mask("images/a.png", 5, 4, 7)], &[]).unwrap();
        let images = vec![("images/a.png".to_string(), 6, 4)];
        let csv = b"id,label\nimages/a.png,\nimages/zz.png,x\n".to_vec();
        let files = vec![
            ("labels.zip".to_string(), zip.clone()),
            ("broken.zip".to_string(), zip[..zip.len() / 2].to_vec()),
            ("labels/final/nobody.png".to_string(), b"junk".to_vec()),
            ("labels.csv".to_string(), csv),
        ];
        let got = import_files(&files, &images);
        assert!(got.masks.is_empty() && got.classes.is_empty());
        let text = format!("{:?}", got.problems);
        assert!(text.contains("mask is 5x4 but its image images/a.png is 6x4"), "{text}");
        assert!(text.contains("broken.zip"), "{text}");
        assert!(text.contains("no image of this pool is named `nobody`"), "{text}");
        assert!(text.contains("`images/zz.png` is not an image of this pool"), "{text}");
    }

    #[test]
    fn label_maps_of_0_and_1_import_as_masks_and_empty_masks_are_refused() {
        let ones = encode_png_gray(&[0, 1, 1, 0, 0, 1], 3, 2).unwrap();
        let empty = encode_png_gray(&[0; 6], 3, 2).unwrap();
        let images = vec![("images/a.png".to_string(), 3, 2), ("images/b.png".to_string(), 3, 2)];
        let files = vec![("labels/final/a.png".to_string(), ones), ("labels/final/b.png".to_string(), empty)];
        let got = import_files(&files, &images);
        assert_eq!(got.masks.len(), 1);
        assert_eq!(got.masks[0].mask, vec![0, 1, 1, 0, 0, 1]);
        assert!(format!("{:?}", got.problems).contains("no foreground pixel"), "{:?}", got.problems);
    }

    #[test]
    fn slices_of_volumes_are_not_exported_as_if_they_were_files() {
        let m = mask("ct.nii.gz#axial:3", 2, 2, 3);
        assert!(export_zip(&[m], &[]).unwrap_err().to_string().contains("2-D images only"));
        assert_eq!(mask_file_name("images/x/y.tif").unwrap(), "masks/x/y.png");
    }
}
