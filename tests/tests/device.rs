//! `--device auto|gpu|cpu`: which backend a run gets, and that the CPU backend and the WGSL kernels embed the
//! same features (so the feature cache is shared by both) and the CPU backend's do not depend on its threads.

use std::path::PathBuf;
use std::process::Command;

use crate::cli::medpick;

fn device_info(args: &[&str], env: Option<(&str, &str)>) -> serde_json::Value {
    let mut c = Command::new(medpick());
    c.args(["device-info", "--json"]).args(args).env_remove("MEDPICK_DEVICE");
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn auto_takes_the_cpu_backend_on_a_cpu_adapter_and_each_choice_is_honoured() {
    let auto = device_info(&[], None);
    let adapter = &auto["adapter"];
    if adapter.is_null() {
        assert_eq!(auto["backend"], "cpu", "{auto}");
        assert!(auto["reason"].as_str().unwrap().contains("no GPU adapter"), "{auto}");
    } else if adapter["device_type"] == "Cpu" {
        assert_eq!(auto["backend"], "cpu", "{auto}");
        assert!(auto["reason"].as_str().unwrap().contains("CPU rasteriser"), "{auto}");
    } else {
        assert_eq!(auto["backend"], "gpu", "{auto}");
    }
    if !adapter.is_null() {
        assert_eq!(device_info(&["--device", "gpu"], None)["backend"], "gpu");
    }
    let cpu = device_info(&["--device", "cpu", "--threads", "1"], None);
    assert_eq!((&cpu["backend"], &cpu["cpu"]["threads"]), (&"cpu".into(), &1.into()), "{cpu}");
    assert!(!cpu["cpu"]["simd"].as_str().unwrap().is_empty(), "{cpu}");
    assert_eq!(device_info(&[], Some(("MEDPICK_DEVICE", "cpu")))["backend"], "cpu");
    // More threads than cores still runs (they share the cores).
    let many = device_info(&["--device", "cpu", "--threads", "64"], None);
    assert_eq!(many["cpu"]["threads"], 64, "{many}");
    for (args, env, names) in
        [(vec!["--device", "cuda"], None, "--device"), (vec![], Some(("MEDPICK_DEVICE", "tpu")), "MEDPICK_DEVICE")]
    {
        let mut c = Command::new(medpick());
        c.args(["device-info"]).args(&args).env_remove("MEDPICK_DEVICE");
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(names) && err.contains("auto, gpu or cpu"), "{err}");
    }
}

