//! The annotation loop in the tab: open a pick at full size, propose a mask for a drawn box (LiteMedSAM's
//! decoder on the image embedding already computed), train a head on the labels made, score the unlabelled pool
//! for the next batch, and export / import labels in the CLI's layout. Labels themselves live in the page
//! (saved to IndexedDB as they are made); every computation is medpick-core's, as in the CLI.

use medpick_core::select::{self, Matrix, SelectInput};
use medpick_core::train::heads::{ClsHeadFile, SegHeadFile};
use medpick_core::train::labelled::{self, MaskLabel};
use medpick_core::upload;
use medpick_core::Instant;
use serde::Deserialize;
use std::borrow::Cow;
use wasm_bindgen::prelude::*;

use super::{js_err, json, Session};

/// The head trained last in this tab.
pub(crate) enum Head {
    Seg(SegHeadFile),
    Cls(ClsHeadFile),
}

#[derive(Deserialize)]
struct MaskMeta {
    row: usize,
    width: usize,
    height: usize,
}

#[derive(Deserialize)]
struct ClassMeta {
    row: usize,
    label: String,
}

/// Image embeddings kept for images opened beyond the first pass's budget (the most recent; 256 MiB).
const EXTRA_GRIDS: usize = 64;

fn set(o: &js_sys::Object, k: &str, v: JsValue) {
    let _ = js_sys::Reflect::set(o, &JsValue::from_str(k), &v);
}

