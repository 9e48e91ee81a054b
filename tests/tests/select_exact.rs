//! Exact accelerated selection (`select::exact`): the pruned k-center greedy gives the plain scan's picks and
//! scores bit for bit, and the accelerated k-means (pruned k-means++, Hamerly's Lloyd with the GEMM filter) the
//! plain k-means' labels, centres and inertia bit for bit, on real features (LiteMedSAM features of Kvasir-SEG,
//! the raw pixels of 10,000 AdrenalMNIST3D slices, many of them identical) and synthetic blobs.

use medpick_core::exec::Backend;
use medpick_core::select::{exact, kmeans, strategies, Matrix, Selection};

use crate::common::{load_safetensors, shared};

/// (name, rows, n, d) of every pool the tests run on that is present.
fn pools() -> Vec<(&'static str, Vec<f32>, usize, usize)> {
    let mut v = Vec::new();
    if let Some(sh) = shared() {
        let f = sh.join("fixtures/selection/features.safetensors");
        if f.exists() {
            v.push(("Kvasir-SEG LiteMedSAM 1000×256", load_safetensors(&f)["features"].1.clone(), 1000, 256));
        }
        let npz = sh.join("data/medmnist/adrenalmnist3d.npz");
        if npz.exists() {
            // Axial slices of the training volumes, pixels scaled to [0, 1]: 10,000 rows of 784, with many
            // repeated (empty) rows, so ties are everywhere.
            let a = medpick_core::io::npz::read_u8(&npz, "train_images", 1 << 30).unwrap();
            let vals: Vec<f32> = a.iter().map(|&p| p as f32 / 255.0).collect();
            let (vols, dd, h, w) = (a.shape()[0], a.shape()[1], a.shape()[2], a.shape()[3]);
            let mut x = Vec::with_capacity(10_000 * h * w);
            'outer: for vol in 0..vols {
                for z in 0..dd {
                    let o = (vol * dd + z) * h * w;
                    x.extend_from_slice(&vals[o..o + h * w]);
                    if x.len() == 10_000 * h * w {
                        break 'outer;
                    }
                }
            }
            v.push(("AdrenalMNIST3D slices 10000×784", x, 10_000, h * w));
        }
    }
    v.push(("synthetic blobs 10000×48", medpick_core::bench::synthetic_features(10_000, 48, 3), 10_000, 48));
    v
}

fn empty() -> Selection {
    Selection { strategy: String::new(), seed: 0, picks: vec![], scores: vec![], notes: vec![] }
}

#[test]
fn pruned_kcenter_gives_the_plain_scans_picks_and_scores() {
    for (name, x, n, d) in pools() {
        let m = Matrix::new(&x, n, d).unwrap();
        for seeds in [vec![7usize], vec![3, 500, 999, 42]] {
            let budget = 300;
            let mut plain = empty();
            pollster::block_on(strategies::coreset_scan(Backend::Cpu, m, &seeds, budget, &mut plain)).unwrap();
            let (picks, scores, evals) = exact::kcenter(m, &seeds, budget);
            assert_eq!(picks, plain.picks, "{name}, seeds {seeds:?}: picks differ");
            assert_eq!(scores, plain.scores, "{name}, seeds {seeds:?}: scores differ");
            let all = ((seeds.len() + budget) * n) as u64;
            eprintln!("{name}: {evals} of {all} distances evaluated");
            assert!(evals < all, "{name}: no pruning");
        }
    }
    // Fewer distinct rows than picks: once every row is at distance 0 the farthest is row 0, as in the scan.
    let x: Vec<f32> = (0..40 * 3).map(|i| ((i / 3) % 5) as f32).collect();
    let m = Matrix::new(&x, 40, 3).unwrap();
    let mut plain = empty();
    pollster::block_on(strategies::coreset_scan(Backend::Cpu, m, &[2], 12, &mut plain)).unwrap();
    assert_eq!(exact::kcenter(m, &[2], 12).0, plain.picks);
}

