//! `medpick bench serve`: a loopback load test of `medpick serve` — a synthetic datastore of N small images,
//! C concurrent annotators each asking for the next sample and submitting a label, for a bounded number of
//! rounds and seconds; p50/p99/max latency of both routes, a check that no two annotators were given the same
//! image, and a `kill -9` during a label upload (the earlier label intact, no half file).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

#[derive(clap::Args, Debug)]
pub struct ServeBenchArgs {
    /// Images in the synthetic datastore.
    #[arg(long, default_value_t = 10_000)]
    pub images: usize,
    /// Concurrent annotators.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Next-sample + label rounds per annotator.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Stop the load after this many seconds (whatever the rounds).
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,
    /// Pause of each annotator between a label and the next request, in ms (0: as fast as the server answers,
    /// which measures saturation rather than lookup latency).
    #[arg(long, default_value_t = 0)]
    pub think_ms: u64,
    /// Strategy the annotators ask for.
    #[arg(long, default_value = "coreset")]
    pub strategy: String,
    /// Features of the synthetic images (the load test measures the server, not the encoder).
    #[arg(long, default_value = "pixels:16")]
    pub model: String,
    /// Folder for the datastore and bench-serve.json / .md (the datastore is made there if missing).
    #[arg(long, default_value = "results/bench-serve")]
    pub out: PathBuf,
}

const SIDE: u32 = 32;

/// One annotator's run: next-sample and label latencies (ms), the ids it was given, its errors.
type ClientLog = (Vec<f64>, Vec<f64>, Vec<String>, usize);

/// A grey image of blobs (seeded by i), and its mask.
fn synthetic(i: usize) -> (Vec<u8>, Vec<u8>) {
    let mut rng = medpick_core::rng::Rng::new(i as u64 + 1);
    let n = (SIDE * SIDE) as usize;
    let mut img = vec![20u8; n];
    let mut mask = vec![0u8; n];
    for _ in 0..1 + (i % 4) {
        let (cx, cy, r) = (rng.next_f64() * 32.0, rng.next_f64() * 32.0, 2.0 + rng.next_f64() * 6.0);
        let v = 100 + (rng.next_f64() * 150.0) as u8;
        for y in 0..SIDE as usize {
            for x in 0..SIDE as usize {
                if ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)) < r * r {
                    img[y * SIDE as usize + x] = v;
                    mask[y * SIDE as usize + x] = 1;
                }
            }
        }
    }
    (img, mask)
}

fn make_datastore(dir: &Path, n: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let have = std::fs::read_dir(dir)?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png")))
        .count();
    if have == n {
        return Ok(());
    }
    if have != 0 {
        bail!("{}: holds {have} images, not {n}: choose another --out", dir.display());
    }
    for i in 0..n {
        let (img, _) = synthetic(i);
        let png = medpick_server::labels::write_png(&img, SIDE as usize, SIDE as usize)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        std::fs::write(dir.join(format!("img{i:06}.png")), png)?;
    }
    Ok(())
}

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(ds: &Path, model: &str) -> Result<Server> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["serve", "--datastore"])
        .arg(ds)
        .args(["--port", "0", "--model", model, "--cache", "none", "--lease-minutes", "10"])
        .args(crate::backend_args())
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("MEDPICK_SERVE_TRACE").is_some() { Stdio::inherit() } else { Stdio::null() })
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no address in {line:?}"))?;
    Ok(Server(child, port))
}

/// One request on a fresh connection: (status, body).
fn request(port: u16, method: &str, path: &str, ct: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").context("no response")?;
    let status: u16 = std::str::from_utf8(out.get(9..12).context("short response")?)?.parse()?;
    Ok((status, out[split + 4..].to_vec()))
}

fn label_body(mask_png: &[u8]) -> (String, Vec<u8>) {
    let b = "medpickbenchboundary";
    let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{{}}\r\n--{b}\r\nContent-Disposition: form-data; name=\"label\"; filename=\"m.png\"\r\n\r\n").into_bytes();
    body.extend_from_slice(mask_png);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
}

