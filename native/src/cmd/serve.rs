//! `medpick serve`: the MONAI Label-compatible active-learning server (crate `medpick-server`).

use anyhow::{Context, Result};

use crate::ModelArgs;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// A MONAI Label local datastore: images in the folder, labels in labels/final/ (and labels/original/),
    /// state in datastore_v2.json (created if missing).
    #[arg(long)]
    pub datastore: std::path::PathBuf,
    /// Address to bind (only loopback by default; any other needs --token-file).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Label names (the segmentation head's foreground is the first).
    #[arg(long, value_delimiter = ',', default_value = "foreground")]
    pub labels: Vec<String>,
    /// A file holding the Bearer token every client must send (MONAI Label's auth route then answers enabled).
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Minutes an image handed to an annotator stays theirs (no other annotator gets it) unless a label arrives.
    #[arg(long, default_value_t = 30.0)]
    pub lease_minutes: f64,
    /// Picks per strategy plan (plans grow when annotators run past them).
    #[arg(long, default_value_t = 256, value_parser = crate::at_least_one)]
    pub plan_size: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Largest request body in MiB (a label upload, an image upload).
    #[arg(long, default_value_t = 512)]
    pub max_body_mib: usize,
    /// Epochs of the segmentation head's training (POST /train/medpick_seg; params max_epochs overrides).
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Serve OHIF at /ohif/ (its MONAI Label panel and DICOMweb images from this datastore): MONAI Label's wheel
    /// (monailabel-0.8.5-*.whl, which ships the OHIF build; scripts/setup.sh downloads it) or an OHIF build folder.
    #[arg(long)]
    pub ohif: Option<std::path::PathBuf>,
}

pub fn serve(a: ServeArgs) -> Result<u8> {
    let token = match &a.token_file {
        None => None,
        Some(p) => {
            let t = std::fs::read_to_string(p).with_context(|| format!("reading --token-file {}", p.display()))?;
            let t = t.trim().to_string();
            if t.len() < 16 {
                anyhow::bail!("{}: the token must be at least 16 characters", p.display());
            }
            Some(t)
        }
    };
    if !(a.lease_minutes.is_finite() && a.lease_minutes > 0.0) {
        anyhow::bail!("--lease-minutes {}: a positive number", a.lease_minutes);
    }
    let sam_weights = match (&a.model.weights, a.model.model.as_str()) {
        (Some(w), "litemedsam") => Some(w.clone()),
        _ => None,
    };
    let cfg = medpick_server::ServeConfig {
        datastore: a.datastore.clone(),
        host: a.host.clone(),
        port: a.port,
        model: a.model.config(),
        labels: a.labels.clone(),
        token,
        lease: std::time::Duration::from_secs_f64(a.lease_minutes * 60.0),
        plan_size: a.plan_size,
        seed: a.seed,
        max_body: a.max_body_mib.saturating_mul(1 << 20),
        epochs: a.epochs.max(1),
        sam_weights,
        ohif: a.ohif.clone(),
    };
    let gpu = crate::open_device()?;
    let app = medpick_server::App::start(cfg, gpu).map_err(|e| anyhow::anyhow!(e))?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build()?;
    rt.block_on(medpick_server::serve(app)).map_err(|e| anyhow::anyhow!(e))?;
    Ok(0)
}