/// The f16 feature store (`coreset-f16`): on the CPU backend its picks and scores are coreset's on the
/// f16-rounded features bit for bit (the pruned k-center on packed rows, and the plain scan through
/// `min_dist_update_f16`); on a GPU the same up to float ties. Prints how far the f16 picks are from the f32 ones:
/// shared picks and the coverage radius (the largest distance from a row to its nearest pick, in the f32
/// features), the objective k-center greedy approximates.
#[test]
fn coreset_f16_is_coreset_on_f16_rounded_features() {
    use medpick_core::select::{select_on, SelectInput};
    for (name, x, n, d) in pools() {
        use medpick_core::cpu::min_dist_update_f16::{pack_f16_rows, unpack_f16_row};
        let packed = pack_f16_rows(&x, n, d);
        let mut rounded = vec![0f32; n * d];
        for (i, row) in rounded.chunks_exact_mut(d).enumerate() {
            unpack_f16_row(&packed[i * d.div_ceil(2)..(i + 1) * d.div_ceil(2)], row);
        }
        // AdrenalMNIST3D's pixels are 0 or 1: f16 holds them exactly, and there the two stores must agree outright.
        let exact_in_f16 = rounded == x;
        let (m, mr) = (Matrix::new(&x, n, d).unwrap(), Matrix::new(&rounded, n, d).unwrap());
        let budget = 200;
        let run = |name: &str, m: Matrix, be: Option<Backend>| {
            let input = SelectInput { x: m, budget, seed: 5, labeled: &[], scans: be, weights: None };
            pollster::block_on(select_on(name, &input)).unwrap()
        };
        let f16 = run("coreset-f16", m, Some(Backend::Cpu));
        let on_rounded = run("coreset", mr, Some(Backend::Cpu));
        assert_eq!(f16.picks, on_rounded.picks, "{name}: picks differ from coreset on the rounded features");
        assert_eq!(f16.scores, on_rounded.scores, "{name}: scores differ");
        assert!(f16.notes.iter().any(|s| s.starts_with("f16 feature store:")), "{:?}", f16.notes);
        // The plain scan on the packed rows (min_dist_update_f16, no pruning) and the pruned k-center agree.
        let mut plain = empty();
        pollster::block_on(strategies::coreset_scan(Backend::Cpu, mr, &[f16.picks[0]], budget, &mut plain)).unwrap();
        let (picks, scores, _) = exact::kcenter_f16(&packed, n, d, &[f16.picks[0]], budget);
        assert_eq!(picks, plain.picks, "{name}: pruned f16 k-center differs from the plain scan");
        assert_eq!(scores, plain.scores, "{name}: pruned f16 k-center's scores differ from the plain scan's");
        if let Some(ctx) = crate::common::gpu() {
            let g = run("coreset-f16", m, Some(Backend::Gpu(ctx)));
            let same = g.picks.iter().zip(&f16.picks).take_while(|(a, b)| a == b).count();
            if same < budget {
                let (a, b) = (f16.scores[same], g.scores[same]);
                assert!((a - b).abs() <= 1e-4 * a.max(1e-6), "{name}: GPU parts at pick {same}: {a} vs {b}");
            }
            eprintln!("{name}: GPU coreset-f16 agrees on the first {same} of {budget} picks");
        }
        // How far the f16 store moves the picks from the f32 ones.
        let f32 = run("coreset", m, Some(Backend::Cpu));
        let shared = f16.picks.iter().filter(|p| f32.picks.contains(p)).count();
        let radius = |picks: &[usize]| {
            let mut mind = vec![0f32; n];
            for (k, &c) in picks.iter().enumerate() {
                medpick_core::cpu::min_dist_update(&x, &mut mind, n, d, c, k == 0);
            }
            (mind.iter().fold(0f32, |a, &b| a.max(b)) as f64).sqrt()
        };
        let (r16, r32) = (radius(&f16.picks), radius(&f32.picks));
        eprintln!("{name}: f16 store shares {shared} of {budget} picks with f32; coverage radius {r16:.6} vs {r32:.6} ({:+.3} %)", 100.0 * (r16 / r32 - 1.0));
        assert!(r16 <= 1.05 * r32, "{name}: the f16 store's cover is {r16} against {r32}");
        if exact_in_f16 {
            assert_eq!(f16.picks, f32.picks, "{name}: f16 holds these features exactly");
        }
    }
    // Values past f16's range are refused, naming the row, never stored as ±Inf.
    let mut x = medpick_core::bench::synthetic_features(3000, 8, 1);
    x[1234 * 8 + 5] = 7.0e4;
    let input = SelectInput {
        x: Matrix::new(&x, 3000, 8).unwrap(),
        budget: 5,
        seed: 0,
        labeled: &[],
        scans: None,
        weights: None,
    };
    let e = pollster::block_on(select_on("coreset-f16", &input)).unwrap_err().to_string();
    assert!(e.contains("row 1234") && e.contains("beyond f16's range"), "{e}");
}