fn parse<'a, T: Deserialize<'a>>(what: &str, s: &'a str) -> Result<T, JsError> {
    serde_json::from_str(s).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

#[wasm_bindgen]
impl Session {
    /// Every row in the CLI's order (the order `select`'s `row` refers to): JSON
    /// `[{row, id, file, sample, width, height, grid}]`, `file` the path in the dropped folder, `grid` whether
    /// its image embedding is held (else `open_row` with the file's bytes computes it).
    pub fn rows(&self) -> String {
        let (places, _) = self.places();
        let doc: Vec<_> = places
            .iter()
            .enumerate()
            .map(|(i, &(f, r))| {
                let row = &self.files[f].rows[r];
                serde_json::json!({"row": i, "id": row.id, "file": self.files[f].rel, "sample": row.sample,
                    "width": row.width, "height": row.height, "grid": row.grid.is_some()})
            })
            .collect();
        json(&serde_json::json!(doc))
    }

    /// Whether the loaded model proposes masks for boxes (LiteMedSAM; DINOv2 sessions label classes only).
    pub fn can_segment(&self) -> bool {
        self.decoder.is_some()
    }

    /// Row `row` at full size as a PNG, decoded again from its file's `bytes`; computes and keeps the row's
    /// image embedding when the session did not keep it (a large pool), so boxes and training can use it.
    pub async fn open_row(&mut self, row: usize, bytes: Vec<u8>) -> Result<Vec<u8>, JsError> {
        let (places, _) = self.places();
        let &(f, r) = places.get(row).ok_or_else(|| JsError::new(&format!("no row {row}")))?;
        let img = self.decode_row(row, &bytes)?;
        if self.files[f].rows[r].grid.is_none() && self.decoder.is_some() {
            let enc = self.encoder.as_ref().ok_or_else(|| JsError::new("no model loaded"))?;
            let (_, grid) = enc.embed_with_grid(self.gpu.as_ref(), &img).await.map_err(js_err)?;
            self.files[f].rows[r].grid = grid;
            // Beyond the first pass's budget, the embeddings of the last EXTRA_GRIDS images opened are kept.
            self.extra.push_back((f, r));
            if self.extra.len() > EXTRA_GRIDS {
                if let Some((f0, r0)) = self.extra.pop_front() {
                    self.files[f0].rows[r0].grid = None;
                }
            }
        }
        upload::thumbnail_png(&img, img.width.max(img.height)).map_err(js_err)
    }

    /// LiteMedSAM's mask for the box (x0, y0, x1, y1 in the image's pixels) on row `row`'s image embedding:
    /// `{mask: Uint8Array (0/1, width × height), iou, area, ms}`.
    pub async fn segment_box(&self, row: usize, x0: f64, y0: f64, x1: f64, y1: f64) -> Result<JsValue, JsError> {
        let dec =
            self.decoder.as_ref().ok_or_else(|| JsError::new("this model cannot propose masks (load LiteMedSAM)"))?;
        let r = *self.ordered().0.get(row).ok_or_else(|| JsError::new(&format!("no row {row}")))?;
        let grid = r.grid.as_ref().ok_or_else(|| JsError::new(&format!("{}: open the image first", r.id)))?;
        let t0 = Instant::now();
        let seg = medpick_core::segment::box_mask(self.gpu.as_ref(), dec, grid, r.width, r.height, [x0, y0, x1, y1])
            .await
            .map_err(|e| js_err(format!("{}: {e}", r.id)))?;
        let o = js_sys::Object::new();
        set(&o, "area", JsValue::from(seg.area() as f64));
        set(&o, "iou", JsValue::from(seg.iou_pred));
        set(&o, "ms", JsValue::from(t0.elapsed().as_secs_f64() * 1e3));
        set(&o, "mask", js_sys::Uint8Array::from(seg.mask.as_slice()).into());
        Ok(o.into())
    }

    /// Train the segmentation head on the masks drawn: `labels` JSON `[{row, width, height}]` and `masks` their
    /// 0/1 pixels concatenated in that order. Rows train in the CLI's order with `medpick train --task seg`'s
    /// settings, so the head equals the CLI's on the exported labels. With `hold_out` k ≥ 2 and at least k
    /// labelled images, every k-th of them (in that order) is held out: not trained on, its mean Dice measured
    /// after every epoch. `on_step(step, steps)`; `fetch(row)` as for `next_batch`. Returns JSON `{head, epoch_loss, steps, seconds, trained_on,
    /// train_dice, ids, held_out, val_curve}` (`head`: the CLI's head file; `ids` those trained on).
    pub async fn train_seg(
        &mut self,
        labels: &str,
        masks: Vec<u8>,
        epochs: usize,
        batch: usize,
        seed: u64,
        hold_out: usize,
        on_step: Option<js_sys::Function>,
        fetch: Option<js_sys::Function>,
    ) -> Result<String, JsError> {
        let meta: Vec<MaskMeta> = parse("labels", labels)?;
        let enc = self.encoder.as_ref().ok_or_else(|| JsError::new("no model loaded"))?;
        if self.decoder.is_none() {
            return Err(JsError::new("segmentation heads train on LiteMedSAM's image embeddings: load LiteMedSAM"));
        }
        let (shape, chw) = enc.grid_shape();
        let rows = self.ordered().0;
        let mut at = 0;
        let mut items = Vec::with_capacity(meta.len());
        for m in &meta {
            let r = rows.get(m.row).ok_or_else(|| JsError::new(&format!("no row {}", m.row)))?;
            let n = m.width * m.height;
            let px = masks.get(at..at + n).ok_or_else(|| JsError::new("labels: fewer mask bytes than sizes"))?;
            at += n;
            if (m.width, m.height) != (r.width, r.height) {
                return Err(JsError::new(&format!(
                    "{}: the mask is {}x{} but the image is {}x{}",
                    r.id, m.width, m.height, r.width, r.height
                )));
            }
            items.push((m.row, MaskLabel::new(&r.id, m.width, m.height, px.to_vec()).map_err(js_err)?));
        }
        items.sort_by_key(|(row, _)| *row);
        let mut owned = Vec::with_capacity(items.len());
        for (row, _) in &items {
            owned.push(self.grid_of(*row, fetch.as_ref()).await?);
        }
        let grids: Vec<&[f32]> = owned.iter().map(|g| g.as_ref()).collect();
        let all: Vec<MaskLabel> = items.into_iter().map(|(_, m)| m).collect();
        let n_all = all.len();
        let held = |i: usize| hold_out >= 2 && n_all >= hold_out && (i + 1).is_multiple_of(hold_out);
        let (mut masks, mut val, mut val_grids, mut train_grids) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (m, g)) in all.into_iter().zip(grids).enumerate() {
            if held(i) {
                val.push(m);
                val_grids.push(g);
            } else {
                masks.push(m);
                train_grids.push(g);
            }
        }
        let grids = train_grids;
        let mut step = |k: usize, n: usize| {
            if let Some(f) = &on_step {
                let _ = f.call2(&JsValue::NULL, &JsValue::from(k), &JsValue::from(n));
            }
        };
        let ctx = self.gpu.as_ref();
        let held_out = (val_grids.as_slice(), val.as_slice());
        let (file, log, train_dice) = labelled::train_seg(
            ctx,
            &self.model_name,
            shape,
            chw,
            &grids,
            &masks,
            held_out,
            epochs,
            batch,
            seed,
            &mut step,
        )
        .await
        .map_err(js_err)?;
        let doc = serde_json::json!({
            "head": file, "epoch_loss": log.epoch_loss, "steps": log.steps, "seconds": log.seconds,
            "trained_on": masks.len(), "train_dice": train_dice,
            "ids": masks.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            "held_out": val.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            "val_curve": log.val_curve,
        });
        self.head = Some(Head::Seg(file));
        Ok(json(&doc))
    }

    /// Train the classification head on the classes given: `labels` JSON `[{row, label}]`, on the pooled
    /// features, with `medpick train --task cls`'s settings. Returns JSON `{head, epoch_loss, steps, seconds,
    /// trained_on, train_accuracy}`.
    pub async fn train_cls(&mut self, labels: &str, epochs: usize, seed: u64) -> Result<String, JsError> {
        let mut meta: Vec<ClassMeta> = parse("labels", labels)?;
        meta.sort_by_key(|m| m.row);
        let rows = self.ordered().0;
        let dim = rows.first().map_or(0, |r| r.feature.len());
        let mut x = Vec::with_capacity(meta.len() * dim);
        for m in &meta {
            let r = rows.get(m.row).ok_or_else(|| JsError::new(&format!("no row {}", m.row)))?;
            if m.label.trim().is_empty() {
                return Err(JsError::new(&format!("{}: empty class name", r.id)));
            }
            x.extend_from_slice(&r.feature);
        }
        let names: Vec<String> = meta.iter().map(|m| m.label.clone()).collect();
        let ctx = self.gpu.as_ref();
        let (file, log) =
            labelled::train_cls(ctx, &self.model_name, &x, dim, &names, epochs, seed).await.map_err(js_err)?;
        let probs = file.head.predict(ctx, &x).await.map_err(js_err)?;
        let pred = medpick_core::train::cls::ClsHead::argmax(&probs, file.classes.len());
        let right = pred.iter().zip(&names).filter(|(p, l)| &file.classes[**p] == *l).count();
        let doc = serde_json::json!({
            "head": file, "epoch_loss": log.epoch_loss, "steps": log.steps, "seconds": log.seconds,
            "trained_on": names.len(), "train_accuracy": right as f64 / names.len().max(1) as f64,
        });
        self.head = Some(Head::Cls(file));
        Ok(json(&doc))
    }

    /// The next `n` images to label: the unlabelled rows (all but `labelled`, a JSON list of rows) scored by the
    /// head trained last (`lc`, `entropy`, `margin`; `her` for segmentation), the most uncertain first, or
    /// `coreset` (k-center greedy from the labelled rows on the pooled features). Returns JSON
    /// `{score, picks: [{row, id, score}], scored, ms}`. `fetch(row)` gives a promise of the bytes of a row's file
    /// when its embedding is needed again (pools beyond the kept budget).
    pub async fn next_batch(
        &self,
        score: &str,
        n: usize,
        labelled: &str,
        fetch: Option<js_sys::Function>,
    ) -> Result<String, JsError> {
        let done: std::collections::HashSet<usize> = parse::<Vec<usize>>("labelled", labelled)?.into_iter().collect();
        let rows = self.ordered().0;
        let rest: Vec<usize> = (0..rows.len()).filter(|i| !done.contains(i)).collect();
        let ctx = self.gpu.as_ref();
        let t0 = Instant::now();
        let (picks, scores): (Vec<usize>, Vec<f64>) = if score == "coreset" {
            let dim = rows.first().map_or(0, |r| r.feature.len());
            let data: Vec<f32> = rows.iter().flat_map(|r| r.feature.iter().copied()).collect();
            let x = Matrix::new(&data, rows.len(), dim).map_err(js_err)?;
            let labeled: Vec<usize> = (0..rows.len()).filter(|i| done.contains(i)).collect();
            let scans = Some(medpick_core::exec::Backend::on(ctx));
            let input = SelectInput { x, budget: n.min(rest.len()), seed: 0, labeled: &labeled, scans, weights: None };
            let sel = select::select("coreset", &input).await.map_err(js_err)?;
            let picks: Vec<usize> = sel.picks.iter().filter_map(|p| rest.iter().position(|q| q == p)).collect();
            let scores = sel.scores.clone();
            (picks, scores)
        } else {
            let s = match &self.head {
                None => return Err(JsError::new("train a head first (or use coreset)")),
                Some(Head::Seg(h)) => {
                    let (shape, chw) = match &self.encoder {
                        Some(e) => e.grid_shape(),
                        None => return Err(JsError::new("no model loaded")),
                    };
                    let mut s = Vec::with_capacity(rest.len());
                    // Sixteen grids at a time, channels-last, each fetched again when the session did not keep it.
                    for chunk in rest.chunks(16) {
                        let mut hwc = Vec::with_capacity(chunk.len());
                        for &i in chunk {
                            let g = self.grid_of(i, fetch.as_ref()).await?;
                            hwc.push(if chw {
                                medpick_core::train::grid::chw_to_hwc(&g, shape.c, shape.h, shape.w)
                            } else {
                                g.into_owned()
                            });
                        }
                        let refs: Vec<&[f32]> = hwc.iter().map(|g| g.as_slice()).collect();
                        s.extend(labelled::seg_scores(ctx, &h.head, &refs, score, 0.35).await.map_err(js_err)?);
                    }
                    s
                }
                Some(Head::Cls(h)) => {
                    let x: Vec<f32> = rest.iter().flat_map(|&i| rows[i].feature.iter().copied()).collect();
                    let probs = h.head.predict(ctx, &x).await.map_err(js_err)?;
                    labelled::cls_scores(&probs, h.classes.len(), score).map_err(js_err)?
                }
            };
            let top = labelled::most_uncertain(&s, n, score);
            let scores = top.iter().map(|&i| s[i]).collect();
            (top, scores)
        };
        let list: Vec<_> = picks
            .iter()
            .zip(&scores)
            .map(|(&k, s)| serde_json::json!({"row": rest[k], "id": rows[rest[k]].id, "score": s}))
            .collect();
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(json(&serde_json::json!({"score": score, "picks": list, "scored": rest.len(), "ms": ms})))
    }

    /// The labels as a zip in the CLI's layout (masks/…png, labels.csv): `masks_meta` JSON `[{row, width,
    /// height}]` with `masks` concatenated in that order, `classes` JSON `[{row, label}]`.
    pub fn export_labels(&self, masks_meta: &str, masks: Vec<u8>, classes: &str) -> Result<Vec<u8>, JsError> {
        let meta: Vec<MaskMeta> = parse("masks", masks_meta)?;
        let cls: Vec<ClassMeta> = parse("classes", classes)?;
        let rows = self.ordered().0;
        let id = |row: usize| rows.get(row).map(|r| r.id.clone()).ok_or_else(|| JsError::new(&format!("no row {row}")));
        let mut at = 0;
        let mut out = Vec::new();
        for m in &meta {
            let n = m.width * m.height;
            let px = masks.get(at..at + n).ok_or_else(|| JsError::new("masks: fewer bytes than sizes"))?;
            at += n;
            out.push(MaskLabel::new(&id(m.row)?, m.width, m.height, px.to_vec()).map_err(js_err)?);
        }
        let classes: Vec<(String, String)> =
            cls.iter().map(|c| Ok((id(c.row)?, c.label.clone()))).collect::<Result<_, JsError>>()?;
        medpick_core::data::label_export::export_zip(&out, &classes, &self.volume_grids(), &self.series())
            .map_err(js_err)
    }

    /// Read labels back (a medpick export zip, its files, or MONAI Label's labels/final/ files): `names` JSON
    /// list of file names with their `lengths`, `blob` their bytes concatenated. Returns `{doc, masks}`: `doc`
    /// JSON `{masks: [{row, id, width, height}], classes: [{row, id, label}], problems: [[file, why]]}`,
    /// `masks` the 0/1 pixels concatenated in `doc.masks`' order.
    pub fn import_labels(&self, names: &str, lengths: &str, blob: Vec<u8>) -> Result<JsValue, JsError> {
        let names: Vec<String> = parse("names", names)?;
        let lengths: Vec<usize> = parse("lengths", lengths)?;
        if names.len() != lengths.len() || lengths.iter().sum::<usize>() != blob.len() {
            return Err(JsError::new("import: names, lengths and bytes do not agree"));
        }
        let mut files = Vec::with_capacity(names.len());
        let mut at = 0;
        for (n, &len) in names.iter().zip(&lengths) {
            files.push((n.clone(), blob[at..at + len].to_vec()));
            at += len;
        }
        let rows = self.ordered().0;
        let images: Vec<(String, usize, usize)> = rows.iter().map(|r| (r.id.clone(), r.width, r.height)).collect();
        let row_of: std::collections::HashMap<&str, usize> =
            rows.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
        let got = medpick_core::data::label_export::import_files(&files, &images, &self.volume_grids(), &self.series());
        let mut px = Vec::new();
        let masks: Vec<_> = got
            .masks
            .iter()
            .map(|m| {
                px.extend_from_slice(&m.mask);
                serde_json::json!({"row": row_of[m.id.as_str()], "id": m.id, "width": m.width, "height": m.height})
            })
            .collect();
        let classes: Vec<_> = got
            .classes
            .iter()
            .map(|(id, l)| serde_json::json!({"row": row_of[id.as_str()], "id": id, "label": l}))
            .collect();
        let doc = serde_json::json!({"masks": masks, "classes": classes, "problems": got.problems});
        let o = js_sys::Object::new();
        set(&o, "doc", JsValue::from_str(&json(&doc)));
        set(&o, "masks", js_sys::Uint8Array::from(px.as_slice()).into());
        Ok(o.into())
    }
}

