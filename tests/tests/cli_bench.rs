//! End-to-end runs of the `medpick bench` commands (protocol, loop, encoder, select) and of long runs' progress.

use std::path::PathBuf;
use std::process::Command;

use crate::cli::{medpick, tmp};
use crate::common::shared;

#[test]
fn bench_protocol_reduced_run_trains_heads_that_beat_untrained_ones_and_resumes() {
    let Some(sh) = shared() else { return };
    if crate::common::gpu().is_none() {
        return;
    }
    let out = tmp("protocol");
    let npz = sh.join("data/medmnist/breastmnist.npz");
    let args = |epochs: &str| {
        let mut c = Command::new(medpick());
        c.args(["bench", "protocol", "--dataset"]).arg(&npz).args([
            "--model",
            "pixels",
            "--strategies",
            "typiclust",
            "--budgets",
            "27",
            "--seeds",
            "2",
            "--epochs",
            epochs,
            "--max-train",
            "150",
            "--max-test",
            "80",
            "--cache",
            "none",
            "--out",
        ]);
        c.arg(&out);
        c
    };
    let o = args("40").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "random and typiclust × 2 seeds each");
    let mut auc_sum = 0.0;
    for r in runs {
        assert_eq!(r["picks"].as_array().unwrap().len(), 27);
        // An untrained (constant) head has balanced accuracy 0.5 and AUC 0.5.
        let (bacc, auc) = (r["balanced_accuracy"].as_f64().unwrap(), r["auc"].as_f64().unwrap());
        assert!(bacc > 0.5 && auc > 0.5, "{r}");
        auc_sum += auc;
    }
    assert!(auc_sum / 4.0 > 0.6, "mean AUC {}", auc_sum / 4.0);
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| typiclust |") && md.contains("| random |") && md.contains("± "), "{md}");
    // TypiClust against Random seed by seed: the difference of their runs, with an interval around it.
    assert!(md.contains("| vs Random (paired by seed) |"), "{md}");
    // How the picks spread over the two classes: Random's mean counts per class add up to the budget.
    let row = md.lines().skip_while(|l| !l.starts_with("## Picks per class")).find(|l| l.starts_with("| random |"));
    let cell = row.expect("a class-balance row for Random").split('|').nth(2).unwrap_or("");
    let counts: Vec<f64> =
        cell.split(" (min").next().unwrap_or("").split('/').filter_map(|v| v.trim().parse().ok()).collect();
    assert_eq!(counts.len(), 2, "{md}");
    assert!((counts.iter().sum::<f64>() - 27.0).abs() < 0.05, "{md}");
    let paired: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("paired.json")).unwrap()).unwrap();
    let row = paired
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "balanced_accuracy" && r["strategy"] == "typiclust")
        .expect("typiclust's paired row");
    let value = |s: &str, seed: u64| {
        runs.iter().find(|r| r["strategy"] == s && r["seed"] == seed).unwrap()["balanced_accuracy"].as_f64().unwrap()
    };
    let want = ((value("typiclust", 0) - value("random", 0)) + (value("typiclust", 1) - value("random", 1))) / 2.0;
    assert_eq!(row["n"], 2, "{row}");
    assert!((row["mean_diff"].as_f64().unwrap() - want).abs() < 1e-12, "{row} vs {want}");
    let (lo, hi) = (row["ci_low"].as_f64().unwrap(), row["ci_high"].as_f64().unwrap());
    assert!(lo <= want && want <= hi, "{row}");
    for f in ["balanced_accuracy_vs_budget", "pool_pca"] {
        let png = std::fs::read(out.join(format!("{f}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{f}.png");
        assert!(std::fs::read_to_string(out.join(format!("{f}.svg"))).unwrap().contains("<svg"), "{f}.svg");
    }
    // Resume: nothing to redo.
    let o = args("40").output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming: 4 runs"));
    // Other settings are refused rather than mixed into the same results.
    let o = args("41").output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("other settings"));
    // Model selection on the validation split: every run records the epoch kept and its validation accuracy.
    let _ = std::fs::remove_dir_all(&out);
    let o = args("40").args(["--val-every", "5"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(doc["settings"]["val_every"], 5);
    for r in doc["runs"].as_array().unwrap() {
        let e = r["best_epoch"].as_u64().unwrap();
        assert!(e % 5 == 0 && (5..=40).contains(&e), "{r}");
        assert!((0.0..=1.0).contains(&r["val_accuracy"].as_f64().unwrap()), "{r}");
    }
    assert!(std::fs::read_to_string(out.join("results.md")).unwrap().contains("Model selection"));
    let _ = std::fs::remove_dir_all(&out);
}

/// The segmentation protocol end to end on the bundled DSB2018 sample (CC0, no ../shared needed): grids from the
/// `pixels:64` encoder, one budget, Random over two seeds and TypiClust; every trained head must beat the untrained
/// one on the test images, and the table, JSON and plots must be written.
#[test]
fn bench_protocol_seg_reduced_run_beats_an_untrained_head() {
    if crate::common::gpu().is_none() {
        return;
    }
    let out = tmp("protocol-seg");
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018");
    let o = Command::new(medpick())
        .args(["bench", "protocol", "--task", "seg", "--dataset"])
        .arg(&data)
        .args([
            "--model",
            "pixels:64",
            "--strategies",
            "typiclust",
            "--budgets",
            "12",
            "--seeds",
            "2",
            "--epochs",
            "40",
            "--hidden",
            "8",
            "--lr",
            "0.01",
            "--augment",
            "--val-every",
            "10",
            "--cache",
            "none",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(doc["settings"]["val_every"], 10, "{}", doc["settings"]);
    let floor = doc["untrained"]["dice"].as_f64().unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "random and typiclust × 2 seeds each");
    for r in runs {
        assert_eq!(r["picks"].as_array().unwrap().len(), 12);
        assert_eq!(r["train_steps"].as_u64().unwrap(), 80, "two batches (8 + 4) per epoch");
        let dice = r["dice"].as_f64().unwrap();
        eprintln!("{} seed {}: Dice {dice:.3} (untrained {floor:.3})", r["strategy"], r["seed"]);
        assert!(dice > floor + 0.1, "{r} vs untrained Dice {floor}");
        // --val-every 10 over 40 epochs: the kept checkpoint is one of the validated epochs.
        assert!([10, 20, 30, 40].contains(&r["best_epoch"].as_u64().unwrap()), "{r}");
        assert!((0.0..=1.0).contains(&r["val_dice"].as_f64().unwrap()), "{r}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("Model selection: each run keeps the head of best validation Dice"), "{md}");
    assert!(md.contains("## dice") && md.contains("## hd95") && md.contains("| typiclust |"), "{md}");
    assert!(md.contains("s per step at batch 8"), "{md}");
    // The picks' spread over foreground size: each run's 12 picks fall in the three bins.
    let row =
        md.lines().skip_while(|l| !l.starts_with("## Picks by foreground size")).find(|l| l.starts_with("| random |"));
    let row = row.unwrap_or_else(|| panic!("no foreground-size table: {md}"));
    let counts: Vec<f64> = row
        .split('|')
        .nth(2)
        .unwrap()
        .split('(')
        .next()
        .unwrap()
        .split('/')
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 3, "{row}");
    assert!((counts.iter().sum::<f64>() - 12.0).abs() < 1e-9, "{row}");
    for f in ["dice_vs_budget", "pool_pca"] {
        assert!(std::fs::read(out.join(format!("{f}.png"))).unwrap().starts_with(b"\x89PNG"), "{f}.png");
        assert!(std::fs::read_to_string(out.join(format!("{f}.svg"))).unwrap().contains("<svg"), "{f}.svg");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bench_loop_adds_new_samples_each_round_for_every_score() {
    let Some(sh) = shared() else { return };
    if crate::common::gpu().is_none() {
        return;
    }
    let out = tmp("loop");
    let o = Command::new(medpick())
        .args(["bench", "loop", "--dataset"])
        .arg(sh.join("data/medmnist/breastmnist.npz"))
        .args([
            "--model",
            "pixels",
            "--scores",
            "random,margin,bald,dropquery,coreset",
            "--rounds",
            "3",
            "--batch",
            "10",
        ])
        .args(["--epochs", "20", "--max-train", "120", "--max-test", "60", "--cache", "none", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rounds: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("loop.json")).unwrap()).unwrap();
    assert_eq!(rounds.len(), 15);
    for score in ["random", "margin", "bald", "dropquery", "coreset"] {
        let rs: Vec<_> = rounds.iter().filter(|r| r["score"] == score).collect();
        assert_eq!(rs.iter().map(|r| r["labeled"].as_u64().unwrap()).collect::<Vec<_>>(), vec![10, 20, 30], "{score}");
        // The samples added are new each round.
        let mut seen = std::collections::HashSet::new();
        for r in &rs[..2] {
            let next = r["next"].as_array().unwrap();
            assert_eq!(next.len(), 10, "{score}");
            for id in next {
                assert!(seen.insert(id.as_str().unwrap().to_string()), "{score}: {id} added twice");
            }
        }
        assert!(rs[2]["next"].as_array().unwrap().is_empty());
    }
    assert!(std::fs::read(out.join("loop_balanced_accuracy.png")).unwrap().starts_with(b"\x89PNG"));
    assert!(std::fs::read_to_string(out.join("loop.md")).unwrap().contains("| dropquery |"));
    let _ = std::fs::remove_dir_all(&out);
}

/// `bench loop --task seg` on the bundled DSB2018 sample: rounds grow the labelled set with new images, the
/// table, JSON and Dice plot are written, and classification-only scores are refused by name.
#[test]
fn bench_loop_seg_on_the_dsb2018_sample() {
    if crate::common::gpu().is_none() {
        return;
    }
    let out = tmp("loop-seg");
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018");
    let run = |scores: &str| {
        Command::new(medpick())
            .args(["bench", "loop", "--task", "seg", "--dataset"])
            .arg(&data)
            .args(["--model", "pixels:64", "--scores", scores, "--rounds", "2", "--batch", "4", "--epochs", "5"])
            .args(["--hidden", "8", "--lr", "0.01", "--cache", "none", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run("random,herd,asd");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rounds: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("loop.json")).unwrap()).unwrap();
    assert_eq!(rounds.len(), 6);
    for score in ["random", "herd", "asd"] {
        let rs: Vec<_> = rounds.iter().filter(|r| r["score"] == score).collect();
        assert_eq!(rs.iter().map(|r| r["labeled"].as_u64().unwrap()).collect::<Vec<_>>(), vec![4, 8], "{score}");
        let next: std::collections::HashSet<&str> =
            rs[0]["next"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(next.len(), 4, "{score}: {next:?}");
        assert!(rs.iter().all(|r| (0.0..=1.0).contains(&r["dice"].as_f64().unwrap())), "{score}");
    }
    assert!(std::fs::read(out.join("loop_dice.png")).unwrap().starts_with(b"\x89PNG"));
    assert!(std::fs::read_to_string(out.join("loop.md")).unwrap().contains("Mean per-image Dice"));
    let o = run("random,bald");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown score bald for --task seg"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

/// `bench select` end to end at a small size: every cell runs on the GPU path in its own process, the table
/// and JSON are written, and each strategy returns the budget. (Throughput figures come from full runs, not here.)
#[test]
fn bench_select_small_grid_writes_table_and_json() {
    // The scans on the GPU (when there is one) and on the CPU backend; the cells run in child processes, which
    // must get the backend and thread count.
    for device in ["gpu", "cpu"] {
        if device == "gpu" && crate::common::gpu().is_none() {
            continue;
        }
        let dir = tmp(&format!("bench-select-{device}"));
        let out = Command::new(medpick())
            .args(["--device", device, "--threads", "2"])
            .args(["bench", "select", "--n", "2500,4000", "--d", "48", "--budget", "40", "--cap", "300"])
            .args(["--strategies", "coreset,typiclust-knn,probcover,repdiv", "--skactiveml", "off", "--out"])
            .arg(&dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let backend = if device == "gpu" { "gpu" } else { "cpu ×2" };
        assert!(stdout.contains(&format!("| repdiv | 4000 | 48 | 40 | {backend} |")), "{stdout}");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("bench-select.json")).unwrap()).unwrap();
        let rows = doc["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 8);
        for r in rows {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["backend"], backend, "{r}");
            assert!(r["seconds"].as_f64().unwrap() > 0.0, "{r}");
            let peak = r["peak_gpu_bytes"].as_u64().unwrap();
            if device == "gpu" {
                assert!(peak >= 2500 * 48 * 4, "{r}: the features alone need more");
            } else {
                assert_eq!(peak, 0, "{r}: the CPU backend allocates no device memory");
            }
        }
        assert!(dir.join("bench-select.md").exists());
    }
}

/// `--medcal` must name a MedCAL-Bench checkout: anything else is refused before a cell runs.
#[test]
fn bench_select_refuses_a_medcal_folder_that_is_not_a_checkout() {
    let dir = tmp("bench-select-medcal");
    let out = Command::new(medpick())
        .args(["--device", "cpu", "bench", "select", "--n", "2500", "--d", "8", "--budget", "5"])
        .args(["--strategies", "coreset", "--skactiveml", "off", "--medcal"])
        .arg(&dir)
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("not a MedCAL-Bench checkout (no FM-AL/select_samples.py)"), "{err}");
    assert!(!dir.join("out/bench-select.json").exists(), "no table for a refused run");
}

#[test]
fn bench_encoder_reports_peak_memory_and_a_kernel_profile() {
    let out = Command::new(medpick())
        .args(["bench", "encoder", "--model", "dinov2-small-shape", "--batches", "1", "--profile", "--json"])
        .args(["--precision", "f32,f16", "--device", "gpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["results"].as_array().unwrap();
    let key = |r: &serde_json::Value| (r["precision"].as_str().unwrap().to_string(), r["batch"].as_u64().unwrap());
    assert_eq!(rows.iter().map(key).collect::<Vec<_>>(), [("f32".into(), 1), ("f16".into(), 1)]);
    let weights: Vec<u64> = rows.iter().map(|r| r["weight_bytes"].as_u64().unwrap()).collect();
    // dinov2-small shapes: 22 M parameters, 88 MB in f32; the matmul weights (nearly all of them) halve in f16.
    assert!(weights[0] > 86_000_000 && (weights[1] as f64) < 0.55 * weights[0] as f64, "{weights:?}");
    for r in rows {
        let peak = r["peak_gpu_bytes"].as_u64().unwrap();
        assert!(peak >= r["weight_bytes"].as_u64().unwrap() && peak < 2_000_000_000, "{r}");
        assert!(r["images_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["images_per_pass"], 1, "{r}");
    }
    // The f32 GEMM kernel is the adapter's (`matmul_regs4` on lavapipe, `matmul` on a GPU): gpu-info names it.
    // (Every GEMM of dinov2-small has K a multiple of 4, so none falls back to `matmul_regs`.)
    let info = Command::new(medpick()).args(["gpu-info", "--json"]).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let f32_gemm = info["gemm_kernel"].as_str().unwrap().to_string();
    assert!(["matmul", "matmul_regs", "matmul_regs4"].contains(&f32_gemm.as_str()), "{info}");
    for (precision, matmul) in [("f32", f32_gemm.as_str()), ("f16", "matmul_f16w")] {
        let profile = doc["profile"][precision].as_array().unwrap();
        let calls = |k: &str| profile.iter().find(|p| p["kernel"] == k).map(|p| p["calls"].as_u64().unwrap());
        // 12 layers × (norm1, norm2) + the final LayerNorm; 12 × 4 linears + the patch embedding.
        assert_eq!(calls("layernorm"), Some(25), "{profile:?}");
        assert_eq!(calls("attention"), Some(12), "{profile:?}");
        assert_eq!(calls(matmul), Some(49), "{precision}: {profile:?}");
        for other in ["matmul", "matmul_f16w", "matmul_regs", "matmul_regs4"].into_iter().filter(|&k| k != matmul) {
            assert_eq!(calls(other), None, "{precision}: {profile:?}");
        }
        let secs: Vec<f64> = profile.iter().map(|p| p["seconds"].as_f64().unwrap()).collect();
        assert!(secs.iter().all(|&s| s > 0.0) && secs.windows(2).all(|w| w[0] >= w[1]), "slowest first: {secs:?}");
    }
}

/// `bench protocol --task seg` on NIfTI volumes (eight white-matter volumes cut from the MNI152 template): the
/// test split's volumes are scored per volume in 3-D, results.md says so, and a trained head beats the untrained.
#[test]
fn bench_protocol_seg_on_volumes_scores_the_test_volumes_in_3d() {
    if crate::common::gpu().is_none() {
        return;
    }
    let dir = tmp("protocol-volumes");
    let Some((root, _)) = crate::common::mni_seg_volumes(&dir, &[40, 70, 100, 125]) else { return };
    let out = dir.join("results");
    let o = Command::new(medpick())
        .args(["bench", "protocol", "--task", "seg", "--dataset"])
        .arg(&root)
        .args(["--model", "pixels:64", "--strategies", "typiclust", "--budgets", "24", "--seeds", "1"])
        .args(["--epochs", "10", "--hidden", "8", "--lr", "0.01", "--cache", "none", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("scored per volume in 3-D"), "{err}");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("Test metrics per volume in 3-D"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let floor = json["untrained"]["dice"].as_f64().unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{json}");
    for r in runs {
        let d = r["dice"].as_f64().unwrap_or_else(|| panic!("{r}"));
        assert!(d > floor + 0.2, "{}: 3-D Dice {d} vs untrained {floor}\n{md}", r["strategy"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch run whose stderr is a file or a pipe (here: a pipe) still reports progress: the bar comes out as plain
/// lines, at most one per `MEDPICK_PROGRESS_EVERY` seconds, with no terminal control codes in them.
#[test]
fn progress_reaches_a_log_when_stderr_is_not_a_terminal() {
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018");
    let dir = tmp("progress");
    let embed = |every: &str, name: &str| {
        let o = Command::new(medpick())
            .env("MEDPICK_PROGRESS_EVERY", every)
            .arg("embed")
            .arg(&samples)
            .args(["--model", "pixels", "--cache", "none", "--out"])
            .arg(dir.join(name))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err.lines().filter(|l| l.starts_with("embed [")).map(str::to_string).collect::<Vec<_>>()
    };
    // Every update: one line per image embedded (24 in the sample), counting up to the total.
    let lines = embed("0", "a.safetensors");
    assert!(lines.len() >= 24, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains(" 24/24 ")), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains('\u{1b}') && !l.contains('\r')), "{lines:#?}");
    // The default (30 s) on a run of well under 30 s: the first line only.
    let lines = embed("", "b.safetensors");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
