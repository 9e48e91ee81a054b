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
    // A symbolic link inside the folder may point anywhere: serve only what really lies inside it.
    let real = std::fs::canonicalize(&out).ok()?;
    let root = std::fs::canonicalize(root).ok()?;
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

/// Whether a request's Host header names this server, for a server bound to `bind_host` on `port`. Bound to a
/// loopback address (the default), only localhost, 127.0.0.1 and [::1] (with this port or none) are answered: a
/// page on another site that re-points its own name at 127.0.0.1 (DNS rebinding) sends its own name and is
/// refused. Bound to another address the user chose to expose the server, and any Host is answered.
pub fn host_allowed(host_header: Option<&str>, bind_host: &str, port: u16) -> bool {
    let loopback = matches!(bind_host, "127.0.0.1" | "localhost" | "::1" | "[::1]");
    if !loopback {
        return true;
    }
    let Some(h) = host_header.map(|h| h.trim().to_ascii_lowercase()) else {
        return false;
    };
    let (name, p) = match h.rsplit_once(':') {
        Some((n, p))
            if !n.is_empty() && (!n.starts_with('[') || n.ends_with(']')) && p.chars().all(|c| c.is_ascii_digit()) =>
        {
            (n.to_string(), Some(p.to_string()))
        }
        _ => (h.clone(), None),
    };
    matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]") && p.is_none_or(|p| p == port.to_string())
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

    #[test]
    fn resolve_refuses_a_link_that_leaves_the_folder() {
        let dir = std::env::temp_dir().join(format!("medpick-serve-{}", std::process::id()));
        let outside = std::env::temp_dir().join(format!("medpick-serve-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&outside, "secret").unwrap();
        std::fs::write(dir.join("index.html"), "ok").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, dir.join("leak.txt")).unwrap();
            std::os::unix::fs::symlink(dir.join("index.html"), dir.join("inside.html")).unwrap();
            assert!(resolve(&dir, "/leak.txt").is_none(), "a link out of the folder is not served");
            assert!(resolve(&dir, "/inside.html").is_some(), "a link that stays inside is");
        }
        assert!(resolve(&dir, "/index.html").is_some());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&outside);
    }

    #[test]
    fn loopback_servers_answer_only_their_own_host_names() {
        for ok in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST", "127.0.0.1"] {
            assert!(host_allowed(Some(ok), "127.0.0.1", 8080), "{ok}");
        }
        for bad in ["evil.example:8080", "localhost:9999", "127.0.0.1.evil.example", "", "[::1", "localhost.:8080"] {
            assert!(!host_allowed(Some(bad), "127.0.0.1", 8080), "{bad}");
        }
        assert!(!host_allowed(None, "127.0.0.1", 8080), "no Host header");
        assert!(host_allowed(Some("scanner.lab:8080"), "0.0.0.0", 8080), "an exposed server answers any name");
    }
}
