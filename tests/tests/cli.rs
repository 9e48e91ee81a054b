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

fn tmp(name: &str) -> PathBuf {
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
        vec!["bench", "kernels", "--help"],
    ] {
        let out = Command::new(medpick()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
}

#[test]
fn ingest_bad_corpus_lists_skipped_and_exits_by_strictness() {
    let dir = tmp("bad");
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/bad");
    let out = Command::new(medpick()).arg("ingest").arg(&bad).arg("--out").arg(dir.join("m.jsonl")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
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
    assert_eq!(strict.status.code(), Some(3), "--strict exits 3 when files were skipped");
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
