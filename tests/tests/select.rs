//! Selection: MedCAL-Bench's own picks on real LiteMedSAM features of Kvasir-SEG (../shared/fixtures/selection),
//! given MedCAL's own k-means output; determinism; the scans (k-means, kNN, ProbCover's scan and δ-graph,
//! lazy-greedy facility location, every strategy) on every backend (the CPU backend always, the GPU when there
//! is one) against the plain f64 reference, with tiles small enough to stream.

use std::collections::HashSet;

use medpick_core::exec::Backend;
use medpick_core::select::kmeans::Clustering;
use medpick_core::select::{self, scan, strategies, Matrix, SelectInput};

use crate::common::{gpu, load_safetensors, shared};

/// The scan backends to test: the CPU backend, and the GPU when there is one.
fn backends() -> Vec<(&'static str, Backend<'static>)> {
    let mut v = vec![("CPU backend", Backend::Cpu)];
    if let Some(ctx) = gpu() {
        v.push(("GPU", Backend::Gpu(ctx)));
    }
    v
}

struct Fixture {
    x: Vec<f32>,
    picks: serde_json::Value,
    meta: serde_json::Value,
    km: std::collections::HashMap<String, (Vec<usize>, Vec<f32>)>,
}

fn fixture() -> Option<Fixture> {
    let sh = shared()?;
    let dir = sh.join("fixtures/selection");
    if !dir.join("features.safetensors").exists() {
        eprintln!("skipped: {} not present", dir.display());
        return None;
    }
    let f = load_safetensors(&dir.join("features.safetensors"));
    let km = load_safetensors(&dir.join("medcal_kmeans.safetensors"));
    Some(Fixture {
        x: f["features"].1.clone(),
        picks: serde_json::from_str(&std::fs::read_to_string(dir.join("medcal_picks.json")).unwrap()).unwrap(),
        meta: serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap(),
        km: km.into_iter().collect(),
    })
}

impl Fixture {
    fn x(&self) -> Matrix<'_> {
        Matrix::new(&self.x, 1000, 256).unwrap()
    }

    fn want(&self, strategy: &str, b: usize) -> Vec<usize> {
        self.picks[strategy][b.to_string()].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect()
    }

    fn clustering(&self, strategy: &str, b: usize) -> Clustering {
        let (_, labels) = &self.km[&format!("{strategy}/B{b}/kmeans0/labels")];
        let (shape, centers) = &self.km[&format!("{strategy}/B{b}/kmeans0/centers")];
        let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
        Clustering { k: shape[0], labels, centers: centers.iter().map(|&c| c as f64).collect(), inertia: 0.0 }
    }
}

const BUDGETS: [usize; 3] = [90, 135, 180];

#[test]
fn medcal_typiclust_exact_given_its_kmeans() {
    let Some(f) = fixture() else { return };
    for b in BUDGETS {
        let c = f.clustering("typiclust", b);
        assert_eq!(strategies::typiclust_from(f.x(), None, &c.labels, c.k).picks, f.want("typiclust", b), "B={b}");
    }
}

#[test]
fn medcal_bal_exact_given_its_kmeans() {
    let Some(f) = fixture() else { return };
    for b in BUDGETS {
        assert_eq!(strategies::bal_from(f.x(), &f.clustering("bal", b), b).picks, f.want("bal", b), "B={b}");
    }
}

#[test]
fn medcal_fps_exact_given_its_kmeans_including_duplicates() {
    let Some(f) = fixture() else { return };
    for b in BUDGETS {
        let c = f.clustering("fps", b);
        let got = strategies::fps_from(f.x(), &c.labels, c.k, b);
        assert_eq!(got.picks, f.want("fps", b), "B={b}");
        let unique: HashSet<_> = got.picks.iter().collect();
        assert_eq!(unique.len() as u64, f.meta["unique_counts"]["fps"][b.to_string()].as_u64().unwrap());
    }
}