/// The pruned k-center scan (`kcenter_update`, the GPU's coreset) gives the plain scan's (`min_dist_update`)
/// picks and scores bit for bit on each backend, reading fewer rows.
#[test]
fn pruned_kcenter_scan_gives_the_plain_scans_picks_and_scores() {
    let mut backends = vec![("cpu backend", Backend::Cpu)];
    if let Some(ctx) = crate::common::gpu() {
        backends.push(("gpu", Backend::Gpu(ctx)));
    }
    for (name, x, n, d) in pools() {
        let m = Matrix::new(&x, n, d).unwrap();
        for (bname, be) in &backends {
            for seeds in [vec![7usize], vec![3, 500, 999, 42]] {
                let budget = 150;
                let (mut plain, mut pruned) = (empty(), empty());
                pollster::block_on(strategies::coreset_scan(*be, m, &seeds, budget, &mut plain)).unwrap();
                let (reads, all) =
                    pollster::block_on(strategies::coreset_scan_pruned(*be, m, &seeds, budget, &mut pruned)).unwrap();
                assert_eq!(pruned.picks, plain.picks, "{name} on the {bname}, seeds {seeds:?}: picks differ");
                assert_eq!(pruned.scores, plain.scores, "{name} on the {bname}, seeds {seeds:?}: scores differ");
                eprintln!("{name} on the {bname}: {reads} of {all} rows read");
                assert!(reads < all, "{name}: no pruning");
            }
            // The f16 store: the pruned step on packed rows against the plain f16 scan.
            let packed = medpick_core::cpu::min_dist_update_f16::pack_f16_rows(&x, n, d);
            let pool = medpick_core::select::scan::Pool::upload_f16(*be, &packed, n, d).unwrap();
            let (mut plain, mut pruned) = (empty(), empty());
            pollster::block_on(strategies::kcenter_scan(&pool, &[7], 150, &mut plain)).unwrap();
            let (reads, all) =
                pollster::block_on(strategies::kcenter_scan_pruned(&pool, &[7], 150, &mut pruned)).unwrap();
            assert_eq!(pruned.picks, plain.picks, "{name} on the {bname}, f16 store: picks differ");
            assert_eq!(pruned.scores, plain.scores, "{name} on the {bname}, f16 store: scores differ");
            eprintln!("{name} on the {bname}, f16 store: {reads} of {all} rows read");
            assert!(reads < all, "{name}: no pruning on the f16 store");
        }
    }
}

