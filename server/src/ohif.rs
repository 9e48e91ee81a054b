//! OHIF at `/ohif/`, as MONAI Label serves it: the OHIF v3 build with MONAI Label's extension, from a folder or
//! straight from MONAI Label's wheel (`monailabel-0.8.5-*.whl`, which ships it under
//! `monailabel/endpoints/static/ohif/`; `scripts/setup.sh` downloads the wheel). Its `app-config.js` reads images
//! from `/proxy/dicom/{qido,wado}` ([`crate::dicomweb`]) and talks to this server's MONAI Label routes. Paths
//! that are not files answer `index.html` (OHIF's own routes), and nothing outside the folder or the wheel's
//! OHIF prefix is ever served.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::{ApiError, ApiResult, Shared};

/// What OHIF's pages may load: this server's files and routes, and what they make in the page (blob:, data:,
/// inline scripts and styles, WebAssembly).
const CSP: &str = "default-src 'self' blob: data:; script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' \
                   blob:; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self' blob: data:";

/// Where the wheel keeps OHIF.
const WHEEL_PREFIX: &str = "monailabel/endpoints/static/ohif/";

/// The OHIF build being served.
pub enum Ohif {
    Dir(PathBuf),
    /// A zip (wheel) with its OHIF entries' names (relative to the prefix) and the files read so far.
    Zip {
        archive: Mutex<zip::ZipArchive<std::fs::File>>,
        prefix: String,
        cache: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    },
}

impl Ohif {
    /// Open a folder holding OHIF's `index.html` and `app-config.js`, or a zip/wheel holding them (under the wheel's
    /// prefix or at its top).
    pub fn open(p: &Path) -> Result<Ohif, String> {
        let bad = |m: String| format!("--ohif {}: {m}", p.display());
        if p.is_dir() {
            let root = std::fs::canonicalize(p).map_err(|e| bad(e.to_string()))?;
            if !root.join("index.html").is_file() || !root.join("app-config.js").is_file() {
                return Err(bad("not an OHIF build (no index.html and app-config.js in it)".into()));
            }
            return Ok(Ohif::Dir(root));
        }
        let f = std::fs::File::open(p).map_err(|e| bad(e.to_string()))?;
        let archive = zip::ZipArchive::new(f).map_err(|e| bad(format!("neither a folder nor a zip/wheel ({e})")))?;
        let prefix = [WHEEL_PREFIX, ""]
            .into_iter()
            .find(|pre| archive.index_for_name(&format!("{pre}index.html")).is_some())
            .ok_or_else(|| bad(format!("no OHIF build in it (no {WHEEL_PREFIX}index.html)")))?
            .to_string();
        Ok(Ohif::Zip { archive: Mutex::new(archive), prefix, cache: Mutex::new(HashMap::new()) })
    }

    /// The bytes of `rel` (already checked to be plain components), or `None` when there is no such file.
    fn read(&self, rel: &str) -> ApiResult<Option<Arc<Vec<u8>>>> {
        match self {
            Ohif::Dir(root) => {
                let p = root.join(rel);
                // Links are followed only while they stay in the folder.
                match std::fs::canonicalize(&p) {
                    Ok(c) if c.starts_with(root) && c.is_file() => {
                        Ok(Some(Arc::new(std::fs::read(&c).map_err(|e| ApiError::io(&c, e))?)))
                    }
                    _ => Ok(None),
                }
            }
            Ohif::Zip { archive, prefix, cache } => {
                if let Some(b) = cache.lock().map_err(|_| ApiError::internal("OHIF cache poisoned"))?.get(rel) {
                    return Ok(Some(b.clone()));
                }
                let mut a = archive.lock().map_err(|_| ApiError::internal("OHIF archive poisoned"))?;
                let name = format!("{prefix}{rel}");
                let Some(i) = a.index_for_name(&name) else { return Ok(None) };
                let mut e = a.by_index(i).map_err(|e| ApiError::internal(format!("{name}: {e}")))?;
                if e.is_dir() {
                    return Ok(None);
                }
                let mut buf = Vec::with_capacity(e.size().min(64 << 20) as usize);
                e.read_to_end(&mut buf).map_err(|e| ApiError::internal(format!("{name}: {e}")))?;
                let b = Arc::new(buf);
                cache.lock().map_err(|_| ApiError::internal("OHIF cache poisoned"))?.insert(rel.to_string(), b.clone());
                Ok(Some(b))
            }
        }
    }
}

fn content_type(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript",
        "css" => "text/css",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/ohif", get(|| async { Redirect::permanent("/ohif/") }))
        .route("/ohif/", get(|s: State<Shared>| page(s, String::new())))
        .route("/ohif/{*path}", get(|s: State<Shared>, UrlPath(p): UrlPath<String>| page(s, p)))
        // The build's manifest names its icons from the site's root.
        .route("/assets/{*path}", get(|s: State<Shared>, UrlPath(p): UrlPath<String>| page(s, format!("assets/{p}"))))
}

async fn page(State(app): State<Shared>, path: String) -> ApiResult<Response> {
    let Some(ohif) = app.ohif.clone() else {
        return Err(ApiError::not_found(
            "OHIF is not served: start medpick serve with --ohif <monailabel-0.8.5 wheel or an OHIF build folder>",
        ));
    };
    // Only plain components: no `..`, no root, no drive; anything else is OHIF's own route (index.html).
    let plain = !path.is_empty()
        && Path::new(&path).components().all(|c| matches!(c, Component::Normal(_)))
        && !path.contains('\\');
    let (rel, bytes) = tokio::task::spawn_blocking(move || -> ApiResult<(String, Arc<Vec<u8>>)> {
        if plain {
            if let Some(b) = ohif.read(&path)? {
                return Ok((path, b));
            }
        }
        let b = ohif.read("index.html")?.ok_or_else(|| ApiError::not_found("OHIF's index.html is missing"))?;
        Ok(("index.html".to_string(), b))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut r = axum::body::Bytes::from(bytes.as_ref().clone()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&rel)));
    // The page talks to this server only: OHIF's build would fetch its font from Google (index.html and its CSS);
    // the browser falls back to a local font instead.
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    Ok(r)
}
