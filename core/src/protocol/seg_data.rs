//! A segmentation dataset made ready for the protocol and the warm loop: split, embedded as feature grids
//! (cached), masks read at the head's output size (training) and at their own size (test), the slices' places in
//! their volumes, HERD's intensity histograms, and the generalist when pseudo-labels are on.

use super::prepare::split_samples;
use super::{SegPool, SegTest};
use crate::data::dataset::read_mask;
use crate::embed::features::Encoder;
use crate::embed::{embed_grids, embed_variant_grids, EmbedConfig};
use crate::manifest;
use crate::train::pseudo::SamPseudo;
use crate::train::sam_source::SamSource;
use crate::train::seg::{self, SegSettings};
use crate::{protocol, Context, Result};

/// The two splits of a segmentation dataset, embedded: grids (channels-last), the training grids' spatial means
/// for selection, training masks at the head's output size, test masks at their own size; and the generalist
/// when pseudo-labels are on.
pub struct SegData {
    pub shape: seg::GridShape,
    pub r: usize,
    pub tr_ids: Vec<String>,
    pub tr_grids: Vec<Vec<f32>>,
    pub tr_pooled: Vec<f32>,
    pub tr_masks: Vec<Vec<u8>>,
    pub te_ids: Vec<String>,
    pub te_grids: Vec<Vec<f32>>,
    pub te_masks: Vec<(usize, usize, Vec<u8>)>,
    /// Where each test image sits in its volume (slices of volumes are scored per volume in 3-D).
    pub te_places: Vec<Option<protocol::SlicePlace>>,
    pub sam: Option<SamSource>,
    /// HERD's intensity histogram of every training image (grey = mean of RGB).
    pub tr_hist: Vec<[f32; 20]>,
    /// With `--val-every N`: the validation split's grids and masks at the head's output, and N.
    pub va_grids: Vec<Vec<f32>>,
    pub va_masks: Vec<Vec<u8>>,
    pub val_every: usize,
    /// With `--intensity-variants K`: K intensity variants of every training image's grid (seed 0: they are part
    /// of the data, shared by every run).
    pub tr_variants: Vec<Vec<Vec<f32>>>,
}