#[test]
fn accelerated_kmeans_equals_plain_kmeans_bit_for_bit() {
    for (name, x, n, d) in pools() {
        let m = Matrix::new(&x, n, d).unwrap();
        for (k, seed) in [(10, 1u64), (120, 2)] {
            let want = kmeans::kmeans(m, k, seed, 300, 1e-4);
            let (got, st) = exact::kmeans(m, k, seed, 300, 1e-4);
            assert_eq!(got.labels, want.labels, "{name} k={k}: labels differ");
            assert_eq!(got.centers, want.centers, "{name} k={k}: centres differ");
            assert_eq!(got.inertia, want.inertia, "{name} k={k}: inertia differs");
            eprintln!(
                "{name} k={k}: {} iterations, {} exact distances + {} GEMM products (plain: {} distances)",
                st.iterations, st.exact, st.filtered, st.plain
            );
            assert!(st.exact < st.plain, "{name} k={k}: nothing saved");
        }
    }
}

/// Weighted k-means (a union of local coresets, each row standing for w pool rows): the accelerated run gives
/// the plain weighted algorithm's labels, centres and inertia bit for bit, and weights of 1 give the unweighted
/// clustering bit for bit.
#[test]
fn weighted_kmeans_accelerated_equals_plain_and_weights_of_one_are_unweighted() {
    for (name, x, n, d) in pools() {
        let n = n.min(4000);
        let m = Matrix::new(&x[..n * d], n, d).unwrap();
        // Integer weights 1..=40, as local coresets give.
        let mut rng = medpick_core::rng::Rng::new(17);
        let w: Vec<f64> = (0..n).map(|_| 1.0 + rng.below(40) as f64).collect();
        for (k, seed) in [(8, 3u64), (60, 4)] {
            let want = kmeans::kmeans_weighted(m, Some(&w), k, seed, 300, 1e-4);
            let (got, st) = exact::kmeans_weighted(m, Some(&w), k, seed, 300, 1e-4);
            assert_eq!(got.labels, want.labels, "{name} k={k}: weighted labels differ");
            assert_eq!(got.centers, want.centers, "{name} k={k}: weighted centres differ");
            assert_eq!(got.inertia, want.inertia, "{name} k={k}: weighted inertia differs");
            assert!(st.exact < st.plain, "{name} k={k}: nothing saved");
            let ones = vec![1.0; n];
            let (a, _) = exact::kmeans_weighted(m, Some(&ones), k, seed, 300, 1e-4);
            let (b, _) = exact::kmeans(m, k, seed, 300, 1e-4);
            assert_eq!((&a.labels, &a.centers, a.inertia), (&b.labels, &b.centers, b.inertia), "{name} k={k}: ones");
            // The weights matter: the weighted centres are not the unweighted ones.
            assert_ne!(got.centers, b.centers, "{name} k={k}: weights changed nothing");
        }
    }
}

#[test]
fn filtered_probcover_scans_give_the_plain_delta_and_graph() {
    use medpick_core::select::{probcover, scan};
    for (name, x, n, d) in pools() {
        // The plain reference measures every pair in sequential f64 sums: 3000 rows keep it to seconds.
        let n = n.min(3000);
        let m = Matrix::new(&x[..n * d], n, d).unwrap();
        let clusters = kmeans::kmeans(m, 60, 5, 300, 1e-4);
        let coarse = kmeans::kmeans(m, 7, 6, 300, 1e-4);
        let labels = clusters.labels.clone();
        let want = probcover::probcover_delta(m, &labels);
        let (delta, evals) = exact::probcover_delta(m, &labels);
        assert_eq!(delta, want, "{name}: δ differs");
        eprintln!("{name}: δ = {delta}, {evals} exact pairs of {}", 2 * n * n);
        // The graph at MedCAL's δ and at a wider one, where many more pairs sit near the radius.
        for r in [delta, 3.0 * delta.max(1e-3)] {
            let (po, pe) = probcover::delta_graph_plain(m, r);
            let (go, ge, _) = exact::delta_graph(m, r);
            assert_eq!((go, ge), (po.clone(), pe.clone()), "{name}: δ-graph at {r} differs");
            // Pruned by the k-means clusters (those of the labels, and a coarser clustering).
            for c in [&clusters, &coarse] {
                let (co, ce, _, covered) = exact::delta_graph_clustered(m, r, c);
                assert_eq!((co, ce), (po.clone(), pe.clone()), "{name}: clustered δ-graph at {r}, k = {} differs", c.k);
                eprintln!("{name}: δ-graph at {r}, k = {}: {covered} of {} pairs in the GEMMs", c.k, n * n);
            }
            let plain = probcover::probcover_from(m, r, 50, &[]);
            assert_eq!(scan::max_cover(&po, &pe, 50, &[], r).picks, plain.picks);
            eprintln!("{name}: δ-graph at {r}: {} edges", pe.len());
        }
    }
}

