//! Labels made in the browser, written in the layout the CLI reads and read back: a zip with `masks/<name>.png`
//! (0/255, at the image's size, named like the image so that `masks/` beside the dataset's `images/` pairs them),
//! a NIfTI volume's labelled slices as one label volume `masks/<name>.nii.gz` on the volume's grid (its header:
//! affine, voxel sizes) with their ids in `slices.csv`, and `labels.csv` (`id,label`, the format of `medpick
//! train --task cls --labels`). Import takes such a zip, its files one by one, or MONAI Label's `labels/final/`
//! files (named like the image, NIfTI label volumes included), and checks every mask against its image's size.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Cursor, Read, Write};
use std::path::Path;

use crate::data::io::image2d::is_image_path;
use crate::data::io::image2d::{decode_image_bytes, encode_png_gray};
use crate::data::io::nifti::{self, View, VolumeGrid};
use crate::data::io::DEFAULT_MAX_PIXELS;
pub use crate::data::label_volumes::Series;
use crate::data::label_volumes::{import_series, import_volume};
use crate::data::manifest::foreground;
use crate::train::labelled::MaskLabel;
use crate::{Error, Result};

/// The name an id's key is matched by: the id without a leading `images/` and without its extension.
pub(super) fn key_of_id(id: &str) -> String {
    let rest = id.strip_prefix("images/").unwrap_or(id);
    strip_ext(rest)
}

pub(super) fn strip_ext(p: &str) -> String {
    let lower = p.to_ascii_lowercase();
    if lower.ends_with(".nii.gz") {
        return p[..p.len() - 7].to_string();
    }
    match p.rfind('.') {
        Some(i) if !p[i..].contains('/') => p[..i].to_string(),
        _ => p.to_string(),
    }
}