impl Session {
    /// The dropped NIfTI volumes' grids, by file.
    fn volume_grids(&self) -> std::collections::HashMap<String, medpick_core::io::nifti::VolumeGrid> {
        self.files.iter().filter_map(|f| Some((f.rel.clone(), f.volume.clone()?))).collect()
    }

    /// The dropped DICOM series (single-frame files), whose masks export as one NIfTI label each.
    fn series(&self) -> Vec<medpick_core::data::label_export::Series> {
        let files = self
            .files
            .iter()
            .filter(|f| f.rows.len() == 1)
            .filter_map(|f| Some((f.rows[0].id.clone(), f.dicom.clone()?)))
            .collect();
        medpick_core::data::label_export::Series::group(files)
    }

    /// Row `row` decoded again from its file's bytes, checked to be the same sample as when embedded.
    fn decode_row(&self, row: usize, bytes: &[u8]) -> Result<medpick_core::io::Image2d, JsError> {
        let (places, _) = self.places();
        let &(f, r) = places.get(row).ok_or_else(|| JsError::new(&format!("no row {row}")))?;
        let rel = &self.files[f].rel;
        let (sample, id) = (self.files[f].rows[r].sample, &self.files[f].rows[r].id);
        let decoded = upload::decode(rel, bytes, medpick_core::io::Window::File).map_err(js_err)?;
        let (got, img) =
            decoded.samples.into_iter().nth(sample).ok_or_else(|| {
                JsError::new(&format!("{rel}: has no sample {sample} any more (was the file changed?)"))
            })?;
        if &got != id {
            return Err(JsError::new(&format!(
                "{rel}: sample {sample} is now {got}, not {id} (was the file changed?)"
            )));
        }
        Ok(img)
    }

