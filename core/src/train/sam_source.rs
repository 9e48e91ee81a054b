//! LiteMedSAM's mask decoder and the LiteMedSAM embeddings of the unlabelled images, for the generalist
//! pseudo-labels (`--pseudo-labels`) of the segmentation head's training.

use std::path::Path;

use super::grid::hwc_to_chw;
use crate::embed::{embed_grids, EmbedConfig, SAM_GRID};
use crate::manifest::Sample;
use crate::model::sam_decoder::{LoadedSamDecoder, SamDecoder};
use crate::{Context, Result};

/// LiteMedSAM's mask decoder and the LiteMedSAM embeddings of the unlabelled images, for `--pseudo-labels`.
/// With `--model litemedsam` the head's own grids are the embeddings; another encoder's pool is embedded a second
/// time with LiteMedSAM (cached like any other features).
pub struct SamSource {
    pub decoder: LoadedSamDecoder,
    /// LiteMedSAM grids (channels-last) by id, when the head's encoder is not LiteMedSAM.
    own: Option<std::collections::HashMap<String, Vec<f32>>>,
}

impl SamSource {
    pub async fn load(
        gpu: Option<&crate::gpu::GpuContext>,
        cpu: bool,
        model: &EmbedConfig,
        sam_weights: Option<&Path>,
        root: &Path,
        samples: &[Sample],
    ) -> Result<SamSource> {
        let path = match (sam_weights, model.model.as_str()) {
            (Some(p), _) => p.to_path_buf(),
            (None, "litemedsam") if model.weights.is_some() => model.weights.clone().unwrap_or_default(),
            (None, _) => crate::data::io::weights::default_litemedsam_path()?,
        };
        let w = crate::data::io::weights::read_weights(&path)
            .with_context(|| format!("pseudo-labels: loading LiteMedSAM from {}", path.display()))?;
        let dec = SamDecoder::load(&w).with_context(|| format!("{}: LiteMedSAM's mask decoder", path.display()))?;
        let decoder = match gpu {
            Some(ctx) if !cpu => dec.to_gpu(ctx)?,
            _ => dec.to_cpu()?,
        };
        let own = if model.model == "litemedsam" {
            None
        } else {
            note!("pseudo-labels: embedding {} unlabelled images with LiteMedSAM for the decoder", samples.len());
            let m = EmbedConfig { model: "litemedsam".into(), weights: Some(path), ..model.clone() };
            let (ids, grids) = embed_grids(gpu, &m, root, samples, SAM_GRID, false).await?;
            Some(ids.into_iter().zip(grids).collect())
        };
        Ok(SamSource { decoder, own })
    }

    /// The LiteMedSAM embedding [256, 64, 64] of image `id`, whose head grid (channels-last) is `grid`.
    pub fn embedding(&self, id: &str, grid: &[f32]) -> crate::Result<Vec<f32>> {
        let g = match &self.own {
            None => grid,
            Some(m) => m
                .get(id)
                .map(|g| g.as_slice())
                .ok_or_else(|| crate::Error::Invalid(format!("{id}: no LiteMedSAM embedding for its pseudo-label")))?,
        };
        if g.len() != SAM_GRID.len() {
            return Err(crate::Error::Invalid(format!(
                "pseudo-labels: {id}: a grid of {} values, LiteMedSAM's is 256×64×64",
                g.len()
            )));
        }
        Ok(hwc_to_chw(g, SAM_GRID.c, SAM_GRID.h, SAM_GRID.w))
    }
}