fn embed(data: &std::path::Path, out: &std::path::Path, args: &[&str]) -> medpick_core::features::Features {
    let o = Command::new(medpick())
        .arg("embed")
        .arg(data)
        .args(["--cache", "none", "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    medpick_core::features::Features::read(out).unwrap()
}

/// The same DSB2018 image embedded by LiteMedSAM on the CPU backend (1 and 2 threads) and on the WGSL
/// kernels: the CPU backend's features are bit-identical across thread counts, and within the parity budget
/// (each backend is within 1e-4 of PyTorch: 2e-4 between them) of the GPU's.
#[test]
fn cpu_backend_features_match_the_gpu_and_do_not_depend_on_threads() {
    if crate::models_available().is_none() || crate::common::gpu().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("medpick-device-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018/images");
    let mut names: Vec<_> = std::fs::read_dir(&sample).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    // One image: a LiteMedSAM forward takes about a minute on lavapipe.
    for p in names.iter().take(1) {
        std::fs::copy(p, data.join(p.file_name().unwrap())).unwrap();
    }
    let c1 = embed(&data, &dir.join("c1.safetensors"), &["--device", "cpu", "--threads", "1"]);
    let c2 = embed(&data, &dir.join("c2.safetensors"), &["--device", "cpu", "--threads", "2"]);
    let g = embed(&data, &dir.join("g.safetensors"), &["--device", "gpu"]);
    assert_eq!(c1.ids, g.ids);
    assert_eq!(
        c1.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        c2.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let worst = c1.data.iter().zip(&g.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 2e-4, "CPU vs GPU features differ by {worst}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_encoder_on_the_cpu_backend_reports_threads_and_host_memory() {
    if crate::models_available().is_none() {
        return;
    }
    let o = Command::new(medpick())
        .args(["bench", "encoder", "--device", "cpu", "--threads", "1", "--batches", "1", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &doc["results"][0];
    assert_eq!((&r["backend"], &r["threads"], &r["batch"]), (&"cpu".into(), &1.into(), &1.into()), "{r}");
    assert_eq!(r["peak_gpu_bytes"], 0, "{r}");
    assert!(r["peak_host_bytes"].as_u64().unwrap() > r["weight_bytes"].as_u64().unwrap(), "{r}");
    assert!(r["gflops"].as_f64().unwrap() > 0.0, "{r}");
}

/// A NaN inside the model (here one weight of the tiny DINOv2 fixture's second layer's MLP) reaches the output: every
/// image is reported with its file and the layer where the NaN first appears, and skipped; nothing is cached, and no
/// feature file holds a NaN.
#[test]
fn a_nan_in_the_forward_pass_is_reported_and_never_written() {
    let Some(sh) = crate::common::shared() else { return };
    let dir = std::env::temp_dir().join(format!("medpick-nan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = std::fs::read(sh.join("fixtures/dinov2/tiny_registers/model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let (_, t) = header
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, t)| k.as_str() == "encoder.layer.1.mlp.fc1.weight" && t["dtype"] == "F32")
        .expect("layer 1's fc1 weight in the fixture");
    let at = 8 + n + t["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let weights = dir.join("nan.safetensors");
    std::fs::write(&weights, &bytes).unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018/images");
    let first = std::fs::read_dir(&sample).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    std::fs::copy(&first, data.join(first.file_name().unwrap())).unwrap();
    for device in ["cpu", "gpu"] {
        if device == "gpu" && crate::common::gpu().is_none() {
            continue;
        }
        let out = dir.join(format!("f-{device}.safetensors"));
        let o = Command::new(medpick())
            .arg("embed")
            .arg(&data)
            .args(["--model", "dinov2", "--pool", "cls", "--device", device, "--weights"])
            .arg(&weights)
            .args(["--cache"])
            .arg(dir.join("cache"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("non-finite") && err.contains(first.file_name().unwrap().to_str().unwrap()), "{err}");
        assert!(err.contains("first at layer encoder.layer.1)"), "{device}: the layer is not named: {err}");
        // Its only image failed: an error, not an empty feature file.
        assert_eq!(o.status.code(), Some(2), "{device}: {err}");
        assert!(err.contains("none of the 1 samples could be embedded") && !out.exists(), "{device}: {err}");
        if let Ok(f) = medpick_core::features::Features::read(&out) {
            assert!(f.data.iter().all(|v| v.is_finite()) && f.ids.is_empty(), "{device}: {:?}", f.ids);
        }
        let cached = std::fs::read_dir(dir.join("cache")).map(|d| d.count()).unwrap_or(0);
        let files: Vec<_> = walk(&dir.join("cache"));
        assert!(files.iter().all(|p| !p.to_string_lossy().ends_with(".f32")), "{device}: cached {cached}: {files:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(d: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn bench_kernels_on_the_cpu_backend_times_the_models_gemm_shapes() {
    let o = Command::new(medpick())
        .args(["bench", "kernels", "--device", "cpu", "--threads", "1", "--quick", "--iters", "1", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = doc["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{doc}");
    for r in rows {
        assert_eq!(r["threads"], 1, "{r}");
        assert!(r["gflops"].as_f64().unwrap() > 0.0 && r["m"].as_u64().unwrap() > 0, "{r}");
    }
    // numpy's column is there when python3 has numpy, and says why not otherwise.
    assert!(
        doc["numpy"].is_null() || doc["numpy"].get("gflops").is_some() || doc["numpy"].get("unavailable").is_some()
    );
}

#[test]
fn selftest_on_the_cpu_backend_alone_times_every_kernel_and_does_not_fail() {
    let o = Command::new(medpick()).args(["selftest", "--device", "cpu"]).output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    let verdict = out.lines().find(|l| l.starts_with("kernels:")).unwrap_or_default();
    assert!(verdict.contains("timed on the CPU backend alone") && !verdict.contains("failed"), "{out}");
}