#[test]
fn lazy_filtered_repdiv_gives_the_plain_picks_and_scores() {
    use medpick_core::select::repdiv;
    for (name, x, n, d) in pools() {
        // The plain reference evaluates every gain over every row: 1500 rows keep it to seconds.
        let n = n.min(1500);
        let raw = Matrix::new(&x[..n * d], n, d).unwrap();
        let xn: Vec<f32> = (0..n)
            .flat_map(|i| {
                let r = raw.row(i);
                let norm = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() + 1e-10;
                r.iter().map(move |&v| (v as f64 / norm) as f32)
            })
            .collect();
        let m = Matrix::new(&xn, n, d).unwrap();
        for (maxmin, labeled) in [(false, vec![]), (true, vec![4usize, 77])] {
            let want = repdiv::repdiv_plain(m, &labeled, 40, maxmin);
            let got = repdiv::repdiv_fast(m, &labeled, 40, maxmin);
            assert_eq!(got.picks, want.picks, "{name} maxmin={maxmin}: picks differ");
            assert_eq!(got.scores, want.scores, "{name} maxmin={maxmin}: scores differ");
            eprintln!("{name} maxmin={maxmin}: {}", got.notes.join("; "));
        }
    }
}

/// The library refuses non-finite rows itself (the feature-file reader does too), naming the row: an Inf row
/// would otherwise be the farthest point of every k-center pass and a NaN row poison every k-means centre.
#[test]
fn select_refuses_non_finite_rows_in_the_library() {
    let (n, d) = (3000, 8);
    let mut x = medpick_core::bench::synthetic_features(n, d, 1);
    for (bad, v) in [(2500, f32::INFINITY), (17, f32::NAN)] {
        x[bad * d + 3] = v;
        let m = Matrix::new(&x, n, d).unwrap();
        for strategy in ["coreset", "typiclust-knn", "probcover", "repdiv"] {
            let input = medpick_core::select::SelectInput {
                x: m,
                budget: 10,
                seed: 0,
                labeled: &[],
                scans: Some(Backend::Cpu),
                weights: None,
            };
            let err = pollster::block_on(medpick_core::select::select(strategy, &input)).unwrap_err().to_string();
            assert!(err.contains(&format!("feature row {bad} holds a non-finite value")), "{strategy}: {err}");
        }
        x[bad * d + 3] = 0.0;
    }
}

/// The plain typicality of `strategies::typiclust_knn` without scans: every other member measured, sorted, the
/// k smallest averaged.
fn plain_typicality(m: Matrix, idx: &[usize]) -> Vec<f64> {
    let kk = (idx.len() / 2).clamp(1, 20);
    idx.iter()
        .map(|&i| {
            let mut ds: Vec<f64> = idx
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| medpick_core::cpu::min_dist_update::sqdist_f64(m.row(i), m.row(j)))
                .collect();
            ds.sort_by(|a, b| a.total_cmp(b));
            let mean = if ds.is_empty() { 0.0 } else { ds.iter().take(kk).sum::<f64>() / ds.len().min(kk) as f64 };
            1.0 / (mean + 1e-5)
        })
        .collect()
}