impl SegData {
    /// Split (`need`: the most images a run labels), embed (cached) and read the masks.
    #[allow(clippy::too_many_arguments)] // the dataset, the encoder, the head's settings and the subset sizes
    pub async fn prepare(
        gpu: Option<&crate::gpu::GpuContext>,
        dataset: &std::path::Path,
        model: &EmbedConfig,
        seg_args: &SegSettings,
        cpu: bool,
        max_train: usize,
        max_test: usize,
        need: usize,
        val_every: usize,
    ) -> Result<SegData> {
        let crate::data::dataset::Dataset { root, samples, split, .. } = crate::data::dataset::load(dataset, None)?;
        let (train_s, test_s, val_s) =
            split_samples(dataset, &samples, split, &|s| !s.masks.is_empty(), max_train, max_test, need)?;
        let val_s = if val_every > 0 { val_s } else { Vec::new() };
        if val_every > 0 && val_s.is_empty() {
            let why = format!("needs images with masks in the validation split; {} has none", dataset.display());
            return Err(crate::Error::setting("val-every", val_every, why));
        }
        note!(
            "segmentation: {} training, {} test{} images with masks",
            train_s.len(),
            test_s.len(),
            if val_every > 0 { format!(", {} validation", val_s.len()) } else { String::new() }
        );
        let (shape, chw) = Encoder::load_with(gpu, &model.model, model.weights.as_deref(), model.precision)
            .with_context(|| format!("loading model {}", model.model))?
            .grid_shape();
        let r = shape.default_scale();
        let (oh, ow) = (shape.h * r, shape.w * r);
        let by_id: std::collections::HashMap<&str, &manifest::Sample> =
            train_s.iter().chain(&test_s).chain(&val_s).map(|s| (s.id.as_str(), s)).collect();
        let mut mask_loader = manifest::MaskLoader::new(&root);
        let mut mask_of = |id: &str| read_mask(&mut mask_loader, by_id[id]);
        let (tr_ids, tr_grids) = embed_grids(gpu, model, &root, &train_s, shape, chw).await?;
        let k = seg_args.intensity_variants;
        let tr_variants = embed_variant_grids(gpu, model, &root, &train_s, &tr_ids, shape, chw, k, 0).await?;
        let tr_pooled: Vec<f32> = tr_grids.iter().flat_map(|g| shape.spatial_mean(g)).collect();
        let tr_masks: Vec<Vec<u8>> = tr_ids
            .iter()
            .map(|id| mask_of(id).map(|(h, w, m)| seg::resize_nearest_u8(&m, h, w, oh, ow)))
            .collect::<Result<_>>()?;
        let (te_ids, te_grids) = embed_grids(gpu, model, &root, &test_s, shape, chw).await?;
        let te_masks: Vec<(usize, usize, Vec<u8>)> = te_ids.iter().map(|id| mask_of(id)).collect::<Result<_>>()?;
        let te_places: Vec<Option<protocol::SlicePlace>> =
            te_ids.iter().map(|id| protocol::SlicePlace::of(by_id[id.as_str()])).collect();
        report_test_volumes(&te_places);
        // The validation split is embedded only when --val-every asks for it (val_s is empty otherwise).
        let (va_ids, va_grids) = match val_s.is_empty() {
            true => (Vec::new(), Vec::new()),
            false => embed_grids(gpu, model, &root, &val_s, shape, chw).await?,
        };
        let va_masks: Vec<Vec<u8>> = va_ids
            .iter()
            .map(|id| mask_of(id).map(|(h, w, m)| seg::resize_nearest_u8(&m, h, w, oh, ow)))
            .collect::<Result<_>>()?;
        if need > tr_ids.len() {
            bail!("{need} labelled images exceed the {} training images that could be embedded", tr_ids.len());
        }
        let sam = match seg_args.pseudo_labels {
            true => Some(SamSource::load(gpu, cpu, model, seg_args.sam_weights.as_deref(), &root, &train_s).await?),
            false => None,
        };
        let window = crate::data::io::Window::parse(&model.window)?;
        let mut loader = manifest::SampleLoader::new(&root, window);
        let tr_hist = tr_ids
            .iter()
            .map(|id| {
                let img = loader.load(by_id[id.as_str()]).with_context(|| format!("reading {id}"))?;
                let grey: Vec<f32> = img.to_rgb_f32_255().chunks(3).map(|p| (p[0] + p[1] + p[2]) / 3.0).collect();
                Ok(crate::uncertainty::intensity_histogram(&grey))
            })
            .collect::<Result<_>>()?;
        Ok(SegData {
            shape,
            r,
            tr_ids,
            tr_grids,
            tr_pooled,
            tr_masks,
            te_ids,
            te_grids,
            te_masks,
            te_places,
            sam,
            tr_hist,
            va_grids,
            va_masks,
            val_every,
            tr_variants,
        })
    }

    /// The training pool for the runners, with the generalist when pseudo-labels are on.
    pub fn pool<'a>(&'a self, sam: Option<&'a SamPseudo<'a>>) -> SegPool<'a> {
        SegPool {
            ids: &self.tr_ids,
            x: &self.tr_pooled,
            dim: self.shape.c,
            grids: &self.tr_grids,
            masks: &self.tr_masks,
            sam,
            hist: Some(&self.tr_hist),
            val: (self.val_every > 0).then_some(seg::SegValidation {
                grids: &self.va_grids,
                masks: &self.va_masks,
                every: self.val_every,
                keep_last: false,
            }),
            variants: &self.tr_variants,
        }
    }

    pub fn test(&self) -> SegTest<'_> {
        SegTest { grids: &self.te_grids, masks: &self.te_masks, places: &self.te_places }
    }

    /// The LiteMedSAM embedding of training image `i` (for the generalist's pseudo-labels).
    pub fn embedding(&self, i: usize) -> crate::Result<Vec<f32>> {
        match &self.sam {
            Some(s) => s.embedding(&self.tr_ids[i], &self.tr_grids[i]),
            None => Err(crate::Error::Invalid("no generalist loaded".into())),
        }
    }
}

/// Say how the test split is scored: per image in 2-D, or per volume in 3-D when its images are slices of volumes
/// that are all complete runs of slices.
fn report_test_volumes(places: &[Option<protocol::SlicePlace>]) {
    let (n, incomplete) = protocol::incomplete_volumes(places);
    if n == 0 {
        return;
    }
    match incomplete.first() {
        None => note!(
            "test split: slices of {n} volumes, scored per volume in 3-D (predicted slices stacked, connected components \
             of at least a third of the largest kept, distances in mm)"
        ),
        Some((v, why)) => note!(
            "test split: slices of {n} volumes, {} of them incomplete (e.g. {v}: {why}), so scored per slice in 2-D",
            incomplete.len()
        ),
    }
}
