//! `medpick serve` end to end: MONAI Label's own Python client and 3D Slicer's copy of it (from the monailabel
//! 0.8.5 wheel, unmodified) against the binary on a datastore of DSB2018 images and the MNI152 volume; and the
//! server's reliability and security: a `kill -9` during a label upload, the Host check, the token, links that
//! leave the datastore, an oversized body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::cli::{medpick, tmp};
use crate::common::{litemedsam_path, shared};

pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `medpick serve` on a free port and wait for its address line.
pub(crate) fn start(datastore: &Path, extra: &[&str]) -> Server {
    start_env(datastore, extra, &[])
}

fn start_env(datastore: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(medpick());
    cmd.envs(env.iter().copied());
    cmd.args(["serve", "--datastore"]).arg(datastore).args(["--port", "0", "--device", "cpu"]).args(extra);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn medpick serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Server { child, port }
}

/// One HTTP/1.1 request (Connection: close): (status, body).
pub(crate) fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let (status, _, body) = http_head(port, method, path, headers, body);
    (status, body)
}

/// [`http`] with the response's head (status line and headers, lower-cased).
fn http_head(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req += &format!("Host: 127.0.0.1:{port}\r\n");
    }
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a response");
    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let mut body = out[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    (status, head, body)
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

/// Start a label upload of `body` (whose full length the headers declare), sending only `part` of it.
fn send_upload(port: u16, id: &str, ct: &str, body: &[u8], part: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "PUT /datastore/label?image={id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..part]).unwrap();
    s
}

pub(crate) fn multipart(file_field: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----------lImIt_of_THE_fIle_eW_$";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{{}}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A datastore of `n` DSB2018 images (and optionally the MNI152 T1 volume).
fn datastore(name: &str, data: &Path, n: usize, volume: bool) -> PathBuf {
    let d = tmp(name);
    let mut imgs: Vec<PathBuf> =
        std::fs::read_dir(data.join("dsb2018/images")).unwrap().map(|e| e.unwrap().path()).collect();
    imgs.sort();
    for p in imgs.iter().take(n) {
        std::fs::copy(p, d.join(p.file_name().unwrap())).unwrap();
    }
    if volume {
        // 24 axial slices through the middle of the brain (an inference runs the encoder on every slice).
        // Its grey-matter map, the volume's label in the client test, goes beside the datastore, not into it.
        std::fs::create_dir_all(d.with_extension("gm")).unwrap();
        crate::common::mni_slab(&d, &d.with_extension("gm"), 82, 106).unwrap();
    }
    d
}

/// The monailabel 0.8.5 wheel scripts/setup.sh downloads (for its client.py).
fn monailabel_wheel() -> Option<PathBuf> {
    let cache = std::env::var("MEDPICK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/medpick"));
    let found = std::fs::read_dir(cache.join("wheels"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("monailabel-0.8.5")));
    if found.is_none() {
        assert!(!std::env::var("REQUIRE_WEIGHTS").is_ok_and(|v| v == "1"), "REQUIRE_WEIGHTS: no monailabel wheel");
        eprintln!("skipped: no monailabel-0.8.5 wheel in {} (scripts/setup.sh fetches it)", cache.display());
    }
    found
}

#[test]
fn monailabel_python_and_slicer_clients_drive_medpick_serve() {
    let (Some(data), Some(_w), Some(wheel)) = (shared(), litemedsam_path(), monailabel_wheel()) else { return };
    let ds = datastore("serve-clients", &data.join("data"), 12, true);
    let cache = ds.with_file_name(format!("{}-cache", ds.file_name().unwrap().to_string_lossy()));
    let srv = start(&ds, &["--cache", cache.to_str().unwrap(), "--labels", "foreground"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/monailabel_clients.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&wheel)
        .arg(format!("http://127.0.0.1:{}", srv.port))
        .arg(&ds)
        .arg(data.join("data/dsb2018/instance_labels"))
        .arg(ds.with_extension("gm").join("mni_gm.nii.gz"))
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client script failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("OK"), "{stdout}");
    eprintln!("{stdout}");
    // What medpick wrote is MONAI Label's layout: labels/final/<id><ext>, datastore_v2.json with objects (the
    // state file follows the labels within a second).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ds.join("datastore_v2.json")).unwrap()).unwrap();
    let objects = state["objects"].as_object().unwrap();
    assert_eq!(objects.len(), 13);
    for (id, o) in objects {
        let ext = o["labels"]["final"]["ext"].as_str().unwrap_or_else(|| panic!("{id}: no final label"));
        assert!(ds.join("labels/final").join(format!("{id}{ext}")).is_file(), "{id}{ext}");
    }
    drop(srv);
    let _ = std::fs::remove_dir_all(&ds);
    let _ = std::fs::remove_dir_all(ds.with_extension("gm"));
    let _ = std::fs::remove_dir_all(&cache);
}

/// A label upload killed with SIGKILL half-way loses no earlier label and leaves no half file; the server
/// restarts on the same datastore with every label in place.
#[test]
fn kill_9_during_a_label_upload_loses_nothing() {
    let Some(data) = shared() else { return };
    let ds = datastore("serve-kill", &data.join("data"), 2, false);
    let srv = start(&ds, &["--model", "pixels", "--cache", "none"]);
    let (status, body) = http(srv.port, "GET", "/datastore/?output=all", &[], b"");
    assert_eq!(status, 200);
    let all: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = all["objects"].as_object().unwrap().keys().next().unwrap().clone();
    let mask = std::fs::read(data.join(format!("data/dsb2018/instance_labels/{id}.png"))).unwrap();
    let (ct, first) = multipart("label", "C:\\Users\\me\\label.png", &mask);
    let (status, body) =
        http(srv.port, "PUT", &format!("/datastore/label?image={id}"), &[("Content-Type", &ct)], &first);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let final_path = ds.join(format!("labels/final/{id}.png"));
    assert_eq!(std::fs::read(&final_path).unwrap(), mask);
    // A second upload: headers and half of a large body, then SIGKILL.
    let big = vec![7u8; 8 << 20];
    let (ct, second) = multipart("label", "label.png", &big);
    let _s = send_upload(srv.port, &id, &ct, &second, second.len() / 2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut srv = srv;
    srv.child.kill().unwrap(); // SIGKILL
    srv.child.wait().unwrap();
    assert_eq!(std::fs::read(&final_path).unwrap(), mask, "the earlier label is intact");
    let names: Vec<String> = std::fs::read_dir(ds.join("labels/final"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(names, vec![format!("{id}.png")], "no half file beside the label");
    // A crash after the new label is written and synced but before its rename (a test hook aborts the server
    // there): the old label stays, the half-done one is a hidden temporary file, removed at the next start.
    let srv = start_env(&ds, &["--model", "pixels", "--cache", "none"], &[("MEDPICK_SERVE_FAILPOINT", "label-staged")]);
    // A valid label that differs from the first (an empty NRRD labelmap of the image's size).
    let img = medpick_core::io::decode_image_file(&ds.join(format!("{id}.png")), 1 << 26).unwrap();
    let mut other =
        format!("NRRD0004\ntype: uint8\ndimension: 2\nsizes: {} {}\nencoding: raw\n\n", img.width, img.height)
            .into_bytes();
    other.resize(other.len() + (img.width * img.height) as usize, 0);
    let (ct, third) = multipart("label", "label.seg.nrrd", &other);
    let mut s = send_upload(srv.port, &id, &ct, &third, third.len());
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink); // the server dies: no answer
    let mut srv = srv;
    let status = srv.child.wait().unwrap();
    assert!(!status.success(), "the hook aborted the server");
    assert_eq!(std::fs::read(&final_path).unwrap(), mask, "the label before the crash is intact");
    assert!(!ds.join(format!("labels/final/{id}.nrrd")).exists(), "the new label was never put in place");
    let hidden = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
            .count()
    };
    assert_eq!(hidden(&ds.join("labels/final")), 1, "the staged file is hidden beside it");
    let srv = start(&ds, &["--model", "pixels", "--cache", "none"]);
    assert_eq!(hidden(&ds.join("labels/final")), 0, "removed at start");
    let (status, body) = http(srv.port, "GET", "/datastore/?output=stats", &[], b"");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["completed"], 1, "{stats}");
    // A second server on the same datastore is refused (one writer of datastore_v2.json).
    let out = Command::new(medpick())
        .args(["serve", "--datastore"])
        .arg(&ds)
        .args(["--port", "0", "--model", "pixels"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("another server"));
    drop(srv);
    let _ = std::fs::remove_dir_all(&ds);
}

/// `DELETE /train/` stops a running training before its next step (it does not run its epochs out), and the
/// head of the stopped training is not saved.
#[test]
fn delete_train_stops_a_training_between_steps() {
    let Some(data) = shared() else { return };
    if litemedsam_path().is_none() {
        return;
    }
    let ds = datastore("serve-train-stop", &data.join("data"), 2, false);
    let srv = start(&ds, &["--cache", "none"]);
    let p = srv.port;
    let (_, body) = http(p, "GET", "/datastore/?output=all", &[], b"");
    let all: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = all["objects"].as_object().unwrap().keys().next().unwrap().clone();
    let mask = std::fs::read(data.join(format!("data/dsb2018/instance_labels/{id}.png"))).unwrap();
    let (ct, form) = multipart("label", "label.png", &mask);
    let (status, body) = http(p, "PUT", &format!("/datastore/label?image={id}"), &[("Content-Type", &ct)], &form);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // 1000 epochs of one step each: minutes of work, stopped after its first steps.
    let (status, body) =
        http(p, "POST", "/train/medpick_seg", &[("Content-Type", "application/json")], b"{\"max_epochs\": 1000}");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let iteration = || {
        let (_, body) = http(p, "GET", "/info/", &[], b"");
        let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
        info["train_stats"]["medpick_seg"]["current_iteration"].as_u64().unwrap_or(0)
    };
    let t0 = std::time::Instant::now();
    while iteration() < 2 {
        assert!(t0.elapsed().as_secs() < 300, "training never reached its second step");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, body) = http(p, "DELETE", "/train/", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // The answer says STOPPED at once (as MONAI Label's); the training thread itself ends at its next step.
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["status"], "STOPPED", "{answer}");
    let t1 = std::time::Instant::now();
    while http(p, "GET", "/train/?check_if_running=true", &[], b"").0 != 404 {
        assert!(t1.elapsed().as_secs() < 60, "still running a minute after DELETE /train/");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (_, body) = http(p, "GET", "/train/", &[], b"");
    let task: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(task["status"], "STOPPED", "{task}");
    let result = task["result"].as_str().unwrap_or_default();
    assert!(result.contains("training stopped at step") && result.contains("of 1000"), "{task}");
    let at = iteration();
    assert!((2..1000).contains(&at), "stopped at step {at}");
    assert!(!ds.join(".medpick/models/medpick_seg.json").exists(), "the stopped training's head was saved");
    // The server trains again afterwards.
    let (status, _) =
        http(p, "POST", "/train/medpick_seg", &[("Content-Type", "application/json")], b"{\"max_epochs\": 1}");
    assert_eq!(status, 200);
    drop(srv);
    let _ = std::fs::remove_dir_all(&ds);
}

#[test]
fn serve_refuses_hostile_requests_and_keeps_serving() {
    let Some(data) = shared() else { return };
    let ds = datastore("serve-hostile", &data.join("data"), 3, false);
    // A link to an image outside the datastore is not part of it.
    let outside = tmp("serve-outside");
    let img = std::fs::read_dir(data.join("data/dsb2018/images")).unwrap().last().unwrap().unwrap().path();
    std::fs::copy(&img, outside.join("secret.png")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.join("secret.png"), ds.join("leak.png")).unwrap();
    let srv = start(&ds, &["--model", "pixels", "--cache", "none", "--max-body-mib", "1"]);
    let p = srv.port;
    let (_, body) = http(p, "GET", "/datastore/?output=stats", &[], b"");
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["total"], 3, "the link that leaves the datastore is not an image of it: {stats}");
    assert_eq!(http(p, "GET", "/datastore/image?image=leak", &[], b"").0, 404);
    assert_eq!(http(p, "GET", "/datastore/image?image=..%2F..%2Fetc%2Fpasswd", &[], b"").0, 400);
    // DNS rebinding: another name for 127.0.0.1 is refused.
    assert_eq!(http(p, "GET", "/info/", &[("Host", "evil.example")], b"").0, 421);
    // A page on another site driving the server through the user's browser.
    let csrf = [("Origin", "http://evil.example"), ("Content-Type", "text/plain")];
    assert_eq!(http(p, "POST", "/activelearning/random?count=3", &csrf, b"{}").0, 403);
    assert_eq!(http(p, "POST", "/train/medpick_seg", &[("Sec-Fetch-Site", "cross-site")], b"{}").0, 403);
    // A body over --max-body-mib.
    let id = {
        let (_, b) = http(p, "GET", "/datastore/?output=all", &[], b"");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        v["objects"].as_object().unwrap().keys().next().unwrap().clone()
    };
    let (ct, big) = multipart("label", "x.png", &vec![0u8; 2 << 20]);
    let (status, _) = http(p, "PUT", &format!("/datastore/label?image={id}"), &[("Content-Type", &ct)], &big);
    assert_eq!(status, 413, "a body over the limit");
    // A label that is not an image, and one of the wrong size: 400 naming the problem.
    let (ct, junk) = multipart("label", "x.png", b"not a png");
    let (status, body) = http(p, "PUT", &format!("/datastore/label?image={id}"), &[("Content-Type", &ct)], &junk);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (ct, nii) = multipart("label", "x.exe", b"MZ");
    assert_eq!(http(p, "PUT", &format!("/datastore/label?image={id}"), &[("Content-Type", &ct)], &nii).0, 400);
    assert_eq!(http(p, "POST", "/activelearning/nope", &[], b"{}").0, 400);
    // Still serving, and no label was written.
    let (status, body) = http(p, "GET", "/datastore/?output=stats", &[], b"");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["completed"], 0);
    drop(srv);
    // Binding beyond loopback needs a token; with one, every route but /auth/ needs it.
    let out = Command::new(medpick())
        .args(["serve", "--datastore"])
        .arg(&ds)
        .args(["--host", "0.0.0.0", "--port", "0", "--model", "pixels"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"), "{}", String::from_utf8_lossy(&out.stderr));
    let token_file = outside.join("token");
    std::fs::write(&token_file, "0123456789abcdef0123\n").unwrap();
    let srv = start(&ds, &["--model", "pixels", "--cache", "none", "--token-file", token_file.to_str().unwrap()]);
    let (status, body) = http(srv.port, "GET", "/auth/", &[], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("\"enabled\":true"));
    assert_eq!(http(srv.port, "GET", "/info/", &[], b"").0, 401);
    assert_eq!(http(srv.port, "GET", "/info/", &[("Authorization", "Bearer wrong-token-xxxxxxx")], b"").0, 401);
    assert_eq!(http(srv.port, "GET", "/info/", &[("Authorization", "Bearer 0123456789abcdef0123")], b"").0, 200);
    // OHIF's pages cannot send the header: a browser opening /ohif/ is sent to the sign-in form, whose cookie (the
    // token's SHA-256, HttpOnly, SameSite=Strict) then stands for the header on the same site only.
    let p = srv.port;
    let (status, head, _) = http_head(p, "GET", "/ohif/", &[], b"");
    assert!(status == 303 && head.contains("location: /auth/login"), "{head}");
    let (status, _, page) = http_head(p, "GET", "/auth/login", &[], b"");
    assert!(status == 200 && String::from_utf8_lossy(&page).contains("name=\"token\""));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(http(p, "POST", "/auth/login", &form, b"token=0123456789abcdef0124").0, 401);
    let cross = [form[0], ("Sec-Fetch-Site", "cross-site")];
    assert_eq!(http(p, "POST", "/auth/login", &cross, b"token=0123456789abcdef0123").0, 403);
    let (status, head, _) = http_head(p, "POST", "/auth/login", &form, b"token=0123456789abcdef0123");
    assert!(status == 303 && head.contains("location: /ohif/"), "{head}");
    let cookie = head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).expect("a cookie").to_string();
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=strict") && !cookie.contains("0123456789abcdef0123")
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    assert_eq!(http(p, "GET", "/proxy/dicom/qido/studies", &[("Cookie", &pair)], b"").0, 200);
    let two = format!("a=b; {pair}");
    assert_eq!(http(p, "GET", "/info/", &[("Cookie", &two)], b"").0, 200);
    assert_eq!(http(p, "GET", "/info/", &[("Cookie", "medpick_token=00")], b"").0, 401);
    assert_eq!(http(p, "GET", "/info/", &[("Cookie", &pair), ("Sec-Fetch-Site", "cross-site")], b"").0, 403);
    drop(srv);
    let _ = std::fs::remove_dir_all(&ds);
    let _ = std::fs::remove_dir_all(&outside);
}

/// A minimal NIfTI-1 uint8 volume (what 3D Slicer or MONAI Label save as a label).
pub(crate) fn nifti_u8(dims: [usize; 3], value_at: impl Fn(usize, usize, usize) -> u8) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let dim = [3i16, dims[0] as i16, dims[1] as i16, dims[2] as i16, 1, 1, 1, 1];
    for (i, d) in dim.iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&2i16.to_le_bytes()); // uint8
    h[72..74].copy_from_slice(&8i16.to_le_bytes());
    for i in 0..8 {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[112..116].copy_from_slice(&1f32.to_le_bytes()); // scl_slope
    h[344..348].copy_from_slice(b"n+1\0");
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            for x in 0..dims[0] {
                h.push(value_at(x, y, z));
            }
        }
    }
    h
}

