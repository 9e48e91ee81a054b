//! Self-test cases of the selection scans: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    MinDist {
        n: usize,
        d: usize,
        steps: usize,
        /// The f16 store (`min_dist_update_f16`).
        f16: bool,
    },
    /// `kcenter_update`: `steps` centres on rows in `blobs` clusters (so rows are skipped), the pool in two blocks.
    Kcenter {
        n: usize,
        d: usize,
        steps: usize,
        blobs: usize,
        /// The f16 store (`kcenter_update_f16`).
        f16: bool,
    },
    /// `kmeanspp_gain`: `trials` candidate rows against rows in `blobs` clusters whose `centres` were placed by
    /// k-center steps, the pool in two blocks.
    KmeansppGain {
        n: usize,
        d: usize,
        centres: usize,
        trials: usize,
        blobs: usize,
    },
    Argmax {
        rows: usize,
        cols: usize,
        ties: bool,
    },
    Topk {
        rows: usize,
        cols: usize,
        k: usize,
        tiles: usize,
        ties: bool,
    },
    SegmentMean {
        n: usize,
        k: usize,
        d: usize,
    },
    /// `gather_rows`: `rows` row numbers (some outside the source, whose rows must stay as they were) from a
    /// source block of `n` rows starting at row `row0`.
    Gather {
        n: usize,
        d: usize,
        rows: usize,
        row0: usize,
    },
    FacilityGain {
        rows: usize,
        cols: usize,
        potential: bool,
    },
    /// An n×n distance matrix visited in `tiles`×`tiles` blocks, `classes` labels.
    OtherLabelMin {
        n: usize,
        classes: usize,
        tiles: usize,
    },
    RadiusEdges {
        n: usize,
        tiles: usize,
    },
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
            Spec::Kcenter { n, d, steps, blobs, .. } => format!("n{n} d{d} {steps} steps {blobs} blobs"),
            Spec::MinDist { n, d, steps, .. } => format!("n{n} d{d} {steps} steps"),
            Spec::KmeansppGain { n, d, centres, trials, blobs } => {
                format!("n{n} d{d} {centres} centres {trials} trials {blobs} blobs")
            }
            Spec::Argmax { rows, cols, ties } => {
                format!("{rows}x{cols}{}", if *ties { " ties" } else { "" })
            }
            Spec::Topk { rows, cols, k, tiles, ties } => {
                format!("{rows}x{cols} k{k} {tiles} tile(s){}", if *ties { " ties" } else { "" })
            }
            Spec::SegmentMean { n, k, d } => format!("n{n} k{k} d{d}"),
            Spec::Gather { n, d, rows, row0 } => format!("{rows} of n{n} (from row {row0}) d{d}"),
            Spec::FacilityGain { rows, cols, potential } => {
                format!("{rows}x{cols}{}", if *potential { " potential" } else { "" })
            }
            Spec::OtherLabelMin { n, classes, tiles } => format!("n{n} {classes} labels {tiles}x{tiles} tiles"),
            Spec::RadiusEdges { n, tiles } => format!("n{n} {tiles}x{tiles} tiles"),
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Select(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
    let mut v = Vec::new();
    for (n, d) in [(1, 1), (7, 7), (63, 64), (64, 65), (65, 256), (1000, 3)] {
        v.push(case("min_dist_update", Small, MinDist { n, d, steps: 3, f16: false }));
        v.push(case("min_dist_update_f16", Small, MinDist { n, d, steps: 3, f16: true }));
    }
    v.push(case("min_dist_update", Model, MinDist { n: 10_007, d: 384, steps: 4, f16: false }));
    v.push(case("min_dist_update_f16", Model, MinDist { n: 10_007, d: 384, steps: 4, f16: true }));
    for (n, d, steps, blobs) in [(1, 1, 1, 1), (7, 7, 3, 2), (63, 64, 5, 4), (65, 256, 9, 3), (1000, 3, 20, 10)] {
        v.push(case("kcenter_update", Small, Kcenter { n, d, steps, blobs, f16: false }));
        v.push(case("kcenter_update_f16", Small, Kcenter { n, d, steps, blobs, f16: true }));
    }
    for f16 in [false, true] {
        let kernel = if f16 { "kcenter_update_f16" } else { "kcenter_update" };
        v.push(case(kernel, Model, Kcenter { n: 10_007, d: 384, steps: 24, blobs: 16, f16 }));
    }
    for (n, d, centres, trials, blobs) in [(1, 1, 1, 1, 1), (7, 7, 3, 2, 2), (63, 64, 5, 7, 4), (65, 256, 9, 3, 3)] {
        v.push(case("kmeanspp_gain", Small, KmeansppGain { n, d, centres, trials, blobs }));
    }
    // More trials than one pass holds (k-means++ with k ≥ e¹⁵).
    v.push(case("kmeanspp_gain", Small, KmeansppGain { n: 1000, d: 3, centres: 20, trials: 19, blobs: 10 }));
    // typiclust-knn's seeding: 10k LiteMedSAM-sized rows, 2 + ⌊ln 500⌋ trials against 200 centres.
    v.push(case("kmeanspp_gain", Model, KmeansppGain { n: 10_007, d: 384, centres: 200, trials: 8, blobs: 16 }));
    for (rows, cols, ties) in
        [(1, 1, false), (7, 7, true), (63, 64, false), (64, 65, true), (65, 1000, true), (1000, 63, false)]
    {
        v.push(case("argmax_rows", Small, Argmax { rows, cols, ties }));
    }
    v.push(case("argmax_rows", Model, Argmax { rows: 1, cols: 100_003, ties: true }));
    for (rows, cols, k, tiles, ties) in [
        (1, 1, 1, 1, false),
        (7, 7, 7, 1, true),
        (63, 64, 5, 2, false),
        (64, 65, 20, 3, true),
        (65, 1000, 64, 4, false),
        (1000, 63, 20, 1, true),
    ] {
        v.push(case("topk_rows", Small, Topk { rows, cols, k, tiles, ties }));
    }
    v.push(case("topk_rows", Model, Topk { rows: 1000, cols: 1000, k: 20, tiles: 3, ties: false }));
    for (n, k, d) in [(1, 1, 1), (7, 3, 7), (63, 7, 64), (65, 64, 3), (1000, 65, 256)] {
        v.push(case("segment_mean", Small, SegmentMean { n, k, d }));
    }
    // k-means over 20k LiteMedSAM-sized features into 500 clusters (typiclust-knn's cap).
    v.push(case("segment_mean", Model, SegmentMean { n: 20_000, k: 500, d: 256 }));
    for (n, d, rows, row0) in [(1, 1, 1, 0), (7, 7, 3, 5), (63, 64, 100, 0), (65, 3, 64, 1000), (1000, 257, 333, 7)] {
        v.push(case("gather_rows", Small, Gather { n, d, rows, row0 }));
    }
    // A pruned k-means pass over 100k LiteMedSAM-sized rows: the tenth of them still open.
    v.push(case("gather_rows", Model, Gather { n: 100_000, d: 256, rows: 10_000, row0: 0 }));
    for (rows, cols, potential) in
        [(1, 1, false), (7, 7, true), (63, 64, false), (64, 65, true), (65, 1000, false), (1000, 63, true)]
    {
        v.push(case("facility_gain", Small, FacilityGain { rows, cols, potential }));
    }
    v.push(case("facility_gain", Model, FacilityGain { rows: 128, cols: 100_003, potential: false }));
    v.push(case("facility_gain", Model, FacilityGain { rows: 8, cols: 100_003, potential: true }));
    for (n, classes, tiles) in [(1, 1, 1), (7, 2, 1), (63, 5, 2), (64, 1, 3), (65, 7, 2), (1000, 90, 3)] {
        v.push(case("other_label_min", Small, OtherLabelMin { n, classes, tiles }));
        v.push(case("radius_edges", Small, RadiusEdges { n, tiles }));
    }
    v.push(case("other_label_min", Model, OtherLabelMin { n: 2048, classes: 1000, tiles: 4 }));
    v.push(case("radius_edges", Model, RadiusEdges { n: 2048, tiles: 4 }));
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, _c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    match spec.clone() {
        Spec::MinDist { n, d, steps, f16 } => {
            let x = rng.uniform_vec(n * d, -1.0, 1.0);
            let packed = if f16 { cpu::min_dist_update_f16::pack_f16_rows(&x, n, d) } else { Vec::new() };
            let centers: Vec<usize> = (0..steps).map(|_| rng.below(n as u32) as usize).collect();
            let (want, cpu_ms) = timed!({
                let mut mind = vec![0f32; n];
                for (s, &ci) in centers.iter().enumerate() {
                    if f16 {
                        cpu::min_dist_update_f16(&packed, &mut mind, n, d, ci, s == 0);
                    } else {
                        cpu::min_dist_update(&x, &mut mind, n, d, ci, s == 0);
                    }
                }
                mind
            });
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let bx = if f16 { ctx.upload("selftest", &packed)? } else { ctx.upload("selftest", &x)? };
                let mind = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                for (s, &ci) in centers.iter().enumerate() {
                    if f16 {
                        ops::min_dist_update_f16(ctx, &mut enc, &bx, &mind, n, d, ci, s == 0).await?;
                    } else {
                        ops::min_dist_update(ctx, &mut enc, &bx, &mind, n, d, ci, s == 0).await?;
                    }
                }
                ctx.submit(enc);
                read_f32(ctx, &mind, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::BALANCED)), elements: n, gpu_ms, cpu_ms })
        }
        Spec::Kcenter { n, d, steps, blobs, f16 } => {
            use cpu::kcenter_update::{margin_for, KcenterStep};
            use cpu::min_dist_update_f16::{pack_f16_rows, unpack_f16_row};
            // Rows around `blobs` random points; the centres are rows of different blobs first.
            let pts = rng.uniform_vec(blobs * d, -4.0, 4.0);
            let noise = rng.uniform_vec(n * d, -0.5, 0.5);
            let mut x: Vec<f32> = (0..n * d).map(|t| pts[(t / d % blobs) * d + t % d] + noise[t]).collect();
            if f16 {
                // The values the f16 store holds, so the host's ‖c − cⱼ‖² are those of the rows measured.
                let packed = pack_f16_rows(&x, n, d);
                for (i, row) in x.chunks_exact_mut(d).enumerate() {
                    unpack_f16_row(&packed[i * d.div_ceil(2)..(i + 1) * d.div_ceil(2)], row);
                }
            }
            let centers: Vec<usize> = (0..steps).map(|s| (s * 7919 + 3) % n).collect();
            let dc2s: Vec<Vec<f32>> = (0..steps)
                .map(|s| {
                    let c = &x[centers[s] * d..(centers[s] + 1) * d];
                    let mut v: Vec<f32> = (0..s)
                        .map(|j| cpu::min_dist_update::sqdist_f64(c, &x[centers[j] * d..(centers[j] + 1) * d]) as f32)
                        .collect();
                    v.push(0.0);
                    v
                })
                .collect();
            // Two blocks: rows [0, h) and [h, n), each dispatch given its block's rows and the centre copied after
            // them (the pool's spare row), as a blocked pool runs it.
            let h = n.div_ceil(2);
            let blocks: Vec<(usize, usize)> = [(0, h), (h, n - h)].into_iter().filter(|b| b.1 > 0).collect();
            let block_rows = |b: (usize, usize), c: usize| {
                let mut v = x[b.0 * d..(b.0 + b.1) * d].to_vec();
                v.extend_from_slice(&x[c * d..(c + 1) * d]);
                v
            };
            let margin = margin_for(d);
            let step = |s: usize, b: (usize, usize)| KcenterStep {
                n: b.1,
                d,
                center: b.1,
                init: s == 0,
                row0: b.0,
                k: s as u32,
                margin,
            };
            let (want, cpu_ms) = timed!({
                let (mut owner, mut mind, mut count) = (vec![0u32; n], vec![0f32; n], [0u32]);
                for s in 0..steps {
                    for &b in &blocks {
                        let rows = block_rows(b, centers[s]);
                        if f16 {
                            let p = pack_f16_rows(&rows, b.1 + 1, d);
                            cpu::kcenter_update_f16(&p, &dc2s[s], &mut owner, &mut mind, &mut count, step(s, b));
                        } else {
                            cpu::kcenter_update(&rows, &dc2s[s], &mut owner, &mut mind, &mut count, step(s, b));
                        }
                    }
                }
                mind
            });
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let (owner, mind) =
                    (ctx.storage("selftest", (n * 4) as u64)?, ctx.storage("selftest", (n * 4) as u64)?);
                let count = ctx.storage("selftest", 4)?;
                for s in 0..steps {
                    let dc2 = ctx.upload("selftest", &dc2s[s])?;
                    let mut enc = ctx.encoder();
                    for &b in &blocks {
                        let rows = block_rows(b, centers[s]);
                        if f16 {
                            let bx = ctx.upload("selftest", &pack_f16_rows(&rows, b.1 + 1, d))?;
                            ops::kcenter_update_f16(ctx, &mut enc, &bx, &dc2, &owner, &mind, &count, step(s, b))
                                .await?;
                        } else {
                            let bx = ctx.upload("selftest", &rows)?;
                            ops::kcenter_update(ctx, &mut enc, &bx, &dc2, &owner, &mind, &count, step(s, b)).await?;
                        }
                    }
                    ctx.submit(enc);
                }
                read_f32(ctx, &mind, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::BALANCED)), elements: n, gpu_ms, cpu_ms })
        }
        Spec::KmeansppGain { n, d, centres, trials, blobs } => {
            use cpu::kcenter_update::{margin_for, KcenterStep};
            use cpu::kmeanspp_gain::{KmeansppGain, KMEANSPP_GAIN_ROWS};
            let pts = rng.uniform_vec(blobs * d, -4.0, 4.0);
            let noise = rng.uniform_vec(n * d, -0.5, 0.5);
            let x: Vec<f32> = (0..n * d).map(|t| pts[(t / d % blobs) * d + t % d] + noise[t]).collect();
            let row = |i: usize| &x[i * d..(i + 1) * d];
            let sq = |a: &[f32], b: &[f32]| cpu::min_dist_update::sqdist_f64(a, b) as f32;
            // The centres' owners and minima (the CPU twin of the k-center steps), then the trials' distances to
            // every centre.
            let centre: Vec<usize> = (0..centres).map(|s| (s * 7919 + 3) % n).collect();
            let margin = margin_for(d);
            let (mut owner, mut mind, mut count) = (vec![0u32; n], vec![0f32; n], [0u32]);
            for (s, &c) in centre.iter().enumerate() {
                let dc2: Vec<f32> = (0..s.max(1)).map(|j| sq(row(c), row(centre[j]))).collect();
                let step = KcenterStep { n, d, center: c, init: s == 0, row0: 0, k: s as u32, margin };
                cpu::kcenter_update(&x, &dc2, &mut owner, &mut mind, &mut count, step);
            }
            let cand: Vec<f32> = (0..trials).flat_map(|t| row((t * 104_729 + 11) % n).to_vec()).collect();
            let dcand: Vec<f32> = (0..trials)
                .flat_map(|t| centre.iter().map(|&c| sq(&cand[t * d..(t + 1) * d], row(c))).collect::<Vec<_>>())
                .collect();
            // Two blocks, as a blocked pool runs it: each its own rows, owners and minima offset by row0, its
            // partial sums after the first block's.
            let h = n.div_ceil(2);
            let blocks: Vec<(usize, usize)> = [(0, h), (h, n - h)].into_iter().filter(|b| b.1 > 0).collect();
            let groups = |r: usize| r.div_ceil(KMEANSPP_GAIN_ROWS);
            let total = blocks.iter().map(|b| groups(b.1)).sum::<usize>() * trials;
            // Trials in passes of at most 16 (the kernel's limit), as the pool runs them.
            let passes = |b: (usize, usize), wg0| {
                (0..trials).step_by(16).map(move |t0| KmeansppGain {
                    n: b.1,
                    d,
                    trials: (trials - t0).min(16),
                    t0,
                    total: trials,
                    row0: b.0,
                    stride: centres,
                    wg0,
                    margin,
                })
            };
            let ((want, wcount), cpu_ms) = timed!({
                let (mut partial, mut count, mut wg0) = (vec![0f32; total], [0u32], 0);
                for &b in &blocks {
                    let xb = &x[b.0 * d..(b.0 + b.1) * d];
                    for p in passes(b, wg0) {
                        cpu::kmeanspp_gain(xb, &cand, &dcand, &owner, &mind, &mut partial, &mut count, p);
                    }
                    wg0 += groups(b.1);
                }
                (partial, count[0])
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: total, gpu_ms: 0.0, cpu_ms }) };
            let ((got, gcount), gpu_ms) = timed!({
                let (bc, bdc) = (ctx.upload("selftest", &cand)?, ctx.upload("selftest", &dcand)?);
                let (bo, bm) = (ctx.upload("selftest", &owner)?, ctx.upload("selftest", &mind)?);
                let (bp, bn) = (ctx.storage("selftest", (total * 4) as u64)?, ctx.storage("selftest", 4)?);
                let mut keep = Vec::new();
                let mut enc = ctx.encoder();
                let mut wg0 = 0;
                for &b in &blocks {
                    let bx = ctx.upload("selftest", &x[b.0 * d..(b.0 + b.1) * d])?;
                    for p in passes(b, wg0) {
                        ops::kmeanspp_gain(ctx, &mut enc, &bx, &bc, &bdc, &bo, &bm, &bp, &bn, p).await?;
                    }
                    wg0 += groups(b.1);
                    keep.push(bx);
                }
                ctx.submit(enc);
                (read_f32(ctx, &bp, total).await?, read_u32(ctx, &bn, 1).await?[0])
            });
            // The same (row, trial) pairs read; sums of 32 terms max(0, m − d²) within f32 rounding of m.
            let cmp = merge(compare(&got, &want, Tolerance::new(1e-4, 1e-4)), compare_exact_u32(&[gcount], &[wcount]));
            Ok(Outcome { cmp: Some(cmp), elements: total, gpu_ms, cpu_ms })
        }
        Spec::Argmax { rows, cols, ties } => {
            let x = if ties { ties_vec(rng, rows * cols) } else { rng.uniform_vec(rows * cols, -1.0, 1.0) };
            let ((wv, wi), cpu_ms) = timed!(cpu::argmax_rows(&x, rows, cols));
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: rows, gpu_ms: 0.0, cpu_ms });
            };
            let ((gv, gi), gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let (ov, oi) =
                    (ctx.storage("selftest", (rows * 4) as u64)?, ctx.storage("selftest", (rows * 4) as u64)?);
                let mut enc = ctx.encoder();
                ops::argmax_rows(ctx, &mut enc, &bx, &ov, &oi, rows, cols).await?;
                ctx.submit(enc);
                (read_f32(ctx, &ov, rows).await?, read_u32(ctx, &oi, rows).await?)
            });
            let cmp = merge(compare(&gv, &wv, Tolerance::new(0.0, 0.0)), compare_exact_u32(&gi, &wi));
            Ok(Outcome { cmp: Some(cmp), elements: rows, gpu_ms, cpu_ms })
        }
        Spec::Topk { rows, cols, k, tiles, ties } => {
            let x = if ties { ties_vec(rng, rows * cols) } else { rng.uniform_vec(rows * cols, 0.0, 10.0) };
            let tile = cols.div_ceil(tiles);
            let bounds: Vec<(usize, usize)> =
                (0..tiles).map(|t| (t * tile, ((t + 1) * tile).min(cols))).filter(|(a, b)| a < b).collect();
            let slice_tile = |a: usize, b: usize| -> Vec<f32> {
                (0..rows).flat_map(|r| x[r * cols + a..r * cols + b].iter().copied()).collect()
            };
            let ((wv, wi), cpu_ms) = timed!({
                let mut acc: Option<(Vec<f32>, Vec<u32>)> = None;
                for &(a, b) in &bounds {
                    let t = slice_tile(a, b);
                    let prev = acc.as_ref().map(|(v, i)| (&v[..], &i[..]));
                    acc = Some(cpu::topk_rows(&t, rows, b - a, k, a, prev));
                }
                acc.unwrap_or_default()
            });
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: rows * k, gpu_ms: 0.0, cpu_ms });
            };
            let ((gv, gi), gpu_ms) = timed!({
                let ov = ctx.storage("selftest", (rows * k * 4) as u64)?;
                let oi = ctx.storage("selftest", (rows * k * 4) as u64)?;
                let mut enc = ctx.encoder();
                let mut keep = Vec::new();
                for (t, &(a, b)) in bounds.iter().enumerate() {
                    let bx = ctx.upload("selftest", &slice_tile(a, b))?;
                    ops::topk_rows(ctx, &mut enc, &bx, &ov, &oi, rows, b - a, k, a, t > 0).await?;
                    keep.push(bx);
                }
                ctx.submit(enc);
                (read_f32(ctx, &ov, rows * k).await?, read_u32(ctx, &oi, rows * k).await?)
            });
            let cmp = merge(compare(&gv, &wv, Tolerance::new(0.0, 0.0)), compare_exact_u32(&gi, &wi));
            Ok(Outcome { cmp: Some(cmp), elements: rows * k, gpu_ms, cpu_ms })
        }
        Spec::SegmentMean { n, k, d } => {
            let x = rng.uniform_vec(n * d, -1.0, 1.0);
            // Every cluster but the last gets members, so one segment is empty and must keep its centre.
            let labels: Vec<u32> = (0..n).map(|_| rng.below(k.saturating_sub(1).max(1) as u32)).collect();
            let init = rng.uniform_vec(k * d, -1.0, 1.0);
            let (order, offsets) = cpu::segments(&labels, k);
            let (want, cpu_ms) = timed!({
                let mut c = init.clone();
                cpu::segment_mean(&x, &order, &offsets, &mut c, k, d);
                c
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: k * d, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bx, bo, boff) =
                    (ctx.upload("selftest", &x)?, ctx.upload("selftest", &order)?, ctx.upload("selftest", &offsets)?);
                let bc = ctx.upload("selftest", &init)?;
                let mut enc = ctx.encoder();
                ops::segment_mean(ctx, &mut enc, &bx, &bo, &boff, &bc, n, k, d).await?;
                ctx.submit(enc);
                read_f32(ctx, &bc, k * d).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::BALANCED)), elements: k * d, gpu_ms, cpu_ms })
        }
        Spec::Gather { n, d, rows, row0 } => {
            let src = rng.uniform_vec(n * d, -1.0, 1.0);
            // Every fifth index falls outside the block (below or past it); the rest are rows of the block.
            let idx: Vec<u32> = (0..rows + 2)
                .map(|r| match r % 5 {
                    4 if row0 > 0 => rng.below(row0 as u32),
                    4 => (row0 + n + r) as u32,
                    _ => (row0 + rng.below(n as u32) as usize) as u32,
                })
                .collect();
            let g = cpu::GatherRows { rows, d, idx_offset: 2, src_row0: row0, src_rows: n, dst_row0: 1 };
            let init = rng.uniform_vec((rows + 1) * d, -1.0, 1.0);
            let (want, cpu_ms) = timed!({
                let mut dst = init.clone();
                cpu::gather_rows(&src, &idx, &mut dst, g);
                dst
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: rows * d, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bs, bi, bd) =
                    (ctx.upload("selftest", &src)?, ctx.upload("selftest", &idx)?, ctx.upload("selftest", &init)?);
                let mut enc = ctx.encoder();
                ops::gather_rows(ctx, &mut enc, &bs, &bi, &bd, g).await?;
                ctx.submit(enc);
                read_f32(ctx, &bd, (rows + 1) * d).await?
            });
            let cmp = compare(&got, &want, Tolerance::new(0.0, 0.0));
            Ok(Outcome { cmp: Some(cmp), elements: rows * d, gpu_ms, cpu_ms })
        }
        Spec::FacilityGain { rows, cols, potential } => {
            // Squared distances between unit vectors lie in [0, 4]; some columns are already covered.
            let dist = rng.uniform_vec(rows * cols, 0.0, 4.0);
            let mind: Vec<f32> = (0..cols)
                .map(|j| if j % 3 == 0 && !potential { f32::MAX } else { rng.uniform_vec(1, 0.0, 4.0)[0] })
                .collect();
            // Accumulating cases add to a non-zero start.
            let mode = cpu::GainMode { potential, accumulate: rows % 2 == 1 };
            let start = rng.uniform_vec(rows, 0.0, 10.0);
            let (want, cpu_ms) = timed!({
                let mut g = start.clone();
                cpu::facility_gain(&dist, &mind, &mut g, rows, cols, mode);
                g
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: rows, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bd, bm) = (ctx.upload("selftest", &dist)?, ctx.upload("selftest", &mind)?);
                let g = ctx.upload("selftest", &start)?;
                let mut enc = ctx.encoder();
                ops::facility_gain(ctx, &mut enc, &bd, &bm, &g, rows, cols, mode).await?;
                ctx.submit(enc);
                read_f32(ctx, &g, rows).await?
            });
            // A sum of up to 1e5 positive terms in f32 (tree order) against f64.
            let tol = Tolerance::new(1e-4, 1e-4);
            Ok(Outcome { cmp: Some(compare(&got, &want, tol)), elements: rows, gpu_ms, cpu_ms })
        }
        Spec::OtherLabelMin { n, classes, tiles } => {
            let dist = ties_vec(rng, n * n);
            let labels: Vec<u32> = (0..n).map(|_| rng.below(classes as u32)).collect();
            let blocks = tile_blocks(n, tiles);
            let ((wm, wx), cpu_ms) = timed!({
                let (mut mn, mut mx) = (vec![0f32; n], vec![0f32; n]);
                for &(r0, r1) in &blocks {
                    for (ci, &(c0, c1)) in blocks.iter().enumerate() {
                        let t = sub_tile(&dist, n, r0, r1, c0, c1);
                        cpu::other_label_min(&t, r1 - r0, c1 - c0, r0, c0, &labels, &mut mn, &mut mx, ci > 0);
                    }
                }
                (mn, mx)
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let ((gm, gx), gpu_ms) = timed!({
                let bl = ctx.upload("selftest", &labels)?;
                let (mn, mx) = (ctx.storage("selftest", (n * 4) as u64)?, ctx.storage("selftest", (n * 4) as u64)?);
                let mut enc = ctx.encoder();
                let mut keep = Vec::new();
                for &(r0, r1) in &blocks {
                    for (ci, &(c0, c1)) in blocks.iter().enumerate() {
                        let bt = ctx.upload("selftest", &sub_tile(&dist, n, r0, r1, c0, c1))?;
                        let t = ops::Tile { rows: r1 - r0, cols: c1 - c0, row_offset: r0, col_offset: c0 };
                        ops::other_label_min(ctx, &mut enc, &bt, &bl, &mn, &mx, n, t, ci > 0).await?;
                        keep.push(bt);
                    }
                }
                ctx.submit(enc);
                (read_f32(ctx, &mn, n).await?, read_f32(ctx, &mx, n).await?)
            });
            let exact = Tolerance::new(0.0, 0.0);
            let cmp = merge(compare(&gm, &wm, exact), compare(&gx, &wx, exact));
            Ok(Outcome { cmp: Some(cmp), elements: n, gpu_ms, cpu_ms })
        }
        Spec::RadiusEdges { n, tiles } => {
            let dist = ties_vec(rng, n * n);
            let radius2 = 1.0;
            let blocks = tile_blocks(n, tiles);
            // Pass 1 counts, the host takes prefix sums, pass 2 writes; the same on both sides.
            let run_cpu = || {
                let mut cursor = vec![0u32; n];
                for &(r0, r1) in &blocks {
                    for &(c0, c1) in &blocks {
                        let t = sub_tile(&dist, n, r0, r1, c0, c1);
                        cpu::radius_edges(&t, r1 - r0, c1 - c0, r0, c0, false, radius2, &mut cursor, &mut [], 0);
                    }
                }
                let (starts, total) = cpu::exclusive_prefix(&cursor);
                // The write pass in two chunks of the edge list (as a graph larger than one buffer is written).
                let (mut all, mut cursor) = (Vec::with_capacity(total), starts.clone());
                for (base, end) in [(0, total / 2), (total / 2, total)] {
                    let mut edges = vec![0u32; end - base];
                    cursor.clone_from(&starts);
                    for &(r0, r1) in &blocks {
                        for &(c0, c1) in &blocks {
                            let t = sub_tile(&dist, n, r0, r1, c0, c1);
                            let (rows, cols) = (r1 - r0, c1 - c0);
                            cpu::radius_edges(&t, rows, cols, r0, c0, true, radius2, &mut cursor, &mut edges, base);
                        }
                    }
                    all.extend(edges);
                }
                (cursor, all)
            };
            let ((wc, we), cpu_ms) = timed!(run_cpu());
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: we.len(), gpu_ms: 0.0, cpu_ms }) };
            let ((gc, ge), gpu_ms) = timed!({
                let cursor = ctx.storage("selftest", (n * 4) as u64)?;
                let tiles_up: Vec<_> = blocks
                    .iter()
                    .flat_map(|&(r0, r1)| blocks.iter().map(move |&(c0, c1)| (r0, r1, c0, c1)))
                    .map(|(r0, r1, c0, c1)| {
                        let t = ops::Tile { rows: r1 - r0, cols: c1 - c0, row_offset: r0, col_offset: c0 };
                        ctx.upload("selftest", &sub_tile(&dist, n, r0, r1, c0, c1)).map(|b| (t, b))
                    })
                    .collect::<Result<_>>()?;
                let dummy = ctx.storage("selftest", 4)?;
                let mut enc = ctx.encoder();
                for (t, bt) in &tiles_up {
                    ops::radius_edges(ctx, &mut enc, bt, &cursor, &dummy, n, *t, false, radius2, 1, 0).await?;
                }
                ctx.submit(enc);
                let counts = read_u32(ctx, &cursor, n).await?;
                let (starts, total) = cpu::exclusive_prefix(&counts);
                let mut all = Vec::with_capacity(total);
                let mut cursor = None;
                for (base, end) in [(0, total / 2), (total / 2, total)] {
                    let cur = ctx.upload("selftest", &starts)?;
                    let cap = (end - base).max(1);
                    let edges = ctx.storage("selftest", (cap * 4) as u64)?;
                    let mut enc = ctx.encoder();
                    for (t, bt) in &tiles_up {
                        ops::radius_edges(ctx, &mut enc, bt, &cur, &edges, n, *t, true, radius2, cap, base).await?;
                    }
                    ctx.submit(enc);
                    all.extend(read_u32(ctx, &edges, end - base).await?);
                    cursor = Some(cur);
                }
                let cursor = cursor.ok_or_else(|| crate::Error::Invalid("no chunk".into()))?;
                (read_u32(ctx, &cursor, n).await?, all)
            });
            let cmp = merge(compare_exact_u32(&gc, &wc), compare_exact_u32(&ge, &we));
            Ok(Outcome { cmp: Some(cmp), elements: we.len(), gpu_ms, cpu_ms })
        }
    }
}
