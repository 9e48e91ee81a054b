//! OHIF at `/ohif/`, as MONAI Label serves it: the OHIF v3 build with MONAI Label's extension, from a folder or
//! straight from MONAI Label's wheel (`monailabel-0.8.5-*.whl`, which ships it under
//! `monailabel/endpoints/static/ohif/`; `scripts/setup.sh` downloads the wheel). Its `app-config.js` reads images
//! from `/proxy/dicom/{qido,wado}` ([`crate::dicomweb`]) and talks to this server's MONAI Label routes. Paths
//! that are not files answer `index.html` (OHIF's own routes), and nothing outside the folder or the wheel's
//! OHIF prefix is ever served.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::{ApiError, ApiResult, Shared};

/// What OHIF's pages may load: this server's files and routes, and what they make in the page (blob:, data:,
/// inline scripts and styles, WebAssembly).
const CSP: &str = "default-src 'self' blob: data:; script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' \
                   blob:; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self' blob: data:; \
                   object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

/// Where the wheel keeps OHIF.
const WHEEL_PREFIX: &str = "monailabel/endpoints/static/ohif/";

/// The OHIF build being served.
pub enum Ohif {
    Dir(PathBuf),
    /// A zip (wheel) with its OHIF entries' names (relative to the prefix) and the files read so far.
    Zip {
        archive: Mutex<zip::ZipArchive<std::fs::File>>,
        prefix: String,
        cache: Mutex<HashMap<String, Bytes>>,
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
    fn read(&self, rel: &str) -> ApiResult<Option<Bytes>> {
        match self {
            Ohif::Dir(root) => {
                let p = root.join(rel);
                // Links are followed only while they stay in the folder.
                match std::fs::canonicalize(&p) {
                    Ok(c) if c.starts_with(root) && c.is_file() => {
                        Ok(Some(Bytes::from(std::fs::read(&c).map_err(|e| ApiError::io(&c, e))?)))
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
                let b = Bytes::from(buf);
                cache.lock().map_err(|_| ApiError::internal("OHIF cache poisoned"))?.insert(rel.to_string(), b.clone());
                Ok(Some(b))
            }
        }
    }
}

fn content_type(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "css" => "text/css",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webmanifest" | "webapp" => "application/manifest+json",
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

/// Only plain components: no `..`, no root, no drive, no backslash; anything else is OHIF's own route.
fn plain(path: &str) -> bool {
    !path.is_empty() && Path::new(path).components().all(|c| matches!(c, Component::Normal(_))) && !path.contains('\\')
}

async fn page(State(app): State<Shared>, path: String) -> ApiResult<Response> {
    let Some(ohif) = app.ohif.clone() else {
        return Err(ApiError::not_found(
            "OHIF is not served: start medpick serve with --ohif <monailabel-0.8.5 wheel or an OHIF build folder>",
        ));
    };
    let plain = plain(&path);
    let (rel, bytes) = tokio::task::spawn_blocking(move || -> ApiResult<(String, Bytes)> {
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
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&rel)));
    // The page talks to this server only: OHIF's build would fetch its font from Google (index.html and its CSS);
    // the browser falls back to a local font instead. The other headers as `medpick web` sends them.
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    for (k, v) in medpick_core::serve::SECURITY_HEADERS.iter().filter(|(k, _)| *k != "Content-Security-Policy") {
        h.insert(*k, HeaderValue::from_static(v));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Nothing outside the build is read: not through `..`, not through a link in the folder that points out, not
    /// a zip entry outside the OHIF prefix.
    #[test]
    fn ohif_serves_its_build_and_nothing_beside_it() {
        let tmp = std::env::temp_dir().join(format!("medpick-ohif-test-{}", std::process::id()));
        let build = tmp.join("build");
        std::fs::create_dir_all(&build).unwrap();
        for (f, text) in [("index.html", "<html>"), ("app-config.js", "window.config = {};"), ("a.js", "1")] {
            std::fs::write(build.join(f), text).unwrap();
        }
        std::fs::write(tmp.join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(tmp.join("secret.txt"), build.join("link.js")).unwrap();
        let dir = Ohif::open(&build).unwrap();
        assert_eq!(dir.read("a.js").unwrap().as_deref(), Some(&b"1"[..]));
        assert!(dir.read("link.js").unwrap().is_none(), "a link out of the folder is not followed");
        assert!(!plain("../secret.txt") && !plain("/etc/passwd") && !plain("a\\..\\b") && plain("assets/x.png"));
        assert!(Ohif::open(&tmp).is_err(), "a folder without OHIF's files is refused");

        let wheel = tmp.join("w.whl");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        for (name, text) in [(format!("{WHEEL_PREFIX}index.html"), "<html>"), ("secret.txt".to_string(), "secret")] {
            z.start_file(name, o).unwrap();
            z.write_all(text.as_bytes()).unwrap();
        }
        z.finish().unwrap();
        let zip = Ohif::open(&wheel).unwrap();
        assert_eq!(zip.read("index.html").unwrap().as_deref(), Some(&b"<html>"[..]));
        assert!(zip.read("secret.txt").unwrap().is_none(), "only entries under the wheel's OHIF prefix");
        assert!(Ohif::open(&tmp.join("secret.txt")).is_err(), "neither a folder nor a zip");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