#[test]
fn cached_typicality_equals_the_plain_one_through_many_removals() {
    use medpick_core::select::typicality::Typicality;
    for (name, x, n, d) in pools() {
        let m = Matrix::new(&x, n, d).unwrap();
        let mut tc = Typicality::new(m);
        // Three "clusters": 400 rows (the GEMM filter, dot products of the members held as one mirrored matrix),
        // 45 rows (full lists), 3 rows; each visited until empty or 60 picks, removing the most typical row each time as TypiClust does (so the kept lists run short).
        let mut clusters = vec![(0usize, 400usize, 60usize), (n / 2, 45, 60), (n - 3, 3, 60)];
        if n >= 4200 && d <= 64 {
            // Past the 4096 members held as one matrix: blocks of 256 against all members (three rounds).
            clusters.push((n - 4200, 4200, 3));
        }
        for (c, (start, len, rounds)) in clusters.into_iter().enumerate() {
            let mut idx: Vec<usize> = (start..start + len).collect();
            for round in 0..rounds {
                if idx.is_empty() {
                    break;
                }
                let got = tc.of(c, &idx);
                let want = plain_typicality(m, &idx);
                assert_eq!(got, want, "{name}: cluster {c}, round {round}");
                let best = want.iter().enumerate().fold(0, |b, (j, &v)| if v > want[b] { j } else { b });
                idx.remove(best);
            }
        }
        assert!(tc.exact < tc.plain, "{name}: nothing saved ({} of {})", tc.exact, tc.plain);
        eprintln!("{name}: {} exact pair distances of {}", tc.exact, tc.plain);
    }
}

#[test]
fn typiclust_knn_on_the_cpu_backend_picks_as_the_plain_reference() {
    use medpick_core::select::SelectInput;
    for (name, x, n, d) in pools() {
        let n = n.min(3000);
        let m = Matrix::new(&x[..n * d], n, d).unwrap();
        for (budget, labeled) in [(60, vec![]), (25, vec![3usize, 400, 401, n - 1])] {
            let run = |scans| {
                let input = SelectInput { x: m, budget, seed: 11, labeled: &labeled, scans, weights: None };
                pollster::block_on(medpick_core::select::select("typiclust-knn", &input)).unwrap()
            };
            let (want, got) = (run(None), run(Some(Backend::Cpu)));
            assert_eq!(got.picks, want.picks, "{name} budget {budget}: picks differ");
            assert_eq!(got.scores, want.scores, "{name} budget {budget}: scores differ");
        }
    }
}

/// The scans' k-means (`scan::kmeans`: k-means++ pruned by each row's centre in `kmeanspp_gain` and
/// `kcenter_update`, Lloyd's iterations by distance bounds with the open rows packed by `gather_rows`) gives the
/// plain scans' labels, centres and inertia exactly, on the CPU backend and the GPU,
/// with the pool in one buffer and in blocks, while measuring fewer rows against the centres.
#[test]
fn pruned_scanned_kmeans_gives_the_plain_scans_result() {
    use medpick_core::select::scan;
    let mut backends = vec![("CPU backend", Backend::Cpu)];
    if let Some(ctx) = crate::common::gpu() {
        backends.push(("GPU", Backend::Gpu(ctx)));
    }
    for (name, x, n, d) in pools() {
        for &(bname, be) in &backends {
            // lavapipe runs the WGSL scans on the CPU, about a minute per 10,000-row pool here: the GPU gets each
            // pool's first 2,500 rows (AdrenalMNIST's ties included), the CPU backend the whole pool.
            let n = if matches!(be, Backend::Gpu(_)) { n.min(2_500) } else { n };
            let m = Matrix::new(&x[..n * d], n, d).unwrap();
            // The pool in one buffer, then in three blocks (the gather reads each block's run of open rows, the
            // seeding's partial sums follow block after block); k = 50 also stops pruning the seeding part way.
            for blocked in [false, true] {
                for (k, iters) in [(1, 5), (7, 40), (50, 40)] {
                    let old = blocked.then(|| scan::set_binding_limit(Some((n / 3 + 2) * d)));
                    let pool = scan::Pool::upload(be, m).unwrap();
                    assert_eq!(pool.is_blocked(), blocked);
                    let plain = pollster::block_on(scan::kmeans_plain(&pool, k, 11, iters, 1e-4)).unwrap();
                    let cap = (k == 50).then(|| scan::set_seed_host_work(Some(7 * 25 * d)));
                    let (got, st) = pollster::block_on(scan::kmeans_counted(&pool, k, 11, iters, 1e-4)).unwrap();
                    if let Some(cap) = cap {
                        scan::set_seed_host_work(cap);
                    }
                    drop(pool);
                    if let Some(old) = old {
                        scan::set_binding_limit(old);
                    }
                    let what = format!(
                        "{name}, {bname} ({n} rows), {}, k = {k}",
                        if blocked { "3 blocks" } else { "one buffer" }
                    );
                    eprintln!(
                        "{what}: seeding read {} of {} pairs; {} iterations, {} of {} rows measured",
                        st.seed_pairs, st.seed_pairs_plain, st.iterations, st.rows_measured, st.rows_plain
                    );
                    assert_eq!(got.labels, plain.labels, "{what}: labels differ");
                    assert_eq!(got.centers, plain.centers, "{what}: centres differ");
                    assert_eq!(got.inertia.to_bits(), plain.inertia.to_bits(), "{what}: inertia differs");
                    if k > 1 && st.iterations > 2 {
                        assert!(st.rows_measured < st.rows_plain, "{what}: no row was skipped");
                    }
                    if k > 1 {
                        assert!(st.seed_pairs < st.seed_pairs_plain, "{what}: the seeding skipped no row");
                    }
                }
            }
        }
    }
}

