//! End-to-end runs of the `medpick` binary. scripts/test.sh builds it first (`cargo build -p medpick`);
//! MEDPICK_BIN overrides the path.

use std::path::PathBuf;
use std::process::Command;

use crate::common::shared;

pub fn medpick() -> PathBuf {
    if let Ok(p) = std::env::var("MEDPICK_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/root-<hash> → target/<profile>/medpick
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe.parent().and_then(|d| d.parent()).map(|d| d.join("medpick")).expect("target dir");
    assert!(bin.exists(), "{} not built: run `cargo build -p medpick` first (scripts/test.sh does)", bin.display());
    bin
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("medpick-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["gpu-info", "--help"],
        vec!["selftest", "--help"],
        vec!["ingest", "--help"],
        vec!["embed", "--help"],
        vec!["select", "--help"],
        vec!["bench", "kernels", "--help"],
        vec!["bench", "encoder", "--help"],
        vec!["bench", "select", "--help"],
        vec!["web", "--help"],
        vec!["serve", "--help"],
        vec!["segment", "--help"],
    ] {
        let out = Command::new(medpick()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
}

#[test]
fn ingest_bad_corpus_lists_skipped_and_exits_3() {
    let dir = tmp("bad");
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/bad");
    let out = Command::new(medpick()).arg("ingest").arg(&bad).arg("--out").arg(dir.join("m.jsonl")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "skips exit 3: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("5 samples written"), "{stdout}");
    assert!(stdout.contains("skipped   9 files"), "{stdout}");
    assert!(stdout.contains("huge_header.png") && stdout.contains("size cap"), "{stdout}");
    assert!(dir.join("m.split.csv").exists());
    // A second run must not overwrite what the first wrote.
    let again = Command::new(medpick()).arg("ingest").arg(&bad).arg("--out").arg(dir.join("m.jsonl")).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let strict = Command::new(medpick())
        .arg("ingest")
        .arg(&bad)
        .args(["--strict", "--force", "--out"])
        .arg(dir.join("m.jsonl"))
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(3), "--strict (the default) exits 3 when files were skipped");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ingest_summaries_of_the_shared_datasets() {
    let Some(sh) = shared() else { return };
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("data/kvasir-seg", vec![], vec!["1000 samples written", "masks     1000 samples"]),
        ("data/dsb2018", vec![], vec!["664 samples written", "instances 28986"]),
        ("data/chase-db1", vec!["--mask-suffix", "_1stHO,_2ndHO"], vec!["28 samples written", "masks     28 samples"]),
        (
            "data/medmnist/breastmnist.npz",
            vec![],
            vec!["780 samples written", "split     train 546, val 78, test 156", "labels    2 classes"],
        ),
        (
            "data/nifti-mni152",
            vec!["--axis", "all", "--window", "auto"],
            vec!["1857 samples written", "nifti        1857"],
        ),
        ("data/dicom", vec!["--window", "soft-tissue"], vec!["3 samples written", "README.txt"]),
    ];
    let dir = tmp("shared");
    for (i, (path, extra, expect)) in cases.iter().enumerate() {
        let out = Command::new(medpick())
            .arg("ingest")
            .arg(sh.join(path))
            .args(extra)
            .arg("--out")
            .arg(dir.join(format!("m{i}.jsonl")))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{path}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        for e in expect {
            assert!(stdout.contains(e), "{path}: expected '{e}' in:\n{stdout}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The main job end to end on four bundled images: embed (LiteMedSAM on the GPU), select, write the CSV; a
/// second run resumes entirely from the feature cache and picks the same ids.
#[test]
fn select_end_to_end_with_cache_resume() {
    if crate::models_available().is_none() {
        return;
    }
    let dir = tmp("select");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018/images");
    let mut names: Vec<_> = std::fs::read_dir(&sample).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names.iter().step_by(6).take(4) {
        std::fs::copy(p, data.join(p.file_name().unwrap())).unwrap();
    }
    let run = |out: &str| {
        let o = Command::new(medpick())
            .arg("select")
            .arg(&data)
            .arg("--cache")
            .arg(dir.join("cache"))
            .args(["--budget", "2", "--strategy", "coreset", "--seed", "1", "--json", "--out"])
            .arg(dir.join(out))
            .output()
            .unwrap();
        let (so, se) =
            (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
        assert!(o.status.success(), "{so}\n{se}");
        (so, se)
    };
    let (out1, err1) = run("a.csv");
    assert!(err1.contains("4 new") && out1.contains("evidence (") && out1.contains("evidence.md"), "{out1}{err1}");
    let (_, err2) = run("b.csv");
    assert!(err2.contains("0 new") && err2.contains("4 from cache"), "{err2}");
    let a = std::fs::read_to_string(dir.join("a.csv")).unwrap();
    let b = std::fs::read_to_string(dir.join("b.csv")).unwrap();
    assert_eq!(a, b, "same seed, same picks");
    let lines: Vec<_> = a.lines().collect();
    assert_eq!(lines[0], "rank,id,score,strategy,seed");
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("1,") && lines[1].ends_with(",coreset,1"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("a.json")).unwrap()).unwrap();
    assert_eq!(json["picks"].as_array().unwrap().len(), 2);
    // The feature file path: select straight from features.
    let o = Command::new(medpick())
        .arg("embed")
        .arg(&data)
        .arg("--cache")
        .arg(dir.join("cache"))
        .arg("--out")
        .arg(dir.join("f.safetensors"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f = medpick_core::features::Features::read(&dir.join("f.safetensors")).unwrap();
    assert_eq!((f.ids.len(), f.dim, f.model.as_str(), f.pool.as_str()), (4, 256, "litemedsam", "mean"));
    let o = Command::new(medpick())
        .arg("select")
        .arg(dir.join("f.safetensors"))
        .args(["--budget", "2", "--strategy", "all", "--out"])
        .arg(dir.join("all.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("all.typiclust.csv").exists() && dir.join("all.repdiv.csv").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// DINOv2 through the same embed path (the tiny random-weight fixture model stands in for dinov2-small).
#[test]
fn embed_with_dinov2_weights_and_config() {
    let Some(sh) = shared() else { return };
    let dir = tmp("dinov2");
    // `medpick embed` of the DSB2018 sample with the tiny fixture model, CLS pooling, into `name`.
    let embed = |extra: &[&str], name: &str| {
        let o = Command::new(medpick())
            .arg("embed")
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018"))
            .args(["--model", "dinov2", "--pool", "cls", "--weights"])
            .arg(sh.join("fixtures/dinov2/tiny_registers/model.safetensors"))
            .args(extra)
            .arg("--out")
            .arg(dir.join(name))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{name}: {err}");
        (medpick_core::features::Features::read(&dir.join(name)).unwrap(), err)
    };
    let (f, _) = embed(&["--cache", "none"], "f.safetensors");
    assert_eq!((f.ids.len(), f.dim, f.model.as_str(), f.pool.as_str()), (24, 192, "dinov2", "cls"));
    assert!(f.preprocess.contains("centre crop 224"));
    // --precision f16 through the same path, with a feature cache shared with an f32 run: the two never mix
    // (the cache key has the precision), the file says how it was made, and the features stay close to f32's.
    let cache = dir.join("cache");
    let cache = cache.to_str().unwrap();
    let [(c32, e32), (c16, e16)] = [("f32", "c32.safetensors"), ("f16", "c16.safetensors")]
        .map(|(p, name)| embed(&["--precision", p, "--cache", cache], name));
    assert!(e32.contains("24 new") && e16.contains("24 new"), "{e32}\n{e16}");
    assert_eq!(c32.data, f.data, "the f32 run through the cache gives the uncached features");
    // Batched passes (8 images by default) give the one-image-at-a-time features; a rerun of 5 per pass with a
    // third of the cache gone mixes cached and new images in its passes and keeps the row order.
    let (one, _) = embed(&["--cache", "none", "--embed-batch", "1"], "one.safetensors");
    assert_eq!(one.ids, f.ids);
    let worst = one.data.iter().zip(&f.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-6, "batched vs one image per pass: {worst}");
    let mut cached: Vec<_> =
        std::fs::read_dir(dir.join("cache/dinov2-cls")).unwrap().map(|e| e.unwrap().path()).collect();
    cached.sort();
    for p in cached.iter().step_by(3) {
        std::fs::remove_file(p).unwrap();
    }
    let (mixed, err) = embed(&["--embed-batch", "5", "--cache", cache], "mixed5.safetensors");
    assert!(!err.contains("(0 new") && !err.contains("(24 new"), "some cached, some new: {err}");
    assert_eq!(mixed.ids, f.ids);
    let worst = mixed.data.iter().zip(&f.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-6, "mixed cached/new passes: {worst}");
    assert!(c16.preprocess.ends_with("matmul weights stored in f16"), "{}", c16.preprocess);
    for i in 0..c16.ids.len() {
        let (a, b) = (c32.row(i), c16.row(i));
        let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        assert!(a != b && dot / (na * nb) > 0.9999, "row {i}: cosine {}", dot / (na * nb));
    }
    // Without --weights: a clear error.
    let out = Command::new(medpick())
        .arg("embed")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018"))
        .args(["--model", "dinov2-small", "--out"])
        .arg(dir.join("g.safetensors"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--weights"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// GET `path` from 127.0.0.1:`port`; returns (status line, headers+body text).
fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    (text.lines().next().unwrap_or("").to_string(), text)
}

#[test]
fn web_serves_the_app_on_loopback_with_a_same_origin_policy() {
    use std::io::BufRead;
    // A web folder without its wasm build: a clear error that says how to build it.
    let bare = tmp("web-bare");
    std::fs::write(bare.join("index.html"), "<!doctype html>").unwrap();
    let out = Command::new(medpick()).args(["web", "--port", "0", "--dir"]).arg(&bare).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("build-wasm.sh") && err.contains("web-bare"), "{err}");

    // A built one (stand-in files): served from loopback, with the CSP, nothing outside the folder.
    std::fs::create_dir_all(bare.join("pkg")).unwrap();
    std::fs::write(bare.join("pkg/medpick_wasm_bg.wasm"), b"\0asm").unwrap();
    std::fs::create_dir_all(bare.join("tests")).unwrap();
    std::fs::write(bare.join("tests/secret.mjs"), "x").unwrap();
    let weights = bare.join("model.whl");
    std::fs::write(&weights, b"weights").unwrap();
    let mut child = Command::new(medpick())
        .args(["web", "--port", "0", "--dir"])
        .arg(&bare)
        .arg("--weights")
        .arg(&weights)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    // Keep draining the server's output, as a terminal would.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let addr = first.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_else(|| panic!("{first}"));
    assert!(addr.starts_with("127.0.0.1:"), "binds loopback by default: {first}");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let (status, text) = http_get(port, "/");
    assert!(status.contains("200"), "{status}");
    assert!(text.contains("Content-Security-Policy: default-src 'self'"), "{text}");
    assert!(text.ends_with("<!doctype html>"));
    let (status, text) = http_get(port, "/weights/litemedsam.whl");
    assert!(status.contains("200") && text.ends_with("weights"), "{status}");
    for bad in ["/tests/secret.mjs", "/../index.html", "/%2e%2e/Cargo.toml", "/nope.js"] {
        let (status, _) = http_get(port, bad);
        assert!(status.contains("404"), "{bad}: {status}");
    }
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&bare);
}

#[test]
fn segment_a_kvasir_polyp_from_its_box() {
    let Some(sh) = shared() else { return };
    if crate::common::gpu().is_none() {
        return;
    }
    let img = sh.join("data/kvasir-seg/images/cju2zdvjn9h7r08553cp4eed5.jpg");
    let dir = tmp("segment");
    let out = dir.join("mask.png");
    let run = |args: &[&str]| Command::new(medpick()).arg("segment").arg(&img).args(args).output().unwrap();
    // Bad boxes are refused with the reason, before any model work.
    for (bad, why) in [("39,153,159", "four numbers"), ("159,153,39,270", "x0 < x1"), ("39,153,159,9999", "outside")] {
        let o = run(&["--box", bad, "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(why), "--box {bad}: {err}");
    }
    let o = run(&["--box", "39,153,159,270", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mask = medpick_core::io::decode_image_file(&out, 1 << 24).unwrap();
    let gt =
        medpick_core::io::decode_image_file(&sh.join("data/kvasir-seg/masks/cju2zdvjn9h7r08553cp4eed5.jpg"), 1 << 24)
            .unwrap();
    assert_eq!((mask.width, mask.height), (gt.width, gt.height));
    let (m, g) = (mask.first_channel_u32(), gt.first_channel_u32());
    let (mut inter, mut a, mut b) = (0usize, 0usize, 0usize);
    for (p, q) in m.iter().zip(&g) {
        let (p, q) = (*p > 127, *q > 127);
        inter += (p && q) as usize;
        a += p as usize;
        b += q as usize;
    }
    let dice = 2.0 * inter as f64 / (a + b) as f64;
    eprintln!("segment: Dice vs ground truth {dice:.3} (PyTorch reference 0.962)");
    assert!(dice > 0.94, "Dice {dice}");
    // The mask is not overwritten without --force.
    let o = run(&["--box", "39,153,159,270", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--force"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `train --task seg` on the images listed in a picks-style CSV, `eval` on the others: the head file, the
/// per-image CSV, and no overwrite without --force.
#[test]
fn train_and_eval_a_segmentation_head_from_masks() {
    if crate::common::gpu().is_none() {
        return;
    }
    let dir = tmp("train-seg");
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018");
    let mut stems: Vec<String> = std::fs::read_dir(data.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    let picks = dir.join("picks.csv");
    let mut csv = String::from("rank,id,score,strategy,seed\n");
    for (i, f) in stems.iter().take(10).enumerate() {
        csv.push_str(&format!("{},images/{f},0,typiclust,0\n", i + 1));
    }
    std::fs::write(&picks, csv).unwrap();
    let head = dir.join("head.json");
    let train = |extra: &[&str]| {
        Command::new(medpick())
            .args(["train", "--task", "seg", "--dataset"])
            .arg(&data)
            .arg("--labels")
            .arg(&picks)
            .args([
                "--model",
                "pixels:64",
                "--epochs",
                "10",
                "--hidden",
                "8",
                "--lr",
                "0.01",
                "--cache",
                "none",
                "--out",
            ])
            .arg(&head)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = train(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("on 10 images") && stdout.contains("in 20 steps"), "{stdout}");
    let h: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&head).unwrap()).unwrap();
    assert_eq!(h["task"], "seg");
    assert_eq!(h["head"]["w1"].as_array().unwrap().len(), 8 * 9);
    let o = train(&[]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--force"));
    let out = dir.join("per-image.csv");
    let o = Command::new(medpick())
        .args(["eval", "--head"])
        .arg(&head)
        .arg("--dataset")
        .arg(&data)
        .args(["--cache", "none", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let dice: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Dice"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    // (How well a head learns is checked by the protocol test; 20 steps only check the plumbing.)
    assert!((0.0..=1.0).contains(&dice), "{stdout}");
    let rows = std::fs::read_to_string(&out).unwrap();
    assert!(rows.starts_with("id,dice,iou,hd95,asd\n"));
    // One row per image with a mask; the per-image Dice values average to the printed mean.
    let per: Vec<f64> = rows.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(per.len(), stems.len());
    assert!((per.iter().sum::<f64>() / per.len() as f64 - dice).abs() < 1e-3, "{rows}");
    // A classification call on a segmentation head says what is missing.
    let o = Command::new(medpick()).args(["eval", "--head"]).arg(&head).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--dataset"));
    // Generalist pseudo-labels on the one image left out of the picks: the head's encoder is `pixels`, so that
    // image is embedded a second time with LiteMedSAM for the decoder; three refreshes are reported.
    if crate::common::litemedsam_path().is_some() {
        let mut csv = String::from("rank,id,score,strategy,seed\n");
        for (i, f) in stems.iter().skip(1).enumerate() {
            csv.push_str(&format!("{},images/{f},0,typiclust,0\n", i + 1));
        }
        std::fs::write(&picks, csv).unwrap();
        let o = train(&["--force", "--pseudo-labels", "--pseudo-confidence-quantile", "0"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("embedding 1 unlabelled images with LiteMedSAM"), "{err}");
        assert_eq!(err.matches("pseudo-labels at step").count(), 3, "{err}");
        assert!(err.contains("1 of 1 unlabelled images kept"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_and_eval_a_head_from_annotated_picks() {
    let Some(sh) = shared() else { return };
    if crate::common::gpu().is_none() {
        return;
    }
    let dir = tmp("train-eval");
    let npz = sh.join("data/medmnist/breastmnist.npz");
    let m = dir.join("m.jsonl");
    let ok = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(Command::new(medpick()).arg("ingest").arg(&npz).arg("--out").arg(&m));
    for subset in ["train", "test"] {
        ok(Command::new(medpick())
            .arg("embed")
            .arg(&m)
            .args(["--subset", subset, "--model", "pixels", "--cache", "none", "--out"])
            .arg(dir.join(format!("{subset}.safetensors"))));
    }
    // Labels: picks.csv-style for 60 training samples (one left unannotated), id,label for the test set.
    let text = std::fs::read_to_string(&m).unwrap();
    let samples: Vec<serde_json::Value> = text.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
    let label = |s: &serde_json::Value| s["label"].as_str().unwrap().to_string();
    let id = |s: &serde_json::Value| s["id"].as_str().unwrap().to_string();
    let train: Vec<_> = samples.iter().filter(|s| id(s).contains("#train:")).take(60).collect();
    let mut picks = String::from("rank,id,score,strategy,seed,label\n");
    for (r, s) in train.iter().enumerate() {
        let l = if r == 59 { String::new() } else { label(s) };
        picks.push_str(&format!("{},{},0.5,typiclust,0,{l}\n", r + 1, id(s)));
    }
    std::fs::write(dir.join("picks.csv"), picks).unwrap();
    let mut gt = String::from("id,label\n");
    for s in samples.iter().filter(|s| id(s).contains("#test:")) {
        gt.push_str(&format!("{},{}\n", id(s), label(s)));
    }
    std::fs::write(dir.join("test_labels.csv"), gt).unwrap();
    let head = dir.join("head.json");
    let out = ok(Command::new(medpick())
        .arg("train")
        .arg("--features")
        .arg(dir.join("train.safetensors"))
        .arg("--labels")
        .arg(dir.join("picks.csv"))
        .arg("--out")
        .arg(&head)
        .args(["--epochs", "60"]));
    assert!(out.contains("on 59 samples (2 classes)"), "{out}");
    let out = ok(Command::new(medpick())
        .arg("eval")
        .arg("--head")
        .arg(&head)
        .arg("--features")
        .arg(dir.join("test.safetensors"))
        .arg("--labels")
        .arg(dir.join("test_labels.csv"))
        .arg("--out")
        .arg(dir.join("pred.csv")));
    let auc: f64 = out
        .lines()
        .find(|l| l.starts_with("macro AUC"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .parse()
        .unwrap();
    assert!(out.contains("156 samples") && auc > 0.6, "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("pred.csv")).unwrap().lines().count(), 157);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ids are file names, and a file name may hold a comma and a quote: every CSV medpick writes and reads is
/// RFC 4180 (the `csv` crate), so such an id goes through `select` → a person fills in `label` → `train
/// --labels` → `eval --out` unchanged (the readers used to split on ',' and lost it).
#[test]
fn ids_with_a_comma_and_a_quote_survive_select_train_and_eval() {
    if crate::common::gpu().is_none() {
        return;
    }
    let dir = tmp("csv-ids");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018/images");
    let mut names: Vec<_> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for (i, n) in names.iter().take(12).enumerate() {
        let weird = format!("case {i}, \"left\" {}", n.to_string_lossy());
        std::fs::copy(src.join(n), data.join(weird)).unwrap();
    }
    let ok = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let feats = dir.join("f.safetensors");
    ok(Command::new(medpick())
        .arg("embed")
        .arg(&data)
        .args(["--model", "pixels", "--cache", "none", "--out"])
        .arg(&feats));
    let picks = dir.join("picks.csv");
    ok(Command::new(medpick())
        .arg("select")
        .arg(&feats)
        .args(["--budget", "8", "--strategy", "coreset", "--out"])
        .arg(&picks));
    let mut rdr = csv::Reader::from_path(&picks).unwrap();
    assert_eq!(rdr.headers().unwrap().iter().collect::<Vec<_>>(), ["rank", "id", "score", "strategy", "seed"]);
    let picked: Vec<String> = rdr.records().map(|r| r.unwrap()[1].to_string()).collect();
    assert_eq!(picked.len(), 8);
    for id in &picked {
        assert!(id.contains(", \"left\" ") && data.join(id).is_file(), "id `{id}` is not a file of the pool");
    }
    // A person labels the picks: the same file with a label column (two classes, the last pick left empty).
    let labeled = dir.join("labeled.csv");
    let mut w = csv::Writer::from_path(&labeled).unwrap();
    w.write_record(["rank", "id", "score", "strategy", "seed", "label"]).unwrap();
    for (r, id) in picked.iter().enumerate() {
        let label = if r == 7 {
            ""
        } else if r % 2 == 0 {
            "even"
        } else {
            "odd, \"quoted\""
        };
        w.write_record([&(r + 1).to_string(), id.as_str(), "0.5", "coreset", "0", label]).unwrap();
    }
    w.flush().unwrap();
    let head = dir.join("head.json");
    let out = ok(Command::new(medpick())
        .args(["train", "--features"])
        .arg(&feats)
        .arg("--labels")
        .arg(&labeled)
        .arg("--out")
        .arg(&head)
        .args(["--epochs", "5"]));
    assert!(out.contains("on 7 samples (2 classes)"), "{out}");
    let pred = dir.join("pred.csv");
    ok(Command::new(medpick())
        .args(["eval", "--head"])
        .arg(&head)
        .arg("--features")
        .arg(&feats)
        .arg("--labels")
        .arg(&labeled)
        .arg("--out")
        .arg(&pred));
    let mut rdr = csv::Reader::from_path(&pred).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().take(3).map(String::from).collect();
    assert_eq!(header, ["id", "label", "predicted"]);
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let mut got: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    let mut want: Vec<&str> = picked[..7].iter().map(String::as_str).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "eval's ids are the labelled picks, byte for byte");
    assert!(rows.iter().any(|r| &r[1] == "odd, \"quoted\""), "a label with a comma and a quote survives too");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A head trained on the 64 axial slices of one NIfTI volume (white matter of the MNI152 template) and evaluated
/// on the mirrored volume: per-slice scores, the per-volume 3-D table and CSV; a volume with a slice left out is
/// named as not scored in 3-D.
#[test]
fn train_on_one_volume_and_eval_another_per_volume_in_3d() {
    if crate::common::gpu().is_none() {
        return;
    }
    let dir = tmp("volumes");
    let Some((root, _)) = crate::common::mni_seg_dataset(&dir) else { return };
    let ids = |name: &str, skip: Option<usize>| {
        let mut csv = String::from("id\n");
        for k in (0..64).filter(|&k| Some(k) != skip) {
            csv.push_str(&format!("images/{name}.nii.gz#axial:{k}\n"));
        }
        let p = dir.join(format!("{name}-{skip:?}.csv"));
        std::fs::write(&p, csv).unwrap();
        p
    };
    let head = dir.join("head.json");
    let o = Command::new(medpick())
        .args(["train", "--task", "seg", "--dataset"])
        .arg(&root)
        .arg("--labels")
        .arg(ids("mni", None))
        .args(["--model", "pixels:64", "--epochs", "3", "--hidden", "8", "--lr", "0.01", "--cache", "none"])
        .args(["--window", "p0.5-99.5", "--out"])
        .arg(&head)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("on 64 images"), "{}", String::from_utf8_lossy(&o.stdout));
    // The head records its intensity window; eval re-embeds with it.
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&head).unwrap()).unwrap();
    assert_eq!(file["window"], "p0.5-99.5");
    let eval = |labels: PathBuf, extra: &[&str]| {
        let o = Command::new(medpick())
            .args(["eval", "--head"])
            .arg(&head)
            .arg("--dataset")
            .arg(&root)
            .arg("--labels")
            .arg(labels)
            .args(["--cache", "none"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let vols = dir.join("volumes.csv");
    let stdout = eval(ids("mni_flip", None), &["--out-volumes", vols.to_str().unwrap()]);
    eprintln!("{stdout}");
    assert!(stdout.contains("64 images") && stdout.contains("1 volumes in 3-D"), "{stdout}");
    assert!(stdout.contains("window p0.5-99.5"), "{stdout}");
    let rows = std::fs::read_to_string(&vols).unwrap();
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines[0], "volume,first_slice,slices,dice,iou,hd95_mm,asd_mm");
    assert_eq!(lines.len(), 2, "{rows}");
    let f: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(&f[..3], &["images/mni_flip.nii.gz#axial", "0", "64"]);
    let (dice, iou): (f64, f64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
    let hd95: f64 = f[5].parse().unwrap();
    // White matter is the brightest tissue of a T1: three epochs on the other hemisphere's mirror image learn it.
    assert!(dice > 0.65, "3-D Dice {dice}\n{stdout}");
    assert!((iou - dice / (2.0 - dice)).abs() < 1e-5, "IoU = Dice / (2 − Dice): {rows}");
    assert!(hd95 > 0.0 && hd95 < 30.0, "HD95 {hd95} mm");
    // The printed table carries the same Dice.
    assert!(stdout.lines().any(|l| l.starts_with("images/mni_flip.nii.gz#axial") && l.contains(&format!("{dice:.4}"))));
    // A slice left out: the volume is named, not scored in 3-D, and --out-volumes is not overwritten.
    let stdout = eval(ids("mni_flip", Some(10)), &[]);
    assert!(stdout.contains("0 volumes in 3-D") && stdout.contains("slice 10 is missing"), "{stdout}");
    let o = Command::new(medpick())
        .args(["eval", "--head"])
        .arg(&head)
        .arg("--dataset")
        .arg(&root)
        .args(["--cache", "none", "--out-volumes"])
        .arg(&vols)
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--force"));
    let _ = std::fs::remove_dir_all(&dir);
}
