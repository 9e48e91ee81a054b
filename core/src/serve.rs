//! What medpick's servers may serve, shared by `medpick web` (and the annotation server to come): the browser
//! app's folder, the mapping of a URL path to a file that never leaves that folder, content types, and the
//! headers that confine the page to its own origin.

use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

pub const WEIGHTS_URL: &str = "/weights/litemedsam.whl";
/// The Content-Security-Policy of every response: the page may talk to this origin only.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
                   connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'none'";

/// The folder holding index.html and pkg/ (the wasm build).
pub fn find_web_dir(given: Option<&Path>) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(d) = given {
        candidates.push(d.to_path_buf());
    } else {
        if let Ok(d) = std::env::var("MEDPICK_WEB_DIR") {
            candidates.push(d.into());
        }
        if let Ok(exe) = std::env::current_exe() {
            // target/<profile>/medpick → <repo>/web
            if let Some(repo) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
                candidates.push(repo.join("web"));
            }
        }
        candidates.push(PathBuf::from("web"));
    }
    for d in &candidates {
        if d.join("index.html").is_file() {
            if !d.join("pkg/medpick_wasm_bg.wasm").is_file() {
                return Err(Error::Invalid(format!(
                    "{}: the browser app is not built (no pkg/medpick_wasm_bg.wasm): run scripts/build-wasm.sh",
                    d.display()
                )));
            }
            return Ok(d.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    Err(Error::Invalid(format!("cannot find the web app (index.html) in {}: pass --dir", tried.join(", "))))
}

/// The Content-Type of a served file, by extension.
pub fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "md" | "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Map a URL path to a file under `root`, refusing anything that leaves it or names a hidden, test or
/// dependency folder.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let path = if path == "/" { "/index.html" } else { path };
    let rel = Path::new(path.trim_start_matches('/'));
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(s) => {
                let s = s.to_str()?;
                if s.starts_with('.') || s == "node_modules" || s == "tests" || s.contains('%') {
                    return None;
                }
                out.push(s);
            }
            _ => return None,
        }
    }
    out.is_file().then_some(out)
}

/// Headers every served file carries besides its Content-Type.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", CSP),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_inside_the_web_folder() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web");
        assert!(resolve(&root, "/").is_some_and(|p| p.ends_with("index.html")));
        assert!(resolve(&root, "/app.js?v=1").is_some());
        for bad in
            ["/../Cargo.toml", "/tests/serve.mjs", "/node_modules/playwright-core/package.json", "/.git", "/nope"]
        {
            assert!(resolve(&root, bad).is_none(), "{bad}");
        }
    }
}
