//! Selection beyond one machine (issue 26): local coresets per part (`select --shard I/N --coreset-out`) and the
//! final pick from their union. The picks of `coreset` on the union cover the whole pool within the union's
//! radius plus the largest local radius (a guarantee, checked), and within 4× the single-machine run's radius
//! (greedy k-center is a 2-approximation on each level); the coreset files refuse to merge with a part missing or
//! with features of another run.

use std::path::{Path, PathBuf};
use std::process::Command;

use medpick_core::embed::parts::Shard;
use medpick_core::exec::Backend;
use medpick_core::select::composable::{covering_radius, local_coreset, part_rows};
use medpick_core::select::{Matrix, SelectInput};

use crate::common::{load_safetensors, shared};

/// (name, rows, n, d) of the pools: LiteMedSAM features of Kvasir-SEG when present, and synthetic blobs.
fn pools() -> Vec<(&'static str, Vec<f32>, usize, usize)> {
    let mut v = Vec::new();
    if let Some(sh) = shared() {
        let f = sh.join("fixtures/selection/features.safetensors");
        if f.exists() {
            v.push(("Kvasir-SEG LiteMedSAM 1000×256", load_safetensors(&f)["features"].1.clone(), 1000, 256));
        }
    }
    v.push(("synthetic blobs 20000×48", medpick_core::bench::synthetic_features(20_000, 48, 9), 20_000, 48));
    v
}

fn coreset(x: Matrix, budget: usize) -> Vec<usize> {
    let input = SelectInput { x, budget, seed: 3, labeled: &[], scans: Some(Backend::Cpu), weights: None };
    pollster::block_on(medpick_core::select::select("coreset", &input)).unwrap().picks
}

#[test]
fn picks_from_local_coresets_cover_the_pool_within_the_bound() {
    for (name, x, n, d) in pools() {
        let full = Matrix::new(&x, n, d).unwrap();
        let (budget, parts) = (25, 4);
        let mut union_rows = Vec::new();
        let mut local_max = 0f64;
        for i in 0..parts {
            let r = part_rows(n, Shard { index: i, count: parts });
            let part = Matrix::new(&x[r.start * d..r.end * d], r.len(), d).unwrap();
            let c = local_coreset(part, 4 * budget, 7 + i as u64);
            assert_eq!(c.weights.iter().sum::<usize>(), r.len(), "{name}: part {i}'s weights");
            assert_eq!(c.rows.len(), (4 * budget).min(r.len()));
            // Every row of the part is within the local radius of a kept row (up to the f32 storage of distances).
            let own = covering_radius(part, &c.rows);
            assert!((own - c.radius()).abs() <= 1e-6 * own.max(1.0), "{name}: part {i}: {own} vs {}", c.radius());
            local_max = local_max.max(c.radius());
            union_rows.extend(c.rows.iter().map(|&j| r.start + j));
        }
        let ux: Vec<f32> = union_rows.iter().flat_map(|&i| full.row(i).iter().copied()).collect();
        let union = Matrix::new(&ux, union_rows.len(), d).unwrap();
        let picks: Vec<usize> = coreset(union, budget).into_iter().map(|j| union_rows[j]).collect();
        let dist = covering_radius(full, &picks);
        let bound = covering_radius(union, &coreset(union, budget)) + local_max;
        assert!(dist <= bound * (1.0 + 1e-6), "{name}: radius {dist} above the bound {bound}");
        let single = covering_radius(full, &coreset(full, budget));
        assert!(dist <= 4.0 * single, "{name}: distributed radius {dist} vs single-machine {single}");
        eprintln!(
            "{name}: covering radius {dist:.4} (bound {bound:.4}), single machine {single:.4}: {:.3}×",
            dist / single
        );
    }
}