pub fn run(a: ServeBenchArgs) -> Result<bool> {
    std::fs::create_dir_all(&a.out)?;
    let ds = a.out.join("datastore");
    let t = Instant::now();
    make_datastore(&ds, a.images)?;
    // Each run starts from an unlabelled datastore: earlier runs' labels and state go.
    let _ = std::fs::remove_dir_all(ds.join("labels"));
    let _ = std::fs::remove_file(ds.join("datastore_v2.json"));
    eprintln!("datastore: {} images of {SIDE}×{SIDE} in {:.1} s", a.images, t.elapsed().as_secs_f64());
    let srv = start(&ds, &a.model)?;
    let port = srv.1;
    let t = Instant::now();
    loop {
        let (s, b) = request(port, "GET", "/info/", "text/plain", b"")?;
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        if s == 200 && v["medpick"]["embedding"]["state"] == "ready" {
            break;
        }
        if v["medpick"]["embedding"]["state"].as_str().is_some_and(|s| s.starts_with("failed")) {
            bail!("embedding failed: {v}");
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("the server did not finish embedding in 600 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ready_s = t.elapsed().as_secs_f64();
    // The first request plans (not a lookup): timed apart.
    let t = Instant::now();
    let (s, _) = request(
        port,
        "POST",
        &format!("/activelearning/{}?count=1", a.strategy),
        "application/json",
        b"{\"client_id\":\"warmup\"}",
    )?;
    if s != 200 {
        bail!("first next-sample answered {s}");
    }
    let first_plan_s = t.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
    let t_load = Instant::now();
    let results: Vec<ClientLog> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..a.clients)
            .map(|c| {
                let strategy = a.strategy.clone();
                sc.spawn(move || {
                    let (mut next, mut label, mut ids, mut errors) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
                    for _ in 0..a.rounds {
                        if Instant::now() > deadline {
                            break;
                        }
                        let body = format!("{{\"client_id\":\"annotator-{c}\"}}");
                        let t = Instant::now();
                        let r = request(
                            port,
                            "POST",
                            &format!("/activelearning/{strategy}"),
                            "application/json",
                            body.as_bytes(),
                        );
                        next.push(t.elapsed().as_secs_f64() * 1e3);
                        let Ok((200, b)) = r else {
                            errors += 1;
                            continue;
                        };
                        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                        let Some(id) = v["id"].as_str().map(str::to_string) else { break };
                        let i: usize = id.trim_start_matches("img").parse().unwrap_or(0);
                        let (_, mask) = synthetic(i);
                        let png =
                            medpick_server::labels::write_png(&mask, SIDE as usize, SIDE as usize).unwrap_or_default();
                        let (ct, body) = label_body(&png);
                        let t = Instant::now();
                        let r = request(port, "PUT", &format!("/datastore/label?image={id}"), &ct, &body);
                        label.push(t.elapsed().as_secs_f64() * 1e3);
                        if !matches!(r, Ok((200, _))) {
                            errors += 1;
                        }
                        ids.push(id);
                        if a.think_ms > 0 {
                            std::thread::sleep(Duration::from_millis(a.think_ms));
                        }
                    }
                    (next, label, ids, errors)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let load_s = t_load.elapsed().as_secs_f64();
    let mut next: Vec<f64> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let mut label: Vec<f64> = results.iter().flat_map(|r| r.1.iter().copied()).collect();
    let errors: usize = results.iter().map(|r| r.3).sum();
    let mut all_ids: Vec<&String> = results.iter().flat_map(|r| r.2.iter()).collect();
    let given = all_ids.len();
    all_ids.sort();
    all_ids.dedup();
    let duplicates = given - all_ids.len();
    let (_, b) = request(port, "GET", "/datastore/?output=stats", "text/plain", b"")?;
    let stats: serde_json::Value = serde_json::from_slice(&b)?;
    drop(srv);
    // kill -9 during an upload.
    let kill_ok = kill_check(&ds, &a.model)?;
    let row = |name: &str, v: &mut Vec<f64>| {
        let n = v.len();
        serde_json::json!({"route": name, "requests": n, "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99), "max_ms": pct(v, 1.0)})
    };
    let json = serde_json::json!({
        "images": a.images, "clients": a.clients, "rounds": a.rounds, "think_ms": a.think_ms, "strategy": a.strategy, "model": a.model,
        "threads": medpick_core::cpu::par::threads(), "embedding_s": ready_s, "first_plan_s": first_plan_s,
        "load_s": load_s, "errors": errors, "samples_given": given, "duplicates_across_annotators": duplicates,
        "labels_completed": stats["completed"],
        "routes": [row("POST /activelearning/{strategy}", &mut next), row("PUT /datastore/label", &mut label)],
        "kill_9_mid_upload": if kill_ok { "earlier label intact, no half file" } else { "FAILED" },
    });
    let mut md = format!(
        "# medpick bench serve\n\n{} images ({SIDE}×{SIDE}, model {}), {} annotators × {} rounds of next sample ({}) + label \
         upload, {} ms pause between rounds, loopback, {} CPU threads.\nEmbedding {:.1} s; first plan {:.3} s; load {:.1} s; {} errors; {} samples \
         given, {} given to two annotators; kill -9 mid-upload: {}.\n\n| route | requests | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n",
        a.images, a.model, a.clients, a.rounds, a.strategy, a.think_ms, json["threads"], ready_s, first_plan_s, load_s, errors, given,
        duplicates, json["kill_9_mid_upload"].as_str().unwrap_or("")
    );
    for r in json["routes"].as_array().into_iter().flatten() {
        md += &format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} |\n",
            r["route"].as_str().unwrap_or(""),
            r["requests"],
            r["p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["p99_ms"].as_f64().unwrap_or(f64::NAN),
            r["max_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    print!("{md}");
    std::fs::write(a.out.join("bench-serve.json"), serde_json::to_string_pretty(&json)?)?;
    std::fs::write(a.out.join("bench-serve.md"), &md)?;
    Ok(errors == 0 && duplicates == 0 && kill_ok)
}

/// Label an image, start a second (large) upload for it, SIGKILL the server half-way: the first label must be
/// whole and alone.
fn kill_check(ds: &Path, model: &str) -> Result<bool> {
    let _ = std::fs::remove_dir_all(ds.join("labels"));
    let _ = std::fs::remove_file(ds.join("datastore_v2.json"));
    let srv = start(ds, model)?;
    let port = srv.1;
    let id = "img000000";
    let (_, mask) = synthetic(0);
    let png = medpick_server::labels::write_png(&mask, SIDE as usize, SIDE as usize)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let (ct, body) = label_body(&png);
    let (s, _) = request(port, "PUT", &format!("/datastore/label?image={id}"), &ct, &body)?;
    if s != 200 {
        bail!("kill check: first label answered {s}");
    }
    let (ct, big) = label_body(&vec![1u8; 16 << 20]);
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(format!("PUT /datastore/label?image={id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n", big.len()).as_bytes())?;
    s.write_all(&big[..big.len() / 2])?;
    std::thread::sleep(Duration::from_millis(200));
    drop(srv); // SIGKILL
    let dir = ds.join("labels/final");
    let ok_file = std::fs::read(dir.join(format!("{id}.png"))).map(|b| b == png).unwrap_or(false);
    let stray: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png") && p.file_stem().is_some_and(|s| s != id))
        .collect();
    let state_ok = std::fs::read_to_string(ds.join("datastore_v2.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some();
    Ok(ok_file && stray.is_empty() && state_ok)
}