pub(super) fn stem(key: &str) -> &str {
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

/// The file and the (view, slice) of a volume slice's id `<file>#<view>:<k>`.
fn slice_of(id: &str) -> Option<(&str, View, usize)> {
    let (file, rest) = id.split_once('#')?;
    let (view, k) = rest.split_once(':')?;
    Some((file, View::parse(view)?, k.parse().ok()?))
}

/// The export: masks as 0/255 PNGs, the labelled slices of each volume in `volumes` (its grid by file, the part
/// of its slices' ids before `#`) as one NIfTI label volume on that grid with their ids in `slices.csv`, class
/// labels as `labels.csv`, and a README naming the layout. Slices a volume's label holds that are not in
/// `slices.csv` were not labelled (they are 0 in the file).
pub fn export_zip(
    masks: &[MaskLabel],
    classes: &[(String, String)],
    volumes: &HashMap<String, VolumeGrid>,
    series: &[Series],
) -> Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let zerr = |e: zip::result::ZipError| Error::Invalid(format!("writing the export: {e}"));
    let ioerr = |e: std::io::Error| Error::io("export.zip", e);
    let mut names = HashMap::new();
    let mut per_volume: BTreeMap<&str, Vec<(View, usize, &MaskLabel)>> = BTreeMap::new();
    let in_series: HashMap<&str, (usize, usize)> = series
        .iter()
        .enumerate()
        .flat_map(|(s, se)| se.ids.iter().enumerate().map(move |(k, id)| (id.as_str(), (s, k))))
        .collect();
    let mut per_series: BTreeMap<usize, Vec<(usize, &MaskLabel)>> = BTreeMap::new();
    for m in masks {
        if let Some(&(s, k)) = in_series.get(m.id.as_str()) {
            per_series.entry(s).or_default().push((k, m));
            continue;
        }
        if let Some((file, view, k)) = slice_of(&m.id).filter(|(f, ..)| volumes.contains_key(*f)) {
            per_volume.entry(file).or_default().push((view, k, m));
            continue;
        }
        let name = mask_file_name(&m.id)?;
        if let Some(other) = names.insert(name.clone(), m.id.clone()) {
            return Err(Error::Invalid(format!("{} and {other} would both be exported as {name}", m.id)));
        }
        let px: Vec<u8> = m.mask.iter().map(|&v| if v != 0 { 255 } else { 0 }).collect();
        let png = encode_png_gray(&px, m.width as u32, m.height as u32)?;
        zw.start_file(name, opts).map_err(zerr)?;
        zw.write_all(&png).map_err(ioerr)?;
    }
    let mut slice_ids = Vec::new();
    for (file, slices) in &per_volume {
        let grid = &volumes[*file];
        let dims = grid.geom.dims;
        let mut data = vec![0u8; dims.iter().product()];
        for (view, k, m) in slices {
            let (w, h, vox) = grid
                .geom
                .slice_voxels(*view, *k)
                .ok_or_else(|| Error::Invalid(format!("{}: {file} has no such slice", m.id)))?;
            if (w, h) != (m.width, m.height) {
                return Err(Error::Invalid(format!(
                    "{}: a mask of {}x{} for a slice of {w}x{h}",
                    m.id, m.width, m.height
                )));
            }
            for (&v, &x) in vox.iter().zip(&m.mask) {
                data[v] = (x != 0) as u8;
            }
            slice_ids.push(m.id.clone());
        }
        let name = format!("masks/{}.nii.gz", key_of_id(file));
        if let Some(other) = names.insert(name.clone(), file.to_string()) {
            return Err(Error::Invalid(format!("{file} and {other} would both be exported as {name}")));
        }
        zw.start_file(name, opts).map_err(zerr)?;
        zw.write_all(&nifti::label_bytes(&grid.header, dims, &data, true)?).map_err(ioerr)?;
    }
    for (s, slices) in &per_series {
        let se = &series[*s];
        let (w, h, n) = (se.width, se.height, se.ids.len());
        let mut data = vec![0u8; w * h * n];
        for (k, m) in slices {
            if (m.width, m.height) != (w, h) {
                return Err(Error::Invalid(format!(
                    "{}: a mask of {}x{} for a slice of {w}x{h}",
                    m.id, m.width, m.height
                )));
            }
            for (v, &x) in data[k * w * h..(k + 1) * w * h].iter_mut().zip(&m.mask) {
                *v = (x != 0) as u8;
            }
            slice_ids.push(m.id.clone());
        }
        let name = format!("masks/{}.nii.gz", key_of_id(&se.key));
        if let Some(other) = names.insert(name.clone(), se.key.clone()) {
            return Err(Error::Invalid(format!("the series {} and {other} would both be exported as {name}", se.key)));
        }
        zw.start_file(name, opts).map_err(zerr)?;
        zw.write_all(&nifti::label_bytes(&se.header, [w, h, n], &data, true)?).map_err(ioerr)?;
    }
    if !slice_ids.is_empty() {
        let csv = crate::csv::to_string(std::iter::once(["id".to_string()]).chain(slice_ids.into_iter().map(|i| [i])));
        zw.start_file("slices.csv", opts).map_err(zerr)?;
        zw.write_all(csv.as_bytes()).map_err(ioerr)?;
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
masks/*.nii.gz: a NIfTI volume's (or a DICOM series') annotated slices as one label volume (0/1, uint8) on\n\
its grid and affine (a series: slice k is its k-th file along the normal); slices not annotated are 0 there.\n\
slices.csv lists the annotated slices' ids. For a NIfTI volume, train on those only with\n\
`medpick train --task seg --dataset DIR --labels slices.csv` (the CLI reads no masks of DICOM files).\n\
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
/// `volumes` and `series`: the grids of the pool's NIfTI volumes (by file) and its DICOM series, which a volume
/// label must match.
pub fn import_files(
    files: &[(String, Vec<u8>)],
    images: &[(String, usize, usize)],
    volumes_of: &HashMap<String, VolumeGrid>,
    series: &[Series],
) -> Imported {
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
    // The pool's volumes: each file's slices (image index, view, slice), by the file's key.
    let mut volumes: BTreeMap<&str, Vec<(usize, View, usize)>> = BTreeMap::new();
    for (i, (id, ..)) in images.iter().enumerate() {
        if let Some((file, view, k)) = slice_of(id) {
            volumes.entry(file).or_default().push((i, view, k));
        }
    }
    // Which slices an export says were annotated (its slices.csv); without one, a volume label's slices with
    // foreground are.
    let mut listed: HashSet<String> = HashSet::new();
    for (name, bytes) in &flat {
        if name.rsplit('/').next().is_some_and(|b| b.eq_ignore_ascii_case("slices.csv")) {
            match crate::csv::parse_rows(Path::new(name), bytes) {
                Ok(rows) => {
                    listed.extend(rows.into_iter().filter_map(|(_, c)| c.into_iter().next()).filter(|c| c != "id"))
                }
                Err(e) => out.problems.push((name.clone(), e.to_string())),
            }
        }
    }
    let mut seen_mask = HashMap::new();
    for (name, bytes) in &flat {
        let base = name.rsplit('/').next().unwrap_or(name);
        let lower = base.to_ascii_lowercase();
        if base.starts_with('.') || lower == "readme.txt" || lower == "slices.csv" {
            continue;
        }
        if nifti::is_nifti_path(Path::new(base)) {
            let key = strip_ext(below_dirs(name));
            let by_stem: Vec<&Series> = series.iter().filter(|se| stem(&key_of_id(&se.key)) == stem(&key)).collect();
            let se = series.iter().find(|se| key_of_id(&se.key) == key).or(match by_stem.as_slice() {
                [one] => Some(*one),
                _ => None,
            });
            match se {
                Some(se) => import_series(name, bytes, se, &known, &listed, &mut seen_mask, &mut out),
                None => import_volume(name, bytes, images, volumes_of, &volumes, &listed, &mut seen_mask, &mut out),
            }
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

/// A label file's path below the export's or MONAI Label's label folders (its file name when in none).
pub(super) fn below_dirs(name: &str) -> &str {
    ["masks/", "labels/final/", "labels/original/", "labels/"]
        .iter()
        .find_map(|d| name.find(d).map(|i| &name[i + d.len()..]))
        .unwrap_or_else(|| name.rsplit('/').next().unwrap_or(name))
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
    use crate::data::io::dicom::DicomInfo;

    fn mask(id: &str, w: usize, h: usize, seed: u8) -> MaskLabel {
        MaskLabel::new(id, w, h, (0..w * h).map(|i| (i * seed as usize).is_multiple_of(3) as u8).collect()).unwrap()
    }

    #[test]
    fn an_export_imports_back_to_the_same_labels() {
        let masks = vec![mask("images/a.png", 5, 4, 7), mask("images/sub/b.jpg", 3, 3, 11)];
        let classes = vec![("images/a.png".to_string(), "tumour".to_string())];
        let zip = export_zip(&masks, &classes, &HashMap::new(), &[]).unwrap();
        let images = vec![("images/a.png".to_string(), 5, 4), ("images/sub/b.jpg".to_string(), 3, 3)];
        let got = import_files(&[("labels.zip".into(), zip)], &images, &HashMap::new(), &[]);
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        assert_eq!(got.masks.len(), 2);
        for (g, w) in got.masks.iter().zip(&masks) {
            assert_eq!((&g.id, &g.mask), (&w.id, &w.mask));
        }
        assert_eq!(got.classes, classes);
    }

    #[test]
    fn wrong_sizes_unknown_names_and_corrupt_files_are_refused_by_name() {
        let zip = export_zip(&[mask("images/a.png", 5, 4, 7)], &[], &HashMap::new(), &[]).unwrap();
        let images = vec![("images/a.png".to_string(), 6, 4)];
        let csv = b"id,label\nimages/a.png,\nimages/zz.png,x\n".to_vec();
        let files = vec![
            ("labels.zip".to_string(), zip.clone()),
            ("broken.zip".to_string(), zip[..zip.len() / 2].to_vec()),
            ("labels/final/nobody.png".to_string(), b"junk".to_vec()),
            ("labels.csv".to_string(), csv),
        ];
        let got = import_files(&files, &images, &HashMap::new(), &[]);
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
        let got = import_files(&files, &images, &HashMap::new(), &[]);
        assert_eq!(got.masks.len(), 1);
        assert_eq!(got.masks[0].mask, vec![0, 1, 1, 0, 0, 1]);
        assert!(format!("{:?}", got.problems).contains("no foreground pixel"), "{:?}", got.problems);
    }

    #[test]
    fn slices_of_volumes_are_not_exported_as_if_they_were_files() {
        let m = mask("ct.nii.gz#axial:3", 2, 2, 3);
        assert!(export_zip(&[m], &[], &HashMap::new(), &[]).unwrap_err().to_string().contains("2-D images only"));
        assert_eq!(mask_file_name("images/x/y.tif").unwrap(), "masks/x/y.png");
    }

    /// A volume's annotated slices export as one NIfTI label on the volume's grid (its affine, axes flipped in
    /// the header), with their ids in slices.csv, and import back to the same slices and pixels; a label of the
    /// wrong slice count is refused by name.
    #[test]
    fn a_volumes_slices_export_as_a_nifti_label_on_its_grid_and_import_back() {
        let dims = [6usize, 4, 5];
        let h = nifti::NiftiHeader {
            sform_code: 1,
            srow_x: [-0.7, 0.0, 0.0, 3.0],
            srow_y: [0.0, 0.0, 1.5, -2.0],
            srow_z: [0.0, -1.2, 0.0, 9.0],
            pixdim: [1.0, 0.7, 1.2, 1.5, 1.0, 1.0, 1.0, 1.0],
            ..nifti::NiftiHeader::default()
        };
        let img: Vec<u8> = (0..120).map(|i| (i * 7 % 11) as u8).collect();
        let bytes = nifti::label_bytes(&h, dims, &img, true).unwrap();
        let p = Path::new("images/ct.nii.gz");
        let d = crate::upload::decode("images/ct.nii.gz", &bytes, crate::io::Window::File).unwrap();
        let grid = d.volume.clone().unwrap();
        let images: Vec<(String, usize, usize)> =
            d.samples.iter().map(|(id, im)| (id.clone(), im.width as usize, im.height as usize)).collect();
        assert_eq!(images.len(), 4, "axial slices run along the voxel y axis here");
        let (w, hh) = (images[0].1, images[0].2);
        let picked = [&images[1].0, &images[3].0];
        let masks: Vec<MaskLabel> = picked.iter().enumerate().map(|(s, id)| mask(id, w, hh, 5 + s as u8)).collect();
        let vols = HashMap::from([("images/ct.nii.gz".to_string(), grid.clone())]);
        let zip = export_zip(&masks, &[], &vols, &[]).unwrap();
        let entries = unzip(&zip).unwrap();
        let label = &entries.iter().find(|(n, _)| n == "masks/ct.nii.gz").expect("a NIfTI label").1;
        let back = nifti::read_volume_bytes(p, label, 0, 1 << 20).unwrap();
        assert_eq!((back.dims, back.directions), (dims, grid.geom.directions), "the volume's grid and affine");
        let got = import_files(&[("labels.zip".into(), zip.clone())], &images, &HashMap::new(), &[]);
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        assert_eq!(got.masks.len(), 2);
        for (g, m) in got.masks.iter().zip(&masks) {
            assert_eq!((&g.id, &g.mask), (&m.id, &m.mask));
        }
        // MONAI Label's file alone (no slices.csv): the slices with foreground.
        let got = import_files(&[("labels/final/ct.nii.gz".into(), label.clone())], &images, &HashMap::new(), &[]);
        assert_eq!(
            got.masks.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            vec![picked[0].as_str(), picked[1].as_str()]
        );
        // Another volume's grid: refused, naming both counts.
        let other = nifti::label_bytes(&h, [6, 3, 5], &[0; 90], true).unwrap();
        let got = import_files(&[("masks/ct.nii.gz".into(), other)], &images, &HashMap::new(), &[]);
        assert!(got.masks.is_empty());
        assert!(
            format!("{:?}", got.problems).contains("the label has 3 axial slices, its volume images/ct.nii.gz 4"),
            "{:?}",
            got.problems
        );
    }

    /// A DICOM series' annotated slices export as one NIfTI label (slice k = the k-th file along the normal,
    /// whatever the files' order) whose affine puts voxels where DICOM puts the pixels, and import back.
    #[test]
    fn a_dicom_series_exports_as_one_nifti_label_with_its_geometry_and_imports_back() {
        let info = |z: f64| DicomInfo {
            series_uid: Some("1.2.3".into()),
            position: Some([-100.0, -80.0, z]),
            orientation: Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            rows: 3,
            columns: 4,
            frames: 1,
            pixel_spacing: Some([0.5, 0.75]),
            has_pixel_data: true,
            ..DicomInfo::default()
        };
        // Files in shuffled order; the series runs z = 10, 12.5, 15.
        let files = vec![
            ("images/ct/b.dcm".to_string(), info(15.0)),
            ("images/ct/a.dcm".to_string(), info(10.0)),
            ("images/ct/c.dcm".to_string(), info(12.5)),
        ];
        let series = Series::group(files);
        assert_eq!(series.len(), 1);
        let se = &series[0];
        assert_eq!(
            (se.key.as_str(), se.ids.clone()),
            ("images/ct", vec!["images/ct/a.dcm".into(), "images/ct/c.dcm".into(), "images/ct/b.dcm".into()])
        );
        let m = mask("images/ct/c.dcm", 4, 3, 5);
        let zip = export_zip(std::slice::from_ref(&m), &[], &HashMap::new(), &series).unwrap();
        let entries = unzip(&zip).unwrap();
        let label = &entries.iter().find(|(n, _)| n == "masks/ct.nii.gz").expect("the series' label").1;
        let h = nifti::header_bytes(Path::new("ct.nii.gz"), label).unwrap();
        // Voxel (i, j, k) → RAS: x = −(−100 + 0.75 i), y = −(−80 + 0.5 j), z = 10 + 2.5 k.
        assert_eq!(
            (h.srow_x, h.srow_y, h.srow_z),
            ([-0.75, 0.0, 0.0, 100.0], [0.0, -0.5, 0.0, 80.0], [0.0, 0.0, 2.5, 10.0])
        );
        let v = nifti::read_volume_bytes(Path::new("ct.nii.gz"), label, 0, 1 << 20).unwrap();
        assert_eq!(v.dims, [4, 3, 3]);
        let want: Vec<f32> = (0..36).map(|i| if (12..24).contains(&i) { m.mask[i - 12] as f32 } else { 0.0 }).collect();
        assert_eq!(v.data, want, "slice 1 (the middle file) holds the mask, row-major as drawn");
        let images: Vec<(String, usize, usize)> = se.ids.iter().map(|id| (id.clone(), 4, 3)).collect();
        let got = import_files(&[("labels.zip".into(), zip)], &images, &HashMap::new(), &series);
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        assert_eq!(got.masks.len(), 1);
        assert_eq!((&got.masks[0].id, &got.masks[0].mask), (&m.id, &m.mask));
    }
}