#[test]
fn medcal_coreset_exact_given_its_first_index() {
    let Some(f) = fixture() else { return };
    for b in BUDGETS {
        let first = f.meta["coreset_first_index"][b.to_string()].as_u64().unwrap() as usize;
        let input = SelectInput { x: f.x(), budget: b, seed: 0, labeled: &[], scans: None, weights: None };
        let got = pollster::block_on(strategies::coreset(&input, Some(first))).unwrap();
        assert_eq!(got.picks, f.want("coreset", b), "B={b}");
    }
}

#[test]
fn medcal_probcover_exact_given_its_delta_and_labels() {
    let Some(f) = fixture() else { return };
    for b in BUDGETS {
        let c = f.clustering("probcover", b);
        let delta = f.meta["probcover_delta"][b.to_string()].as_f64().unwrap();
        // Our δ scan on MedCAL's pseudo-labels reproduces MedCAL's δ (stored rounded to 6 digits).
        let ours = medpick_core::select::probcover::probcover_delta(f.x(), &c.labels);
        assert!((ours - delta).abs() < 1e-5, "B={b}: δ {ours} vs MedCAL {delta}");
        let got = medpick_core::select::probcover::probcover_from(f.x(), ours, b, &[]);
        assert_eq!(got.picks, f.want("probcover", b), "B={b}");
    }
}

