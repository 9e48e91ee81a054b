//! `medpick web`: serve the browser app (web/ with its wasm build) and the default model's weights on this
//! machine, for on-premise use. Loopback only unless --host says otherwise; GET/HEAD of files only. A
//! Content-Security-Policy confines the page to this origin, so the browser itself refuses any request to
//! another site.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use medpick_core::serve::{content_type, find_web_dir, host_allowed, resolve, SECURITY_HEADERS, WEIGHTS_URL};

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
    let port = addr.port();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (server, root, weights, host) = (server.clone(), root.clone(), weights.clone(), a.host.to_string());
            std::thread::spawn(move || {
                for req in server.incoming_requests() {
                    respond(req, &root, weights.as_deref(), (&host, port));
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn respond(req: tiny_http::Request, root: &Path, weights: Option<&Path>, (bind_host, port): (&str, u16)) {
    use tiny_http::{Header, Method, Response};
    let header = |k: &str, v: &str| Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("static header");
    // Every response, errors included, carries the security headers.
    let error = |req: tiny_http::Request, code: u16, text: String| {
        let resp = Response::from_string(text).with_status_code(code);
        let _ = req.respond(secured(resp.with_header(header("Content-Type", "text/plain; charset=utf-8")), &header));
    };
    let host = req.headers().iter().find(|h| h.field.equiv("Host")).map(|h| h.value.as_str().to_string());
    if !host_allowed(host.as_deref(), bind_host, port) {
        return error(req, 421, format!("this server answers localhost only, not {}", host.unwrap_or_default()));
    }
    let method = req.method().clone();
    if method != Method::Get && method != Method::Head {
        return error(req, 405, "method not allowed".into());
    }
    let url = req.url().to_string();
    let file =
        if url.split('?').next() == Some(WEIGHTS_URL) { weights.map(Path::to_path_buf) } else { resolve(root, &url) };
    let Some(file) = file else {
        return error(req, 404, "not found".into());
    };
    let f = match std::fs::File::open(&file) {
        Ok(f) => f,
        Err(e) => return error(req, 500, format!("cannot read: {e}")),
    };
    // tiny_http sends no body for HEAD.
    let resp = Response::from_file(f).with_header(header("Content-Type", content_type(&file)));
    let _ = req.respond(secured(resp, &header));
}

/// `resp` with the security headers every response carries, errors included.
fn secured<R: std::io::Read>(
    mut resp: tiny_http::Response<R>,
    header: &dyn Fn(&str, &str) -> tiny_http::Header,
) -> tiny_http::Response<R> {
    for (k, v) in SECURITY_HEADERS {
        resp = resp.with_header(header(k, v));
    }
    resp
}