    /// Row `row`'s image embedding (the encoder's layout): the kept one, or computed from its file's bytes, which
    /// `fetch(row)` (a promise of a Uint8Array) gives; not kept.
    async fn grid_of(&self, row: usize, fetch: Option<&js_sys::Function>) -> Result<Cow<'_, [f32]>, JsError> {
        let enc = self.encoder.as_ref().ok_or_else(|| JsError::new("no model loaded"))?;
        let r = *self.ordered().0.get(row).ok_or_else(|| JsError::new(&format!("no row {row}")))?;
        match &r.grid {
            Some(g) => Ok(Cow::Borrowed(g.as_slice())),
            None => {
                let f = fetch.ok_or_else(|| JsError::new(&format!("{}: open the image first", r.id)))?;
                let p = f.call1(&JsValue::NULL, &JsValue::from(row)).map_err(|e| js_err(format!("{e:?}")))?;
                let v = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(p))
                    .await
                    .map_err(|e| js_err(format!("{}: reading its file again: {e:?}", r.id)))?;
                let img = self.decode_row(row, &js_sys::Uint8Array::new(&v).to_vec())?;
                let (_, grid) = enc.embed_with_grid(self.gpu.as_ref(), &img).await.map_err(js_err)?;
                grid.map(Cow::Owned)
                    .ok_or_else(|| JsError::new("this model has no image embedding for a segmentation head"))
            }
        }
    }
}