/// Degenerate pools through the scans, on the CPU backend and the GPU: every row identical, five distinct rows
/// each repeated, one feature, and a budget of the whole pool. Every k-means and distance strategy returns the
/// budget's distinct rows with finite scores, never a panic or a hang; a budget of 0 is refused.
#[test]
fn degenerate_pools_through_the_scans_give_distinct_picks_and_finite_scores() {
    use medpick_core::select::{select_on, SelectInput};
    let mut backends = vec![("CPU backend", Backend::Cpu)];
    if let Some(ctx) = crate::common::gpu() {
        backends.push(("GPU", Backend::Gpu(ctx)));
    }
    let n = 400;
    let pools: Vec<(&str, Vec<f32>, usize)> = vec![
        ("every row identical", vec![0.25; n * 16], 16),
        (
            "five distinct rows repeated",
            (0..n * 16).map(|t| ((t / 16) % 5) as f32 + (t % 16) as f32 * 0.01).collect(),
            16,
        ),
        ("one feature", (0..n).map(|i| (i % 37) as f32 * 0.5).collect(), 1),
    ];
    for (pname, x, d) in &pools {
        let m = Matrix::new(x, n, *d).unwrap();
        for &(bname, be) in &backends {
            for strategy in ["typiclust-knn", "kmeans-centroid", "coreset", "probcover"] {
                for budget in [1, 30, n] {
                    let input = SelectInput { x: m, budget, seed: 5, labeled: &[], scans: Some(be), weights: None };
                    let what = format!("{strategy} on {pname} ({bname}), budget {budget}");
                    let sel = pollster::block_on(select_on(strategy, &input)).unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(sel.picks.len(), budget, "{what}");
                    let distinct: std::collections::HashSet<_> = sel.picks.iter().collect();
                    assert_eq!(distinct.len(), budget, "{what}: a row picked twice");
                    assert!(sel.picks.iter().all(|&p| p < n), "{what}");
                    assert!(
                        sel.scores.iter().all(|s| s.is_finite()),
                        "{what}: scores {:?}",
                        &sel.scores[..5.min(budget)]
                    );
                }
            }
            let input = SelectInput { x: m, budget: 0, seed: 5, labeled: &[], scans: Some(be), weights: None };
            assert!(pollster::block_on(select_on("typiclust-knn", &input)).is_err());
        }
    }
}