fn alps_objective(x: Matrix, c: &Clustering, picks: &[usize]) -> f64 {
    picks
        .iter()
        .map(|&p| {
            let k = c.labels[p];
            x.row(p)
                .iter()
                .zip(&c.centers[k * x.d..(k + 1) * x.d])
                .map(|(&a, &b)| (a as f64 - b).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .sum()
}

#[test]
fn medcal_alps_objective_matches() {
    let Some(f) = fixture() else { return };
    for b in BUDGETS {
        let c = f.clustering("alps", b);
        let got = strategies::alps_from(f.x(), &c);
        let (ours, theirs) = (alps_objective(f.x(), &c, &got.picks), alps_objective(f.x(), &c, &f.want("alps", b)));
        assert!((ours - theirs).abs() <= 1e-3 * theirs, "B={b}: {ours} vs {theirs}");
        let overlap = got.picks.iter().filter(|p| f.want("alps", b).contains(p)).count();
        eprintln!("alps B={b}: objective {ours:.6} vs MedCAL {theirs:.6}, {overlap}/{b} picks identical");
    }
}

#[test]
fn medcal_repdiv_facility_location_value_matches() {
    let Some(f) = fixture() else { return };
    let x = f.x();
    let norm: Vec<Vec<f64>> = (0..1000)
        .map(|i| {
            let r = x.row(i);
            let n = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() + 1e-10;
            r.iter().map(|&v| v as f64 / n).collect()
        })
        .collect();
    let value = |picks: &[usize]| -> f64 {
        (0..1000)
            .map(|j| {
                picks
                    .iter()
                    .map(|&s| norm[j].iter().zip(&norm[s]).map(|(a, b)| a * b).sum::<f64>())
                    .fold(0f64, f64::max)
            })
            .sum()
    };
    for b in BUDGETS {
        let r = (0.7 * b as f64).floor() as usize;
        let input = SelectInput { x, budget: b, seed: 0, labeled: &[], scans: None, weights: None };
        let got = pollster::block_on(select::repdiv::repdiv(&input, false)).unwrap();
        let (ours, theirs) = (value(&got.picks[..r]), value(&f.want("repdiv", b)[..r]));
        assert!((ours - theirs).abs() <= 1e-3 * theirs, "B={b}: {ours} vs {theirs}");
    }
}

#[test]
fn every_strategy_returns_budget_unique_picks_deterministically() {
    let Some(f) = fixture() else { return };
    let n = 300; // a prefix keeps the O(n²) strategies quick
    let x = Matrix::new(&f.x[..n * 256], n, 256).unwrap();
    for name in select::COLD_START {
        let input = SelectInput { x, budget: 27, seed: 3, labeled: &[], scans: None, weights: None };
        let a = pollster::block_on(select::select(name, &input)).unwrap();
        let b = pollster::block_on(select::select(name, &input)).unwrap();
        assert_eq!(a, b, "{name} is not deterministic");
        assert_eq!(a.picks.len(), 27, "{name}");
        assert_eq!(a.picks.iter().collect::<HashSet<_>>().len(), 27, "{name} returned duplicates");
        assert!(a.picks.iter().all(|&p| p < n));
        // Warm start: labelled rows are never picked.
        let labeled = [0usize, 5, 9];
        let warm = pollster::block_on(select::select(name, &SelectInput { labeled: &labeled, ..input })).unwrap();
        assert!(warm.picks.iter().all(|p| !labeled.contains(p)), "{name} picked a labelled row");
        assert_eq!(warm.picks.len(), 27);
    }
    let err = pollster::block_on(select::select(
        "nope",
        &SelectInput { x, budget: 3, seed: 0, labeled: &[], scans: None, weights: None },
    ));
    assert!(err.unwrap_err().to_string().contains("unknown strategy"));
    let err = pollster::block_on(select::select(
        "coreset",
        &SelectInput { x, budget: n + 1, seed: 0, labeled: &[], scans: None, weights: None },
    ));
    assert!(err.unwrap_err().to_string().contains("exceeds"));
}

#[test]
fn coreset_scans_match_the_reference_up_to_ties() {
    let Some(f) = fixture() else { return };
    let first = f.meta["coreset_first_index"]["180"].as_u64().unwrap() as usize;
    let cpu = pollster::block_on(strategies::coreset(
        &SelectInput { x: f.x(), budget: 180, seed: 0, labeled: &[], scans: None, weights: None },
        Some(first),
    ))
    .unwrap();
    for (name, be) in backends() {
        let got = pollster::block_on(strategies::coreset(
            &SelectInput { x: f.x(), budget: 180, seed: 0, labeled: &[], scans: Some(be), weights: None },
            Some(first),
        ))
        .unwrap();
        // Identical until a pick whose top-2 candidates are within f32 rounding; report where they part.
        let same = cpu.picks.iter().zip(&got.picks).take_while(|(a, b)| a == b).count();
        if same < 180 {
            let (a, b) = (cpu.scores[same], got.scores[same]);
            assert!((a - b).abs() <= 1e-4 * a.max(1e-6), "{name}: parts from the reference at pick {same}: {a} vs {b}");
        }
        eprintln!("coreset {name} vs reference: first {same} of 180 picks identical");
        assert!(same >= 100, "{name}: only {same} identical picks");
    }
}

/// Runs `f` with tiles of at most 300 rows × 40,000 floats, so a 1000-row pool streams through 4 × 8 tiles.
fn with_small_tiles<T>(f: impl FnOnce() -> T) -> T {
    let old = scan::set_tile_limits(300, 40_000);
    let out = f();
    scan::set_tile_limits(old.0, old.1);
    out
}

/// Row groups of a CSR graph for chunked writing: consecutive, covering, within the limit unless one row is over.
#[test]
fn delta_graph_row_groups_fit_the_limit() {
    // Rows with 3, 0, 4, 9, 1, 1 edges.
    let offsets = [0, 3, 3, 7, 16, 17, 18];
    assert_eq!(scan::row_groups(&offsets, 7), vec![(0, 3), (3, 4), (4, 6)]);
    assert_eq!(scan::row_groups(&offsets, 100), vec![(0, 6)]);
    assert_eq!(scan::row_groups(&offsets, 1), vec![(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]);
    assert_eq!(scan::row_groups(&[0], 5), vec![]);
}

#[test]
fn medcal_probcover_exact_on_the_scanned_graph_streamed() {
    let Some(f) = fixture() else { return };
    for (name, be) in backends() {
        eprintln!("{name}");
        probcover_exact_on(&f, scan::Pool::upload(be, f.x()).unwrap());
    }
}

fn probcover_exact_on(f: &Fixture, pool: scan::Pool) {
    for b in BUDGETS {
        let delta = f.meta["probcover_delta"][b.to_string()].as_f64().unwrap();
        let labels = f.clustering("probcover", b).labels;
        // The δ scan from the device's purity scan gives MedCAL's δ (same grid step).
        let d_gpu = with_small_tiles(|| pollster::block_on(scan::probcover_delta(&pool, &labels))).unwrap();
        assert!((d_gpu - delta).abs() <= 1e-5, "B={b}: δ {d_gpu} from the scans vs MedCAL's {delta}");
        let (offsets, edges) = with_small_tiles(|| pollster::block_on(scan::delta_graph(&pool, delta))).unwrap();
        let (o1, e1) = pollster::block_on(scan::delta_graph(&pool, delta)).unwrap();
        assert_eq!((&offsets, &edges), (&o1, &e1), "B={b}: the δ-graph depends on the tiling");
        // Written in chunks of about a seventh of the edges (as a graph larger than one buffer is): the same graph.
        let max = edges.len() / 7 + 1;
        assert!(scan::row_groups(&offsets, max).len() >= 7);
        let (o2, e2) = with_small_tiles(|| pollster::block_on(scan::delta_graph_chunked(&pool, delta, max))).unwrap();
        assert_eq!((&offsets, &edges), (&o2, &e2), "B={b}: the δ-graph depends on the chunking");
        let got = scan::max_cover(&offsets, &edges, b, &[], delta);
        assert_eq!(got.picks, f.want("probcover", b), "B={b}");
    }
}

#[test]
fn scanned_kmeans_matches_the_reference_quality_and_streams() {
    let Some(f) = fixture() else { return };
    for (name, be) in backends() {
        let pool = scan::Pool::upload(be, f.x()).unwrap();
        for k in [10, 90] {
            let cpu = select::kmeans::kmeans(f.x(), k, 5, 300, 1e-4);
            let g = with_small_tiles(|| pollster::block_on(scan::kmeans(&pool, k, 5, 300, 1e-4))).unwrap();
            let g2 = pollster::block_on(scan::kmeans(&pool, k, 5, 300, 1e-4)).unwrap();
            assert_eq!(g.labels, g2.labels, "{name} k={k}: k-means depends on the tiling");
            let agree = g.labels.iter().zip(&cpu.labels).filter(|(a, b)| a == b).count();
            eprintln!(
                "{name} k={k}: inertia {:.4} reference {:.4}, labels agree on {agree}/1000",
                g.inertia, cpu.inertia
            );
            let (gi, ci) = (g.inertia, cpu.inertia);
            assert!((gi - ci).abs() <= 0.02 * ci, "{name} k={k}: {gi} vs {ci}");
            assert!(g.labels.iter().all(|&l| l < k));
        }
    }
}

#[test]
fn scanned_knn_matches_the_reference_streamed() {
    let Some(f) = fixture() else { return };
    for (name, be) in backends() {
        eprintln!("{name}");
        knn_matches_on(&f, be);
    }
}

fn knn_matches_on(f: &Fixture, be: Backend) {
    let x = f.x();
    let k = 20;
    let pool = scan::Pool::upload(be, x).unwrap();
    let (vals, idx, kk) = with_small_tiles(|| pollster::block_on(scan::knn(&pool, k))).unwrap();
    assert_eq!(kk, k);
    let mut mismatched = 0;
    for i in 0..x.n {
        let mut d: Vec<(f64, usize)> = (0..x.n)
            .filter(|&j| j != i)
            .map(|j| (x.row(i).iter().zip(x.row(j)).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum(), j))
            .collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert!(!idx[i * k..(i + 1) * k].contains(&(i as u32)), "row {i} lists itself");
        for t in 0..k {
            let (want, got) = (d[t].0, vals[i * k + t] as f64);
            // The norm expansion's f32 error scales with the norms, not with the distance.
            let n2: f64 = x.row(i).iter().map(|&v| v as f64 * v as f64).sum();
            assert!((want - got).abs() <= 1e-3 * want + 1e-5 * n2, "row {i} neighbour {t}: {got} vs {want}");
            if d[t].1 != idx[i * k + t] as usize {
                mismatched += 1; // only where two neighbours are within rounding (checked by the distances)
            }
        }
    }
    eprintln!("kNN: {mismatched} of {} neighbour indices differ (near ties)", x.n * k);
    assert!(mismatched <= x.n * k / 100);
}

#[test]
fn scanned_repdiv_reaches_medcal_facility_value_streamed() {
    let Some(f) = fixture() else { return };
    for (name, be) in backends() {
        eprintln!("{name}");
        repdiv_on(&f, be);
    }
}

fn repdiv_on(f: &Fixture, be: Backend) {
    let x = f.x();
    let xn: Vec<f32> = (0..x.n)
        .flat_map(|i| {
            let r = x.row(i);
            let n = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() + 1e-10;
            r.iter().map(move |&v| (v as f64 / n) as f32)
        })
        .collect();
    let value = |picks: &[usize]| -> f64 {
        (0..x.n)
            .map(|j| {
                picks
                    .iter()
                    .map(|&s| {
                        let c: f64 = xn[j * 256..(j + 1) * 256]
                            .iter()
                            .zip(&xn[s * 256..(s + 1) * 256])
                            .map(|(&a, &b)| a as f64 * b as f64)
                            .sum();
                        c.max(0.0)
                    })
                    .fold(0.0, f64::max)
            })
            .sum()
    };
    for b in [90, 180] {
        let r = (0.7 * b as f64).floor() as usize;
        let input = SelectInput { x, budget: b, seed: 0, labeled: &[], scans: Some(be), weights: None };
        let got = with_small_tiles(|| pollster::block_on(select::repdiv::repdiv(&input, false))).unwrap();
        let (ours, theirs) = (value(&got.picks[..r]), value(&f.want("repdiv", b)[..r]));
        assert!((ours - theirs).abs() <= 1e-3 * theirs, "B={b}: {ours} vs {theirs}");
        let cpu = pollster::block_on(select::repdiv::repdiv(&SelectInput { scans: None, ..input }, false)).unwrap();
        let same = cpu.picks.iter().zip(&got.picks).take_while(|(a, b)| a == b).count();
        eprintln!("repdiv B={b}: scans and reference identical for the first {same} picks; {}", got.notes.join("; "));
        assert!(same >= r / 3, "scans and reference part after {same} picks");
    }
}

#[test]
fn every_strategy_in_the_scans_is_valid_deterministic_and_close_to_the_reference() {
    let Some(f) = fixture() else { return };
    let x = f.x();
    let labeled = [0usize, 5, 9];
    let mut by_backend = Vec::new();
    for (bname, be) in backends() {
        let mut picks = Vec::new();
        for name in select::COLD_START {
            let input = SelectInput { x, budget: 45, seed: 3, labeled: &labeled, scans: Some(be), weights: None };
            let a = pollster::block_on(select::select_on(name, &input)).unwrap();
            let b = with_small_tiles(|| pollster::block_on(select::select_on(name, &input))).unwrap();
            assert_eq!(a.picks, b.picks, "{bname} {name}: picks depend on the run or the tiling");
            assert_eq!(a.picks.len(), 45, "{bname} {name}");
            assert_eq!(a.picks.iter().collect::<HashSet<_>>().len(), 45, "{bname} {name} returned duplicates");
            assert!(a.picks.iter().all(|p| !labeled.contains(p)), "{bname} {name} picked a labelled row");
            let c = pollster::block_on(select::select_on(name, &SelectInput { scans: None, ..input })).unwrap();
            let overlap = a.picks.iter().filter(|p| c.picks.contains(p)).count();
            eprintln!("{bname} {name}: scans and reference share {overlap} of 45 picks");
            // Where k-means runs, an f32 clustering can settle differently from the f64 one (labels flip at
            // near-equidistant rows), so the picks overlap rather than match; the rest match up to ties.
            assert!(overlap >= 30, "{bname} {name}: scans and reference share only {overlap} of 45 picks");
            // The CPU backend's scans measure distances in f64 like the reference: only exact ties may differ.
            if !be.is_gpu() {
                assert!(overlap >= 43, "{name}: the CPU backend's scans share only {overlap} of 45 reference picks");
            }
            picks.push(a.picks);
        }
        by_backend.push(picks);
    }
    // The CPU backend and the GPU run the same scans: the same picks up to f32 ties.
    if let [cpu, gpu] = &by_backend[..] {
        for ((name, c), g) in select::COLD_START.iter().zip(cpu).zip(gpu) {
            let overlap = c.iter().filter(|p| g.contains(p)).count();
            eprintln!("{name}: CPU backend and GPU share {overlap} of 45 picks");
            assert!(overlap >= 30, "{name}: CPU backend and GPU share only {overlap} of 45 picks");
        }
    }
}

#[test]
fn medcal_usl_exact() {
    let Some(f) = fixture() else { return };
    for b in BUDGETS {
        let input = SelectInput { x: f.x(), budget: b, seed: 0, labeled: &[], scans: None, weights: None };
        let got = pollster::block_on(select::select("usl-medcal", &input)).unwrap();
        let want = f.want("usl", b);
        let same_set = got.picks.iter().collect::<HashSet<_>>() == want.iter().collect::<HashSet<_>>();
        assert!(same_set, "B={b}: usl-medcal picks a different set than MedCAL's USL");
        assert_eq!(got.picks, want, "B={b}: same set, different order");
    }
}

#[test]
fn usl_and_official_probcover_behave() {
    let Some(f) = fixture() else { return };
    let x = f.x();
    let input = SelectInput { x, budget: 90, seed: 1, labeled: &[], scans: None, weights: None };
    let u = pollster::block_on(select::select("usl", &input)).unwrap();
    assert_eq!(u.picks.len(), 90);
    // USL's picks are dense points (its own density: 400 nearest squared distances on unit vectors) and spread
    // over the pool (the regulariser): denser than a random sample on average, and no two picks coincide.
    let unit: Vec<Vec<f64>> = (0..x.n)
        .map(|i| {
            let r = x.row(i);
            let n = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            r.iter().map(|&v| v as f64 / n).collect()
        })
        .collect();
    let density = |i: usize| {
        let mut d: Vec<f64> =
            (0..x.n).map(|j| unit[i].iter().zip(&unit[j]).map(|(a, b)| (a - b).powi(2)).sum()).collect();
        d.sort_by(|a, b| a.total_cmp(b));
        1.0 / (d[..400].iter().sum::<f64>() / 400.0)
    };
    let r = pollster::block_on(select::select("random", &input)).unwrap();
    // With B = 90 clusters in 1000 points and K = 400 (CIFAR's defaults, made for 50k points) the regulariser
    // outweighs the density: the picks spread out. Check the spread, and that density still ranks within USL.
    let spread = |p: &[usize]| {
        p.iter()
            .map(|&i| {
                p.iter()
                    .filter(|&&j| j != i)
                    .map(|&j| unit[i].iter().zip(&unit[j]).map(|(a, b)| (a - b).powi(2)).sum::<f64>())
                    .fold(f64::INFINITY, f64::min)
            })
            .sum::<f64>()
            / p.len() as f64
    };
    assert!(spread(&u.picks) > spread(&r.picks), "USL picks are not more spread out than random ones");
    let no_reg = SelectInput { budget: 1, ..input };
    let one = pollster::block_on(select::select("usl", &no_reg)).unwrap();
    let densest = (0..x.n).map(density).fold(f64::NEG_INFINITY, f64::max);
    assert!((density(one.picks[0]) - densest).abs() <= 1e-9 * densest, "with one cluster USL picks the densest row");
    // probcover-delta: binary search gives a δ in (0, 1); a given δ is used as is; a bad δ is an error.
    let p = pollster::block_on(select::select("probcover-delta", &input)).unwrap();
    assert!(p.notes[0].contains("binary search"), "{:?}", p.notes);
    let given = pollster::block_on(select::select("probcover-delta:0.3", &input)).unwrap();
    assert!(given.notes[0].starts_with("δ = 0.300000 (given)"), "{:?}", given.notes);
    let err = pollster::block_on(select::select("probcover-delta:abc", &input)).unwrap_err();
    assert!(err.to_string().contains("not a non-negative number"), "{err}");
    for (bname, be) in backends() {
        for name in ["probcover-delta", "probcover-delta:0.3", "usl-medcal"] {
            let g = pollster::block_on(select::select_on(name, &SelectInput { scans: Some(be), ..input })).unwrap();
            let c = pollster::block_on(select::select_on(name, &input)).unwrap();
            let overlap = g.picks.iter().filter(|p| c.picks.contains(p)).count();
            let (gn, cn) = (g.notes.first(), c.notes.first());
            eprintln!("{bname} {name}: scans and reference share {overlap} of 90 picks; {gn:?} / {cn:?}");
            assert!(overlap >= 80, "{bname} {name}: scans and reference share only {overlap} of 90 picks");
        }
    }
}

/// A pool held as row blocks (what a matrix larger than one storage binding becomes: 128 MiB is 43k rows of
/// 768 floats in a browser) gives the picks of the single-buffer pool: blocks of 370 rows, so tiles of 300 rows
/// straddle block edges. One strategy per blocked code path (k-center update, k-means seeding and centre update,
/// pool-vs-centres scan, self-scan kNN, ProbCover's scan and δ-graph, facility-location gains and distance
/// columns). Only k-means centres are summed in another order (per block, then combined), which may move a pick
/// between near-equidistant rows.
#[test]
fn blocked_pool_strategies_match_the_single_buffer() {
    let Some(f) = fixture() else { return };
    for (name, be) in backends() {
        eprintln!("{name}");
        blocked_pool_on(&f, be);
    }
}

fn blocked_pool_on(f: &Fixture, be: Backend) {
    let x = f.x();
    let labeled = [0usize, 5, 9];
    const BLOCKED: [&str; 6] = ["coreset", "coreset-f16", "bal", "usl-medcal", "probcover", "repdiv"];
    let blocked = || {
        // A binding of 371 rows: pools in blocks of 370 (one spare row), tile scans within it too.
        let old = scan::set_binding_limit(Some(371 * x.d));
        let pool = scan::Pool::upload(be, x).unwrap();
        assert!(pool.is_blocked() && pool.blocks() == 3);
        drop(pool);
        let r = |name: &str| {
            let input = SelectInput { x, budget: 45, seed: 3, labeled: &labeled, scans: Some(be), weights: None };
            with_small_tiles(|| pollster::block_on(select::select_on(name, &input))).unwrap()
        };
        let out: Vec<_> = BLOCKED.iter().map(|n| r(n)).collect();
        scan::set_binding_limit(old);
        out
    };
    let got = blocked();
    let mut kmeans_moved = 0;
    for (name, b) in BLOCKED.iter().zip(&got) {
        let input = SelectInput { x, budget: 45, seed: 3, labeled: &labeled, scans: Some(be), weights: None };
        let a = pollster::block_on(select::select_on(name, &input)).unwrap();
        let same = a.picks.iter().zip(&b.picks).filter(|(p, q)| p == q).count();
        eprintln!("{name}: blocked and single-buffer pools agree on {same} of 45 picks");
        if same < 45 {
            kmeans_moved += 1;
            assert!(
                !matches!(*name, "coreset" | "coreset-f16" | "repdiv" | "usl-medcal"),
                "{name}: picks depend on the blocking"
            );
            assert!(same >= 40, "{name}: only {same} of 45 picks agree");
        }
    }
    assert!(kmeans_moved <= 2, "{kmeans_moved} k-means strategies moved");
    // The blocked k-center step on its own: identical minimum distances.
    let old = scan::set_binding_limit(Some(371 * x.d));
    let bp = scan::Pool::upload(be, x).unwrap();
    scan::set_binding_limit(old);
    let sp = scan::Pool::upload(be, x).unwrap();
    assert!(!sp.is_blocked());
    let mind = |p: &scan::Pool| {
        let t = be.storage("test", 1000).unwrap();
        let mut ex = be.exec();
        for (i, c) in [999usize, 0, 370, 369, 740].into_iter().enumerate() {
            pollster::block_on(p.min_dist_update(&mut ex, &t, c, i == 0)).unwrap();
        }
        pollster::block_on(ex.read_f32(&t, 1000)).unwrap()
    };
    let (mb, ms) = (mind(&bp), mind(&sp));
    assert_eq!(mb, ms);
    assert_eq!([0, 369, 370, 740, 999].map(|i| mb[i]), [0.0; 5], "a centre is at distance 0 from itself");
}

/// A feature file with a NaN row or a repeated id is refused at the boundary, naming the file and the sample
/// (a NaN row would be picked first by distance-based strategies, a repeated id annotated twice).
#[test]
fn select_refuses_non_finite_rows_and_repeated_ids() {
    let dir = std::env::temp_dir().join(format!("medpick-badfeat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (n, d) = (40, 8);
    let data: Vec<f32> = (0..n * d).map(|i| ((i * 37) % 101) as f32 / 101.0).collect();
    let ids: Vec<String> = (0..n).map(|i| format!("img{i}.png")).collect();
    let good = medpick_core::features::Features {
        ids: ids.clone(),
        dim: d,
        data: data.clone(),
        model: "test".into(),
        pool: "mean".into(),
        preprocess: String::new(),
    };
    let mut nan = good.clone();
    nan.data[17 * d + 3] = f32::NAN;
    let mut dup = good.clone();
    dup.ids[30] = "img5.png".into();
    for (name, f, want) in [
        ("nan", nan, "row 17 (id \"img17.png\") holds a non-finite value"),
        ("dup", dup, "id \"img5.png\" appears twice (rows 5 and 30)"),
    ] {
        let path = dir.join(format!("{name}.safetensors"));
        f.write(&path, true).unwrap();
        let o = std::process::Command::new(crate::cli::medpick())
            .arg("select")
            .arg(&path)
            .args(["--budget", "5", "--strategy", "coreset", "--out"])
            .arg(dir.join(format!("{name}.csv")))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(&path.display().to_string()) && err.contains(want), "{name}: {err}");
        assert!(!dir.join(format!("{name}.csv")).exists(), "{name}: picks written");
    }
    let path = dir.join("good.safetensors");
    good.write(&path, true).unwrap();
    assert_eq!(medpick_core::features::Features::read(&path).unwrap(), good);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Selection never sees the held-out splits: `--subset test` (or `val`) is refused before any work.
#[test]
fn select_refuses_the_held_out_splits_as_a_pool() {
    let images = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018/images");
    for subset in ["test", "val"] {
        let out = std::env::temp_dir().join(format!("medpick-heldout-{subset}-{}.csv", std::process::id()));
        let o = std::process::Command::new(crate::cli::medpick())
            .arg("select")
            .arg(&images)
            .args(["--model", "pixels", "--budget", "2", "--subset", subset, "--cache", "none", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{subset}: {err}");
        assert!(err.contains(&format!("--subset {subset}")) && err.contains("held out from selection"), "{err}");
        assert!(!out.exists());
    }
}

/// A run in which every input fails is an error (exit 2, the bad file named), not an empty feature file. (A file
/// failing later, in the encoder, is covered by `device::a_nan_in_the_forward_pass_…`.)
#[test]
fn embed_with_every_input_failing_is_an_error() {
    let dir = std::env::temp_dir().join(format!("medpick-allbad-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A real image cut in half: its header reads (so the folder scan lists it), its pixels do not.
    let sample = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018/images");
    let first = std::fs::read_dir(&sample).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    let bytes = std::fs::read(&first).unwrap();
    std::fs::write(data.join("broken.png"), &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.join("f.safetensors");
    let o = std::process::Command::new(crate::cli::medpick())
        .arg("embed")
        .arg(&data)
        .args(["--model", "pixels", "--cache", "none", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("broken.png") && err.contains("truncated") && err.contains("no samples to embed"), "{err}");
    assert!(!out.exists(), "an empty feature file was written");
    let _ = std::fs::remove_dir_all(&dir);
}