#[test]
fn a_dicom_series_folder_is_one_image_of_the_datastore() {
    let Some(data) = shared() else { return };
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let ds = datastore("serve-series", &data.join("data"), 3, false);
    // Five CT slices 5 mm apart, written in shuffled file order, plus a note that is not a slice.
    let series = ds.join("ct_series");
    std::fs::create_dir_all(&series).unwrap();
    for (i, z) in [(3, 15.0f64), (0, 0.0), (4, 20.0), (1, 5.0), (2, 10.0)] {
        let mut obj = dicom_object::open_file(data.join("data/dicom/CT_small.dcm")).unwrap();
        obj.put(DataElement::new(tags::IMAGE_POSITION_PATIENT, VR::DS, PrimitiveValue::from(format!("0\\0\\{z}"))));
        obj.put(DataElement::new(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, PrimitiveValue::from("1\\0\\0\\0\\1\\0")));
        obj.put(DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.4.5")));
        obj.put(DataElement::new(tags::INSTANCE_NUMBER, VR::IS, PrimitiveValue::from(format!("{}", i + 1))));
        obj.write_to_file(series.join(format!("IM{i:04}.dcm"))).unwrap();
    }
    std::fs::write(series.join("notes.txt"), "acquired 2026").unwrap();
    // A link in the series to a file outside the datastore is never served.
    let outside = tmp("serve-series-outside");
    std::fs::write(outside.join("secret.dcm"), b"patient list").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.join("secret.dcm"), series.join("IM9999.dcm")).unwrap();
    // A slice in a sub-folder is not part of the series (neither its slices nor its zip).
    std::fs::create_dir_all(series.join("extra")).unwrap();
    std::fs::copy(series.join("IM0000.dcm"), series.join("extra/IM0100.dcm")).unwrap();
    // A folder without DICOM files is not an image.
    std::fs::create_dir_all(ds.join("misc")).unwrap();
    std::fs::write(ds.join("misc/readme.txt"), "x").unwrap();
    let srv = start(&ds, &["--model", "pixels", "--cache", "none"]);
    let p = srv.port;
    let get_json = |path: &str| -> serde_json::Value {
        let (status, body) = http(p, "GET", path, &[], b"");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    };
    let all = get_json("/datastore/?output=all");
    let objects = all["objects"].as_object().unwrap();
    assert_eq!(objects.len(), 4, "3 images and the series: {all}");
    assert_eq!(objects["ct_series"]["image"]["ext"], "", "{all}");
    assert!(!objects.contains_key("misc"));
    // Every image embedded, the series included (from its slices).
    let mut emb = serde_json::Value::Null;
    for _ in 0..600 {
        emb = get_json("/info/")["medpick"]["embedding"].clone();
        if emb["features"] == 4 || !emb["skipped"].as_array().is_none_or(|v| v.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(emb["features"], 4, "{emb}");
    let (status, body) = http(p, "POST", "/activelearning/random?count=10", &[], b"{}");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("ct_series"), "{}", String::from_utf8_lossy(&body));
    // The download is a zip of the slices (not the note), the same bytes each time, its checksum checked.
    let (status, zip1) = http(p, "GET", "/datastore/image?image=ct_series", &[], b"");
    assert_eq!(status, 200);
    assert!(zip1.starts_with(b"PK\x03\x04"));
    let (_, zip2) = http(p, "GET", "/datastore/image?image=ct_series", &[], b"");
    assert_eq!(zip1, zip2);
    let entries = zip1.windows(4).filter(|w| w == b"PK\x01\x02").count();
    assert_eq!(entries, 6, "the folder's six files (five slices and the note, not the link out)");
    assert!(!zip1.windows(12).any(|w| w == b"patient list"));
    let sum = medpick_core::io::weights::sha256_hex(&zip1);
    assert_eq!(http(p, "HEAD", &format!("/datastore/image?image=ct_series&check_sum=SHA256:{sum}"), &[], b"").0, 200);
    assert_eq!(http(p, "HEAD", "/datastore/image?image=ct_series&check_sum=00", &[], b"").0, 404);
    // A label is a volume of the series' size: 128 × 128 × 5; four slices are refused, naming the sizes.
    let (ct, bad) = multipart("label", "ct_series.nii", &nifti_u8([128, 128, 4], |_, _, _| 1));
    let (status, body) = http(p, "PUT", "/datastore/label?image=ct_series", &[("Content-Type", &ct)], &bad);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (ct, good) = multipart("label", "ct_series.nii", &nifti_u8([128, 128, 5], |x, y, _| (x > 40 && y > 40) as u8));
    let (status, body) = http(p, "PUT", "/datastore/label?image=ct_series", &[("Content-Type", &ct)], &good);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(ds.join("labels/final/ct_series.nii").is_file());
    assert_eq!(get_json("/datastore/?output=stats")["completed"], 1);
    drop(srv);
    // With LiteMedSAM the head trains on the series' labelled slices and infers a label volume of its size, the
    // slices in the series' order (along the normal), with its 5 mm slice spacing.
    if litemedsam_path().is_some() {
        let srv = start(&ds, &["--cache", "none"]);
        let p = srv.port;
        let (status, body) =
            http(p, "POST", "/train/medpick_seg", &[("Content-Type", "application/json")], b"{\"max_epochs\": 3}");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let mut info = serde_json::Value::Null;
        for _ in 0..600 {
            let (_, body) = http(p, "GET", "/train/", &[], b"");
            info = serde_json::from_slice(&body).unwrap();
            if info["status"] != "RUNNING" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        assert_eq!(info["status"], "DONE", "{info}");
        let (_, body) = http(p, "GET", "/info/", &[], b"");
        let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let notes = stats["train_stats"]["medpick_seg"]["notes"].to_string();
        assert!(notes.contains("ct_series: 5 labelled slices of a volume"), "{notes}");
        let (ct, form) = multipart("unused", "unused.txt", b"");
        let (status, body) =
            http(p, "POST", "/infer/medpick_seg?image=ct_series&output=image", &[("Content-Type", &ct)], &form);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v = medpick_core::io::nifti::read_volume_bytes(std::path::Path::new("ct_series.nii.gz"), &body, 0, 1 << 24)
            .unwrap();
        assert_eq!(v.dims, [128, 128, 5]);
        assert!((v.spacing[2] - 5.0).abs() < 1e-3, "{:?}", v.spacing);
        let hd = medpick_core::io::nifti::header_bytes(std::path::Path::new("ct_series.nii.gz"), &body).unwrap();
        assert_eq!((hd.sform_code, hd.srow_z), (1, [0.0, 0.0, 5.0, 0.0]), "DICOM's geometry: 5 mm slices from z = 0");
        assert!(v.data.iter().all(|&x| x == 0.0 || x == 1.0));
        drop(srv);
    }
    let _ = std::fs::remove_dir_all(&ds);
    let _ = std::fs::remove_dir_all(&outside);
}