/// Two blobs, one ten times as heavy and a third as wide: local coresets keep more rows of the wide one (k-center
/// sees extent, not mass), each row weighted by the rows it covers. Picked from the union with the weights, the
/// k-means strategies put their picks where a single machine puts them (more in the heavy blob); without the
/// weights they split the budget by the coresets' row counts. Weights of 1 give the unweighted picks bit for bit.
#[test]
fn weighted_kmeans_strategies_on_local_coresets_follow_the_pool_mass() {
    let d = 2;
    let mut rng = medpick_core::rng::Rng::new(5);
    let mut x = Vec::new();
    // Row i is in the light blob when i % 11 == 10: every part holds both blobs.
    let light = |i: usize| i % 11 == 10;
    for i in 0..6600 {
        // The heavy blob around (20, 0) with σ = 1, the light one around (0, 20) with σ = 3.
        let (cx, cy, s) = if light(i) { (0.0, 20.0, 3.0) } else { (20.0, 0.0, 1.0) };
        x.push(cx + s * rng.normal());
        x.push(cy + s * rng.normal());
    }
    let n = x.len() / d;
    let full = Matrix::new(&x, n, d).unwrap();
    let budget = 12;
    let (mut rows, mut weights) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let r = part_rows(n, Shard { index: i, count: 3 });
        let part = Matrix::new(&x[r.start * d..r.end * d], r.len(), d).unwrap();
        let c = local_coreset(part, 4 * budget, 11 + i as u64);
        rows.extend(c.rows.iter().map(|&j| r.start + j));
        weights.extend(c.weights.iter().map(|&w| w as f64));
    }
    let ux: Vec<f32> = rows.iter().flat_map(|&i| full.row(i).iter().copied()).collect();
    let union = Matrix::new(&ux, rows.len(), d).unwrap();
    let in_heavy = |picks: &[usize], map: &dyn Fn(usize) -> usize| picks.iter().filter(|&&p| !light(map(p))).count();
    let kept_heavy = rows.iter().filter(|&&r| !light(r)).count();
    assert!(kept_heavy * 3 < rows.len() * 2, "the coresets kept {kept_heavy} of {} rows in the heavy blob", rows.len());
    // How far the union's heavy-blob picks are from one machine's, summed over the strategies.
    let (mut off_w, mut off_u) = (0, 0);
    for name in ["alps", "typiclust", "typiclust-knn", "kmeans-centroid"] {
        let pick = |x: Matrix, w: Option<&[f64]>| {
            let input = SelectInput { x, budget, seed: 1, labeled: &[], scans: Some(Backend::Cpu), weights: w };
            pollster::block_on(medpick_core::select::select(name, &input)).unwrap()
        };
        let single = in_heavy(&pick(full, None).picks, &|p| p);
        let weighted = pick(union, Some(&weights));
        let plain = in_heavy(&pick(union, None).picks, &|p| rows[p]);
        let w_heavy = in_heavy(&weighted.picks, &|p| rows[p]);
        eprintln!("{name}: heavy-blob picks: one machine {single}, union weighted {w_heavy}, unweighted {plain}");
        assert!(w_heavy > plain, "{name}: the weights did not move picks to the heavy blob ({w_heavy} vs {plain})");
        (off_w, off_u) = (off_w + w_heavy.abs_diff(single), off_u + plain.abs_diff(single));
        assert!(weighted.notes.iter().any(|t| t.contains("weighted k-means")), "{name}: {:?}", weighted.notes);
        let ones = vec![1.0; union.n];
        let (a, b) = (pick(union, Some(&ones)), pick(union, None));
        assert_eq!((a.picks, a.scores), (b.picks, b.scores), "{name}: weights of 1 changed the picks");
    }
    assert!(off_w < off_u, "weighted picks {off_w} off one machine's in all, unweighted {off_u}");
    // Weights are checked: one per row, positive.
    let bad = SelectInput { x: union, budget, seed: 1, labeled: &[], scans: None, weights: Some(&weights[1..]) };
    let e = pollster::block_on(medpick_core::select::select("alps", &bad)).unwrap_err().to_string();
    assert!(e.contains("row weights"), "{e}");
    for v in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut w = weights.clone();
        w[7] = v;
        let bad = SelectInput { weights: Some(&w), ..bad };
        let e = pollster::block_on(medpick_core::select::select("typiclust-knn", &bad)).unwrap_err().to_string();
        assert!(e.contains("row 7's weight") && e.contains("not a positive number"), "{v}: {e}");
    }
}

#[test]
fn repeated_rows_end_a_local_coreset_early_without_repeating_a_row() {
    // 400 rows, 10 distinct values repeated: once all are covered at distance 0 the coreset stops.
    let base = medpick_core::bench::synthetic_features(10, 16, 2);
    let x: Vec<f32> = (0..400).flat_map(|i| base[(i % 10) * 16..(i % 10 + 1) * 16].to_vec()).collect();
    let c = local_coreset(Matrix::new(&x, 400, 16).unwrap(), 50, 1);
    assert_eq!(c.rows.len(), 10, "{:?}", c.rows);
    let mut distinct = c.rows.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    assert_eq!(c.weights.iter().sum::<usize>(), 400);
    assert!(c.weights.iter().all(|&w| w == 40) && c.radius() == 0.0, "{:?} {:?}", c.weights, c.radii);
}

