//! Sharded embedding (`embed --shard I/N`, issue 26) and feature files opened as one pool: the parts of the
//! bundled DSB2018 sample (24 images) equal one whole embedding row for row, `select` on the parts picks what it
//! picks on the whole, and parts that do not belong together, a missing part or a truncated one are refused by name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str], paths: &[&Path], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(crate::cli::medpick());
    c.args(args).args(paths);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    let (so, se) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{so}\n{se}");
    format!("{so}{se}")
}

fn err(o: &Output) -> String {
    let se = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{se}");
    se
}

#[test]
fn sharded_parts_equal_the_whole_and_bad_parts_are_named() {
    let images = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018/images");
    let dir = std::env::temp_dir().join(format!("medpick-shards-{}", std::process::id()));
    let parts = dir.join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    let embed = ["embed", "--model", "pixels", "--cache", "none"];
    let whole = dir.join("whole.safetensors");
    ok(&run(&embed, &[&images, Path::new("--out"), &whole], &[]));
    let part = |i: usize| parts.join(format!("part_{i}.safetensors"));
    for i in [0usize, 2] {
        let out = ok(&run(
            &[&embed[..], &["--shard", &format!("{i}/3")]].concat(),
            &[&images, Path::new("--out"), &part(i)],
            &[],
        ));
        assert!(out.contains(&format!("part {i}/3: 8 of 24 samples")), "{out}");
    }
    // Part 1 as a Slurm array task would run it (an array numbered from 1: task 2 is the second part).
    let slurm = [("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "3")];
    let out = ok(&run(&[&embed[..], &["--shard", "auto"]].concat(), &[&images, Path::new("--out"), &part(1)], &slurm));
    assert!(out.contains("shard 1/3 (SLURM_ARRAY_TASK_ID=2") && out.contains("part 1/3: 8 of 24"), "{out}");
    assert!(!std::fs::read_dir(&parts).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("partial")));

    // The parts, in order, are the whole embedding row for row.
    let files: Vec<PathBuf> = (0..3).map(part).collect();
    let merged = medpick_core::embed::parts::read_parts(&files).unwrap();
    let all = medpick_core::features::Features::read(&whole).unwrap();
    assert_eq!((merged.ids.clone(), merged.dim), (all.ids.clone(), all.dim));
    assert_eq!(merged.data, all.data);

    // select on the folder of parts picks what it picks on the whole.
    let select = |input: &[&Path], out: &str| {
        run(
            &["select", "--budget", "5", "--strategy", "coreset", "--seed", "2"],
            &[input, &[Path::new("--out"), &dir.join(out)]].concat(),
            &[],
        )
    };
    ok(&select(&[&whole], "whole.csv"));
    let so = ok(&select(&[&parts], "parts.csv"));
    assert!(so.contains("24 samples from 3 feature files"), "{so}");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    assert_eq!(read("whole.csv"), read("parts.csv"));

    // One part alone, or two of three: the missing parts are named.
    let e = err(&select(&[&part(0), &part(2)], "two.csv"));
    assert!(e.contains("part 1 of 3 missing"), "{e}");
    let e = err(&select(&[&part(1)], "one.csv"));
    assert!(e.contains("parts 0, 2 of 3 missing"), "{e}");
    // A part with other settings (8×8 pixels, 64-d) in place of part 1: both files named.
    let odd = dir.join("odd.safetensors");
    ok(&run(
        &["embed", "--model", "pixels:8", "--cache", "none", "--shard", "1/3"],
        &[&images, Path::new("--out"), &odd],
        &[],
    ));
    let e = err(&select(&[&part(0), &odd, &part(2)], "odd.csv"));
    assert!(e.contains("do not belong together") && e.contains("odd.safetensors") && e.contains("part_0"), "{e}");
    // Parts of another listing (the first 12 images only) never merge with these.
    let half = dir.join("half");
    std::fs::create_dir_all(&half).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&images).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names.iter().take(12) {
        std::fs::copy(p, half.join(p.file_name().unwrap())).unwrap();
    }
    let other = dir.join("other.safetensors");
    ok(&run(&[&embed[..], &["--shard", "1/3"]].concat(), &[&half, Path::new("--out"), &other], &[]));
    let e = err(&select(&[&part(0), &other, &part(2)], "other.csv"));
    assert!(e.contains("parts of different runs"), "{e}");
    // A truncated part is named.
    let bytes = std::fs::read(part(2)).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let e = err(&select(&[&part(0), &part(1), &cut], "cut.csv"));
    assert!(e.contains("cut.safetensors"), "{e}");
    // Bad shard settings.
    let e = err(&run(
        &[&embed[..], &["--shard", "3/3"]].concat(),
        &[&images, Path::new("--out"), &dir.join("x.safetensors")],
        &[],
    ));
    assert!(e.contains("--shard") && e.contains("0 ≤ I < N"), "{e}");
    let e = err(&run(
        &[&embed[..], &["--shard", "auto"]].concat(),
        &[&images, Path::new("--out"), &dir.join("y.safetensors")],
        &[],
    ));
    assert!(e.contains("SLURM_ARRAY_TASK_ID"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Kubernetes Indexed Job example (scripts/k8s/embed-indexed-job.yaml) without a cluster: each pod's command,
/// read from the file, run by `sh -c` with `JOB_COMPLETION_INDEX` set as Kubernetes sets it for every index of
/// `completions`, the paths pointed at the bundled sample and `--model pixels` added for speed. The parts it writes
/// open as one pool equal to one whole embedding, and `completions` is the command's `--shard-count`.
#[test]
fn the_kubernetes_indexed_job_commands_embed_every_part() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let yaml = std::fs::read_to_string(root.join("scripts/k8s/embed-indexed-job.yaml")).unwrap();
    let completions: usize = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions:"))
        .and_then(|v| v.split('#').next()?.trim().parse().ok())
        .expect("completions: N");
    // The folded `args` scalar (`- >-`): its lines joined by spaces.
    let lines: Vec<&str> = yaml.lines().collect();
    let at = lines.iter().position(|l| l.trim() == "- >-").expect("the args block");
    let indent = lines[at + 1].len() - lines[at + 1].trim_start().len();
    let command: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| l.len() - l.trim_start().len() == indent && !l.trim().is_empty())
        .map(|l| l.trim())
        .collect();
    let command = command.join(" ");
    assert!(command.contains(&format!("--shard-count {completions}")), "{command}");
    let dir = std::env::temp_dir().join(format!("medpick-k8s-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("run/parts")).unwrap();
    let images = root.join("samples/dsb2018/images");
    let bin = crate::cli::medpick();
    let command = command
        .replace("medpick embed", &format!("'{}' embed --model pixels", bin.display()))
        .replace("/data/images", &images.display().to_string())
        .replace("/data/cache", &dir.join("cache").display().to_string())
        .replace("/data/run", &dir.join("run").display().to_string());
    for index in 0..completions {
        let o =
            Command::new("sh").args(["-c", &command]).env("JOB_COMPLETION_INDEX", index.to_string()).output().unwrap();
        let out = ok(&o);
        assert!(out.contains(&format!("JOB_COMPLETION_INDEX={index} of --shard-count {completions}")), "{out}");
    }
    let whole = dir.join("whole.safetensors");
    ok(&run(&["embed", "--model", "pixels", "--cache", "none"], &[&images, Path::new("--out"), &whole], &[]));
    // The parts, opened as one pool, are the whole embedding row for row.
    let (pool, files) = medpick_core::embed::parts::open_pool(&[dir.join("run/parts")]).unwrap();
    let one = medpick_core::features::Features::read(&whole).unwrap();
    assert_eq!(files, completions);
    assert_eq!((pool.ids, pool.data), (one.ids, one.data));
    let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
    ok(&run(&["select", "--budget", "5", "--strategy", "coreset", "--out"], &[&a, &whole], &[]));
    ok(&run(&["select", "--budget", "5", "--strategy", "coreset", "--out"], &[&b, &dir.join("run/parts")], &[]));
    assert_eq!(std::fs::read_to_string(&a).unwrap(), std::fs::read_to_string(&b).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}
