//! `medpick web`: serve the browser app (web/ with its wasm build) and the default model's weights on this
//! machine, for on-premise use. Loopback only unless --host says otherwise; GET/HEAD of files only. A
//! Content-Security-Policy confines the page to this origin, so the browser itself refuses any request to
//! another site.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

const WEIGHTS_URL: &str = "/weights/litemedsam.whl";
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
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
                bail!(
                    "{}: the browser app is not built (no pkg/medpick_wasm_bg.wasm): run scripts/build-wasm.sh",
                    d.display()
                );
            }
            return Ok(d.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    bail!("cannot find the web app (index.html) in {}: pass --dir", tried.join(", "))
}

fn content_type(p: &Path) -> &'static str {
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
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
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

pub struct WebArgs<'a> {
    pub host: &'a str,
    pub port: u16,
    pub dir: Option<&'a Path>,
    pub weights: Option<PathBuf>,
}

pub fn serve(a: WebArgs) -> Result<()> {
    let root = find_web_dir(a.dir)?;
    let weights = match a.weights {
        Some(p) if p.is_file() => Some(p),
        Some(p) => bail!("--weights {}: no such file", p.display()),
        None => match medpick_core::io::weights::default_litemedsam_path() {
            Ok(p) if p.is_file() => Some(p),
            _ => None,
        },
    };
    if a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1" {
        eprintln!(
            "warning: serving on {} makes the app reachable from other machines; browsers enable WebGPU only \
             on https or localhost, so remote users get the CPU path",
            a.host
        );
    }
    let server = tiny_http::Server::http((a.host, a.port)).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {}:{}: {e} (is the port in use? pass --port, or --port 0 for any)",
            a.host,
            a.port
        )
    })?;
    let addr = server.server_addr().to_ip().context("listening address")?;
    // Printing must not kill the server when nobody reads its output any more (a closed pipe).
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "medpick web: serving http://{addr}/ (Ctrl-C to stop)");
    let _ = writeln!(out, "  app: {}", root.display());
    let _ = match &weights {
        Some(w) => writeln!(out, "  model: {} as {WEIGHTS_URL}", w.display()),
        None => writeln!(
            out,
            "  model: not found (run scripts/setup.sh, or pass --weights); the page will ask for the file"
        ),
    };
    let _ = out.flush();
    let server = std::sync::Arc::new(server);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (server, root, weights) = (server.clone(), root.clone(), weights.clone());
            std::thread::spawn(move || {
                for req in server.incoming_requests() {
                    respond(req, &root, weights.as_deref());
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn respond(req: tiny_http::Request, root: &Path, weights: Option<&Path>) {
    use tiny_http::{Header, Method, Response};
    let header = |k: &str, v: &str| Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("static header");
    let method = req.method().clone();
    if method != Method::Get && method != Method::Head {
        let _ = req.respond(Response::from_string("method not allowed").with_status_code(405));
        return;
    }
    let url = req.url().to_string();
    let file =
        if url.split('?').next() == Some(WEIGHTS_URL) { weights.map(Path::to_path_buf) } else { resolve(root, &url) };
    let Some(file) = file else {
        let _ = req.respond(Response::from_string("not found").with_status_code(404));
        return;
    };
    let f = match std::fs::File::open(&file) {
        Ok(f) => f,
        Err(e) => {
            let _ = req.respond(Response::from_string(format!("cannot read: {e}")).with_status_code(500));
            return;
        }
    };
    // tiny_http sends no body for HEAD.
    let resp = Response::from_file(f)
        .with_header(header("Content-Type", content_type(&file)))
        .with_header(header("Content-Security-Policy", CSP))
        .with_header(header("Cross-Origin-Resource-Policy", "same-origin"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Referrer-Policy", "no-referrer"))
        .with_header(header("Cache-Control", "no-cache"));
    let _ = req.respond(resp);
}

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