fn medpick(args: &[&str], paths: &[&Path], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(crate::cli::medpick());
    c.args(args).args(paths);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn select_shard_writes_local_coresets_and_the_union_is_picked_from() {
    let dir = std::env::temp_dir().join(format!("medpick-composable-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("cs")).unwrap();
    let (n, d) = (6000, 32);
    let x = medpick_core::bench::synthetic_features(n, d, 4);
    let feats = medpick_core::features::Features {
        ids: (0..n).map(|i| format!("img{i:05}")).collect(),
        dim: d,
        data: x,
        model: "synthetic".into(),
        pool: "none".into(),
        preprocess: "none".into(),
    };
    let pool = dir.join("pool.safetensors");
    feats.write(&pool, true).unwrap();
    let cs = |i: usize| dir.join("cs").join(format!("coreset_{i}.safetensors"));
    for i in 0..3 {
        let o = medpick(
            &["select", "--budget", "10", "--shard", &format!("{i}/3"), "--coreset-out"],
            &[&cs(i), &pool],
            &[],
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{out}");
        assert!(out.contains(&format!("part {i}/3: 2000 rows -> local k-center coreset of 40 rows")), "{out}");
    }
    // The union: coreset's picks come with the radius that covers the whole pool.
    let picks = dir.join("picks.csv");
    let o = medpick(&["select", "--budget", "10", "--strategy", "coreset", "--out"], &[&picks, &dir.join("cs")], &[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("the union of 3 local k-center coresets, 120 rows standing for 6000"), "{out}");
    assert!(out.contains("every one of the pool's 6000 rows is within"), "{out}");
    let csv = std::fs::read_to_string(&picks).unwrap();
    assert_eq!(csv.lines().count(), 11, "{csv}");
    // k-means coresets: the row nearest each local k-means centre, weighted by its cluster; alps picks from their
    // union counting each row by its weight.
    let km = |i: usize| dir.join("km").join(format!("coreset_{i}.safetensors"));
    for i in 0..3 {
        let shard = format!("{i}/3");
        let args = ["select", "--budget", "10", "--shard", &shard, "--coreset-kind", "k-means", "--coreset-out"];
        let o = medpick(&args, &[&km(i), &pool], &[]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{out}");
        assert!(out.contains(&format!("part {i}/3: 2000 rows -> local k-means coreset of 40 rows")), "{out}");
    }
    let o = medpick(
        &["select", "--budget", "10", "--strategy", "alps", "--json", "--out"],
        &[&dir.join("alps.csv"), &dir.join("km")],
        &[],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("the union of 3 local k-means coresets, 120 rows standing for 6000"), "{out}");
    let json = std::fs::read_to_string(dir.join("alps.json")).unwrap();
    assert!(json.contains("rows weighted by the pool rows each stands for: weighted k-means"), "{json}");
    // Coresets of the two kinds do not mix.
    let o = medpick(&["select", "--budget", "10", "--out"], &[&dir.join("p4.csv"), &cs(0), &cs(1), &km(2)], &[]);
    let se = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && se.contains("is a k-center coreset but"), "{se}");
    // The union as one Parquet table for other tools (ids, features, weights), never over an existing file.
    let pq = dir.join("union.parquet");
    let o = medpick(&["export", "--out"], &[&pq, &dir.join("km")], &[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("wrote 120 rows × 32 features from 3 file(s) (local coresets: with their weights)"), "{out}");
    let bytes = std::fs::read(&pq).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"), "not a Parquet file");
    let o = medpick(&["export", "--out"], &[&pq, &pool], &[]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("exists"), "overwrote the export");
    // A missing part is named; coresets and plain features do not mix.
    let files: Vec<PathBuf> = vec![cs(0), cs(2)];
    let o = medpick(&["select", "--budget", "10", "--out"], &[&dir.join("p2.csv"), &files[0], &files[1]], &[]);
    let se = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && se.contains("part 1 of 3 missing") && se.contains("medpick select --shard"), "{se}");
    let o = medpick(&["select", "--budget", "10", "--out"], &[&dir.join("p3.csv"), &cs(0), &pool], &[]);
    let se = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && se.contains("not a part of"), "{se}");
    // A coreset is not a pool to take a coreset of.
    let o = medpick(
        &["select", "--budget", "10", "--shard", "1/3", "--coreset-out"],
        &[&dir.join("x.safetensors"), &cs(0)],
        &[],
    );
    let se = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && se.contains("is already a local coreset"), "{se}");
    // A part with no rows (more parts than rows) writes an empty coreset and the union still opens.
    let tiny =
        medpick_core::features::Features { ids: vec!["a".into(), "b".into()], dim: d, data: vec![0.5; 2 * d], ..feats };
    let tiny_pool = dir.join("tiny.safetensors");
    tiny.write(&tiny_pool, true).unwrap();
    std::fs::create_dir_all(dir.join("tiny")).unwrap();
    for i in 0..3 {
        let o = medpick(
            &["select", "--budget", "1", "--shard", &format!("{i}/3"), "--coreset-out"],
            &[&dir.join("tiny").join(format!("c{i}.safetensors")), &tiny_pool],
            &[],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = medpick(
        &["select", "--budget", "1", "--strategy", "coreset", "--out"],
        &[&dir.join("t.csv"), &dir.join("tiny")],
        &[],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && out.contains("standing for 2"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}
