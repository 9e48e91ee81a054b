//! The segmentation head: gradients, training on real masks, validation, mean teacher, pseudo-labels, the warm
//! loop and volumes.

use crate::common::{gpu, shared};
use medpick_core::cpu;
use medpick_core::cpu::DiceMode;
use medpick_core::protocol;
use medpick_core::rng::Rng;
use medpick_core::train::seg::{self, GridShape, SegConfig, SegHead};

/// Finite differences of the whole head (3×3 conv, LayerNorm, GELU, 1×1 conv, pixel shuffle, 0.5·CE + 0.5·Dice)
/// against the backward kernels, on a batch of two small grids with random masks.
fn seg_gradient_check(on_gpu: bool, dice: DiceMode) {
    let ctx = if on_gpu {
        match gpu() {
            Some(c) => Some(c),
            None => return,
        }
    } else {
        None
    };
    let grid = GridShape { c: 3, h: 4, w: 5 };
    let mut rng = Rng::new(5);
    let head = SegHead::init(grid, 6, 2, &mut rng).unwrap();
    let (oh, ow) = head.out_hw();
    let grids: Vec<Vec<f32>> = (0..2).map(|_| rng.uniform_vec(grid.len(), -1.0, 1.0)).collect();
    let masks: Vec<Vec<u8>> = (0..2).map(|_| (0..oh * ow).map(|_| rng.below(2) as u8).collect()).collect();
    let (loss, grads) = pollster::block_on(seg::head_loss_and_grads(ctx, &head, &grids, &masks, dice)).unwrap();
    // Reference loss on the CPU twins, as a function of one parameter tensor.
    let loss_at = |h: &SegHead| pollster::block_on(seg::head_loss_and_grads(None, h, &grids, &masks, dice)).unwrap().0;
    let l0 = loss_at(&head);
    assert!((loss - l0).abs() < 1e-4, "loss {loss} vs CPU {l0}");
    let eps = 1e-2f32;
    let mut checked = 0;
    for (k, g) in grads.iter().enumerate() {
        for i in 0..g.len() {
            let mut hp = head.clone();
            let mut hm = head.clone();
            let (p, m) = match k {
                0 => (&mut hp.w1[i], &mut hm.w1[i]),
                1 => (&mut hp.b1[i], &mut hm.b1[i]),
                2 => (&mut hp.w2[i], &mut hm.w2[i]),
                _ => (&mut hp.b2[i], &mut hm.b2[i]),
            };
            *p += eps;
            *m -= eps;
            let numeric = (loss_at(&hp) as f64 - loss_at(&hm) as f64) / (2.0 * eps as f64);
            let got = g[i] as f64;
            assert!(
                (got - numeric).abs() < 3e-4 + 3e-2 * numeric.abs(),
                "tensor {k} [{i}]: analytic {got} vs numeric {numeric} ({dice:?})"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6 * 27 + 6 + 8 * 6 + 8);
    // The gradient is not trivially zero.
    assert!(grads.iter().all(|g| g.iter().any(|v| v.abs() > 1e-4)));
}

#[test]
fn seg_head_gradients_match_finite_differences_on_the_cpu() {
    seg_gradient_check(false, DiceMode::Soft);
    seg_gradient_check(false, DiceMode::NoiseRobust { gamma: 1.5 });
}

#[test]
fn seg_head_gradients_match_finite_differences_on_the_gpu() {
    seg_gradient_check(true, DiceMode::Soft);
    seg_gradient_check(true, DiceMode::NoiseRobust { gamma: 1.5 });
}

#[test]
fn dihedral_transforms_and_the_pixel_shuffle_order_are_consistent() {
    // A grid cell and its r×r block of the mask stay together under every flip/rotation.
    let (h, w, r) = (3, 4, 2);
    let grid: Vec<u32> = (0..h * w).map(|i| i as u32).collect();
    let mask: Vec<u32> = (0..h * r * w * r).map(|p| (((p / (w * r)) / r) * w + (p % (w * r)) / r) as u32).collect();
    for t in 0..8 {
        let (g, gh, gw) = seg::dihedral(&grid, h, w, 1, t);
        let (m, mh, mw) = seg::dihedral(&mask, h * r, w * r, 1, t);
        assert_eq!((mh, mw), (gh * r, gw * r));
        for y in 0..mh {
            for x in 0..mw {
                assert_eq!(m[y * mw + x], g[(y / r) * gw + x / r], "transform {t} at ({y}, {x})");
            }
        }
    }
    // targets_from_mask and image_from_rows are inverse reorderings.
    let img: Vec<u8> = (0..h * r * w * r).map(|i| (i % 3 == 0) as u8).collect();
    let rows: Vec<f32> = seg::targets_from_mask(&img, h, w, r).into_iter().map(|v| v as f32).collect();
    let back = seg::image_from_rows(&rows, h, w, r);
    assert_eq!(back, img.iter().map(|&v| v as f32).collect::<Vec<_>>());
}

/// The bundled DSB2018 sample's folder and its samples, by id.
fn dsb2018_samples() -> (std::path::PathBuf, Vec<medpick_core::manifest::Sample>) {
    use medpick_core::manifest::{self, IngestOptions};
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/dsb2018");
    let mut samples = Vec::new();
    let mut keep = |s: &medpick_core::manifest::Sample| {
        samples.push(s.clone());
        Ok(())
    };
    manifest::ingest(&root, &IngestOptions::default(), &mut keep, &mut |_, _, _| {}).unwrap();
    samples.sort_by(|a, b| a.id.cmp(&b.id));
    (root, samples)
}

/// The bundled DSB2018 sample (CC0): nuclei masks from the instance labels, `pixels:64` grids.
fn dsb2018_grids() -> (GridShape, Vec<Vec<f32>>, Vec<Vec<u8>>, Vec<(usize, usize, Vec<u8>)>) {
    use medpick_core::features::{embed_samples, Encoder, Pool};
    use medpick_core::manifest;
    let (root, samples) = dsb2018_samples();
    assert!(samples.len() >= 20 && samples.iter().all(|s| !s.masks.is_empty()), "{} samples", samples.len());
    let enc = Encoder::load(None, "pixels:64", None).unwrap();
    let (shape, _) = enc.grid_shape();
    let (f, _) = pollster::block_on(embed_samples(
        None,
        &enc,
        &root,
        &samples,
        Pool::Grid,
        medpick_core::io::Window::File,
        None,
        None,
        &mut |_, _, _| {},
    ))
    .unwrap();
    let r = shape.default_scale();
    let mut masks = Vec::new();
    let mut full = Vec::new();
    for s in &samples {
        let (w, h, m) = manifest::load_mask(&root, s, 0, u64::MAX).unwrap();
        masks.push(seg::resize_nearest_u8(&m, h as usize, w as usize, shape.h * r, shape.w * r));
        full.push((h as usize, w as usize, m));
    }
    let grids = (0..f.ids.len()).map(|i| f.row(i).to_vec()).collect();
    (shape, grids, masks, full)
}

fn mean_dice(
    head: &SegHead,
    ctx: Option<&medpick_core::gpu::GpuContext>,
    grids: &[Vec<f32>],
    full: &[(usize, usize, Vec<u8>)],
) -> f64 {
    let (oh, ow) = head.out_hw();
    let mut sum = 0.0;
    for (g, (h, w, m)) in grids.iter().zip(full) {
        let p = pollster::block_on(head.predict(ctx, g)).unwrap();
        let pred: Vec<u8> = p.iter().map(|&v| (v > 0.5) as u8).collect();
        let pred = seg::resize_nearest_u8(&pred, oh, ow, *h, *w);
        sum += medpick_core::metrics::dice_iou(&pred, m).0;
    }
    sum / grids.len() as f64
}

#[test]
fn seg_head_trained_on_dsb2018_beats_an_untrained_one_and_is_reproducible() {
    let Some(ctx) = gpu() else { return };
    let (shape, grids, masks, full) = dsb2018_grids();
    let (tr, te) = (16, grids.len());
    let gr: Vec<&[f32]> = grids[..tr].iter().map(|g| g.as_slice()).collect();
    let mr: Vec<&[u8]> = masks[..tr].iter().map(|m| m.as_slice()).collect();
    let ep = 60;
    let cfg = SegConfig { hidden: 8, epochs: ep, batch: 8, lr: 1e-2, augment: true, ..Default::default() };
    let (head, log) =
        pollster::block_on(seg::train(Some(ctx), shape, &gr, &mr, &[], None, &cfg, &mut |_, _| {})).unwrap();
    assert_eq!(log.steps, ep * 2);
    assert!(log.epoch_loss.last().unwrap() < &(0.8 * log.epoch_loss[0]), "loss {:?}", log.epoch_loss);
    let untrained = SegHead::init(shape, 8, head.r, &mut Rng::new(0)).unwrap();
    let d_trained = mean_dice(&head, Some(ctx), &grids[tr..te], &full[tr..te]);
    let d_untrained = mean_dice(&untrained, Some(ctx), &grids[tr..te], &full[tr..te]);
    eprintln!("DSB2018 held-out Dice: trained {d_trained:.3}, untrained {d_untrained:.3}; losses {:?}", log.epoch_loss);
    assert!(d_trained > d_untrained + 0.2 && d_trained > 0.5, "trained {d_trained} vs untrained {d_untrained}");
    // Same seed, same head (the kernels reduce in a fixed order); the CPU twins train the same head up to rounding.
    let cfg1 = SegConfig { epochs: 2, ..cfg.clone() };
    let (g1, _) = pollster::block_on(seg::train(Some(ctx), shape, &gr, &mr, &[], None, &cfg1, &mut |_, _| {})).unwrap();
    let (again, _) =
        pollster::block_on(seg::train(Some(ctx), shape, &gr, &mr, &[], None, &cfg1, &mut |_, _| {})).unwrap();
    assert_eq!((&again.w1, &again.b1, &again.w2, &again.b2), (&g1.w1, &g1.b1, &g1.w2, &g1.b2));
    let (c1, _) = pollster::block_on(seg::train(None, shape, &gr, &mr, &[], None, &cfg1, &mut |_, _| {})).unwrap();
    let maxdiff = g1.w1.iter().zip(&c1.w1).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(maxdiff < 1e-4, "GPU vs CPU weights after two epochs differ by {maxdiff}");
}

#[test]
fn softmax_mse_gradient_matches_finite_differences() {
    let (rows, classes) = (5, 3);
    let mut rng = Rng::new(3);
    let z = rng.uniform_vec(rows * classes, -3.0, 3.0);
    let zt = rng.uniform_vec(rows * classes, -3.0, 3.0);
    let (_, dz) = cpu::softmax_mse(&z, &zt, rows, classes, 1.0);
    let total = |z: &[f32]| cpu::softmax_mse(z, &zt, rows, classes, 1.0).0.iter().map(|&v| v as f64).sum::<f64>();
    let h = 1e-3f32;
    for i in 0..z.len() {
        let (mut zp, mut zm) = (z.clone(), z.clone());
        zp[i] += h;
        zm[i] -= h;
        let numeric = (total(&zp) - total(&zm)) / (2.0 * h as f64);
        assert!((dz[i] as f64 - numeric).abs() < 1e-4 + 1e-3 * numeric.abs(), "dz[{i}] {} vs {numeric}", dz[i]);
    }
}

/// Model selection on a validation split: the head returned is the checkpoint of best validation Dice, i.e.
/// exactly the head a run stopped at that epoch gives (validation consumes no randomness), its Dice is the one
/// reported, and a malformed split is refused.
#[test]
fn seg_head_keeps_the_checkpoint_of_best_validation_dice() {
    let Some(ctx) = gpu() else { return };
    let (shape, grids, masks, _) = dsb2018_grids();
    let gr: Vec<&[f32]> = grids[..8].iter().map(|g| g.as_slice()).collect();
    let mr: Vec<&[u8]> = masks[..8].iter().map(|m| m.as_slice()).collect();
    let (vg, vm) = (grids[8..12].to_vec(), masks[8..12].to_vec());
    let val = seg::SegValidation { grids: &vg, masks: &vm, every: 2, keep_last: false };
    let cfg = SegConfig { hidden: 8, epochs: 7, batch: 8, lr: 3e-2, ..Default::default() };
    let train = |cfg: &SegConfig, val: Option<seg::SegValidation>| {
        pollster::block_on(seg::train_with_val(
            Some(ctx),
            shape,
            &gr,
            &[],
            &mr,
            &[],
            None,
            cfg,
            val,
            None,
            &mut |_, _| {},
        ))
    };
    let (head, log) = train(&cfg, Some(val)).unwrap();
    let (best, dice) = (log.best_epoch.unwrap(), log.val_dice.unwrap());
    assert!([2, 4, 6, 7].contains(&best), "validated at 2, 4, 6 and the last epoch, kept {best}");
    assert_eq!(log.epoch_loss.len(), 7, "training ran all epochs");
    let (same, _) = train(&SegConfig { epochs: best, ..cfg.clone() }, None).unwrap();
    assert_eq!((&head.w1, &head.b1, &head.w2, &head.b2), (&same.w1, &same.b1, &same.w2, &same.b2));
    // The reported Dice is the kept head's on the validation masks, at the head's output.
    let mut sum = 0.0;
    for (g, m) in vg.iter().zip(&vm) {
        let p = pollster::block_on(head.predict(Some(ctx), g)).unwrap();
        let pred: Vec<u8> = p.iter().map(|&v| (v > 0.5) as u8).collect();
        sum += medpick_core::metrics::dice_iou(&pred, m).0;
    }
    assert!((sum / vg.len() as f64 - dice).abs() < 1e-12, "{dice} vs {}", sum / vg.len() as f64);
    // No other validated epoch did better.
    for e in [2, 4, 6, 7].into_iter().filter(|&e| e != best) {
        // Validating only at epoch e gives that epoch's Dice.
        let (_, l) =
            train(&SegConfig { epochs: e, ..cfg.clone() }, Some(seg::SegValidation { every: e, ..val })).unwrap();
        let d = l.val_dice.unwrap();
        assert!(d < dice || (d == dice && e > best), "epoch {e}: Dice {d} vs kept epoch {best}: {dice}");
    }
    eprintln!("kept epoch {best} of 7, validation Dice {dice:.3}");
    // Measuring only (the browser's held-out curve): the last epoch's head, as without validation, and the Dice
    // of every epoch measured, the same values model selection saw.
    let (last, l) = train(&cfg, Some(seg::SegValidation { keep_last: true, ..val })).unwrap();
    let (plain, _) = train(&cfg, None).unwrap();
    assert_eq!((&last.w1, &last.b1, &last.w2, &last.b2), (&plain.w1, &plain.b1, &plain.w2, &plain.b2));
    assert_eq!(l.val_curve.iter().map(|c| c.0).collect::<Vec<_>>(), vec![2, 4, 6, 7]);
    assert_eq!(l.val_curve.iter().find(|c| c.0 == best).map(|c| c.1), Some(dice));
    assert_eq!(l.val_dice, l.val_curve.last().map(|c| c.1));
    assert_eq!(l.best_epoch, None);
    let bad = seg::SegValidation { masks: &vm[..2], ..val };
    let err = train(&cfg, Some(bad)).unwrap_err().to_string();
    assert!(err.contains("validation"), "{err}");
}

/// The mean teacher trains on the unpicked images too: it runs on the GPU, is reproducible, changes the head,
/// and the head still beats an untrained one.
#[test]
fn seg_mean_teacher_on_dsb2018_is_reproducible_and_learns() {
    let Some(ctx) = gpu() else { return };
    let (shape, grids, masks, full) = dsb2018_grids();
    let (tr, te) = (16, 20);
    let gr: Vec<&[f32]> = grids[..tr].iter().map(|g| g.as_slice()).collect();
    let mr: Vec<&[u8]> = masks[..tr].iter().map(|m| m.as_slice()).collect();
    // Unlabelled: the held-out images themselves (transductive, as a semi-supervised run on a pool would be).
    let un: Vec<&[f32]> = grids[tr..].iter().map(|g| g.as_slice()).collect();
    let base = SegConfig { hidden: 8, epochs: 30, batch: 8, lr: 1e-2, augment: true, ..Default::default() };
    let mt = SegConfig { mean_teacher: Some(seg::MeanTeacher::default()), ..base.clone() };
    let run = |cfg: &SegConfig, u: &[&[f32]]| {
        pollster::block_on(seg::train(Some(ctx), shape, &gr, &mr, u, None, cfg, &mut |_, _| {})).unwrap().0
    };
    let (a, plain) = (run(&mt, &un), run(&base, &[]));
    assert_ne!(a.w1, plain.w1, "the consistency term changed nothing");
    let short = SegConfig { epochs: 2, ..mt.clone() };
    let (b1, b2) = (run(&short, &un), run(&short, &un));
    assert_eq!((&b1.w1, &b1.w2), (&b2.w1, &b2.w2), "not reproducible");
    let untrained = SegHead::init(shape, 8, a.r, &mut Rng::new(0)).unwrap();
    let (d_mt, d_plain, d_0) = (
        mean_dice(&a, Some(ctx), &grids[te..], &full[te..]),
        mean_dice(&plain, Some(ctx), &grids[te..], &full[te..]),
        mean_dice(&untrained, Some(ctx), &grids[te..], &full[te..]),
    );
    eprintln!("DSB2018 held-out Dice: mean teacher {d_mt:.3}, supervised only {d_plain:.3}, untrained {d_0:.3}");
    assert!(d_mt > d_0 + 0.1, "mean teacher {d_mt} vs untrained {d_0}");
    // Without unlabelled grids the mean teacher is refused, not silently skipped.
    let err = pollster::block_on(seg::train(Some(ctx), shape, &gr, &mr, &[], None, &mt, &mut |_, _| {})).unwrap_err();
    assert!(err.to_string().contains("unlabelled"), "{err}");
}

/// The three Kvasir-SEG fixtures: LiteMedSAM embeddings from PyTorch ([256, 64, 64]), their grids (channels-last)
/// and the ground-truth masks at 256×256 (nearest) and at their own size.
#[allow(clippy::type_complexity)]
fn kvasir_fixture_grids() -> Option<(Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Vec<u8>>, Vec<(usize, usize, Vec<u8>)>)> {
    let sh = shared()?;
    let ids = ["cju2zdvjn9h7r08553cp4eed5", "cju5hi52odyf90817prvcwg45", "cju76l27oyrw907551ri2a7fl"];
    let (mut emb, mut grids, mut masks, mut full) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, id) in ids.iter().enumerate() {
        let t = crate::common::load_safetensors(&sh.join(format!("fixtures/litemedsam/kvasir_{}.safetensors", k + 1)));
        let e = t["embedding"].1.clone();
        grids.push(seg::chw_to_hwc(&e, 256, 64, 64));
        emb.push(e);
        let img =
            medpick_core::io::decode_image_file(&sh.join(format!("data/kvasir-seg/masks/{id}.jpg")), 1 << 24).unwrap();
        let (w, h) = (img.width as usize, img.height as usize);
        let m: Vec<u8> = img.first_channel_u32().iter().map(|&v| (v > 127) as u8).collect();
        masks.push(seg::resize_nearest_u8(&m, h, w, 256, 256));
        full.push((h, w, m));
    }
    Some((emb, grids, masks, full))
}

/// Generalist pseudo-labels: boxes from a head's prediction prompt LiteMedSAM's decoder, whose masks must match
/// the ground truth; the ASSFT-like filter keeps exactly the images its rule says; and training with them runs
/// the refreshes at 20/40/60 % of the run and changes the head.
#[test]
fn pseudo_labels_from_litemedsam_boxes_match_kvasir_masks() {
    use medpick_core::io::weights;
    use medpick_core::model::sam_decoder::SamDecoder;
    use medpick_core::train::pseudo::{self, PseudoLabels, SamPseudo};
    let Some(ctx) = gpu() else { return };
    let Some((emb, grids, masks, full)) = kvasir_fixture_grids() else { return };
    let Some(path) = crate::common::litemedsam_path() else { return };
    let dec = SamDecoder::load(&weights::read_weights(&path).unwrap()).unwrap().to_gpu(ctx).unwrap();
    let shape = GridShape { c: 256, h: 64, w: 64 };
    let gr: Vec<&[f32]> = grids.iter().map(|g| g.as_slice()).collect();
    let mr: Vec<&[u8]> = masks.iter().map(|m| m.as_slice()).collect();
    // A head fitted to the three images: its boxes are close to the polyps'.
    let cfg = SegConfig { hidden: 8, epochs: 25, batch: 3, lr: 1e-2, ..Default::default() };
    let t0 = std::time::Instant::now();
    let (head, _) =
        pollster::block_on(seg::train(Some(ctx), shape, &gr, &mr, &[], None, &cfg, &mut |_, _| {})).unwrap();
    eprintln!("head: {:.1} s", t0.elapsed().as_secs_f64());
    // Embeddings of the unlabelled images: all three, images 1 and 2, image 2.
    let emb = &emb;
    let from = |k: usize| move |i: usize| -> medpick_core::Result<Vec<f32>> { Ok(emb[k + i].clone()) };
    let (e0, e1, e2) = (from(0), from(1), from(2));
    let sam = SamPseudo { decoder: &dec, embedding: &e0 };
    let keep_all = PseudoLabels { confidence_quantile: 0.0, distance_quantile: 1.0, ..Default::default() };
    let t0 = std::time::Instant::now();
    let (labels, round) = pollster::block_on(pseudo::make(
        Some(ctx),
        &head,
        &gr,
        &pseudo::labeled_distance(shape, &gr, &gr),
        &sam,
        &keep_all,
        &mut Rng::new(1),
    ))
    .unwrap();
    eprintln!("pseudo-labels: {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!((round.kept, round.with_foreground), (3, 3));
    for (p, (h, w, m)) in labels.iter().zip(&full) {
        let own = pollster::block_on(head.predict(Some(ctx), gr[p.index])).unwrap();
        let own: Vec<u8> = own.iter().map(|&v| (v > 0.5) as u8).collect();
        let d_head = medpick_core::metrics::dice_iou(&seg::resize_nearest_u8(&own, 256, 256, *h, *w), m).0;
        let d_sam = medpick_core::metrics::dice_iou(&seg::resize_nearest_u8(&p.mask, 256, 256, *h, *w), m).0;
        eprintln!(
            "image {}: box {:?}, predicted IoU {:?}, confidence {:.3}; Dice head {d_head:.3}, pseudo-label {d_sam:.3}",
            p.index, p.box_256, p.iou_pred, p.confidence
        );
        // The generalist refines the head's own prediction (measured: 0.885/0.951/0.961 vs 0.676/0.790/0.901).
        assert!(d_sam > 0.8 && d_sam > d_head, "image {}: pseudo-label Dice {d_sam}, head {d_head}", p.index);
    }
    // The filter: with image 0 labelled, distance quantile 0 keeps only the nearer of images 1 and 2, confidence
    // quantile 1 only the more confident; a kept image is exactly one that passes both thresholds.
    let d = pseudo::labeled_distance(shape, &gr[..1], &gr[1..]);
    assert!(d.iter().all(|&v| v > 0.0) && d[0] != d[1], "distances {d:?}");
    let e1s = SamPseudo { decoder: &dec, embedding: &e1 };
    for (cq, dq) in [(0.0, 0.0), (1.0, 1.0)] {
        let filter = PseudoLabels { confidence_quantile: cq, distance_quantile: dq, ..Default::default() };
        let (labels, round) =
            pollster::block_on(pseudo::make(Some(ctx), &head, &gr[1..], &d, &e1s, &filter, &mut Rng::new(1))).unwrap();
        let conf: Vec<f32> = labels.iter().map(|p| p.confidence).collect();
        assert_ne!(conf[0], conf[1]);
        let (nearest, surest) = (d.iter().copied().fold(f32::MAX, f32::min), conf.iter().copied().fold(0f32, f32::max));
        assert_eq!(round.kept, 1, "quantiles {cq}/{dq}: {labels:?}");
        for p in &labels {
            let rule = p.confidence >= round.confidence_threshold && p.distance <= round.distance_threshold;
            assert_eq!(p.kept, rule, "image {}: confidence {}, distance {}", p.index, p.confidence, p.distance);
            let expect = if cq == 0.0 { p.distance == nearest } else { p.confidence == surest };
            assert_eq!(p.kept, expect, "quantiles {cq}/{dq}, image {}", p.index);
            assert_eq!(p.mask.is_empty(), !p.kept);
        }
    }
    // Training with pseudo-labels (images 0 and 1 labelled, 2 not): three refreshes at 20/40/60 % of 5 steps.
    let cfg = SegConfig { hidden: 8, epochs: 5, batch: 2, lr: 1e-2, ..Default::default() };
    let with = SegConfig { pseudo: Some(keep_all), ..cfg.clone() };
    let sam2 = SamPseudo { decoder: &dec, embedding: &e2 };
    let (a, log) = pollster::block_on(seg::train(
        Some(ctx),
        shape,
        &gr[..2],
        &mr[..2],
        &gr[2..],
        Some(&sam2),
        &with,
        &mut |_, _| {},
    ))
    .unwrap();
    assert_eq!(log.pseudo.iter().map(|p| p.step).collect::<Vec<_>>(), pseudo::refresh_steps(5, 3));
    assert_eq!(pseudo::refresh_steps(5, 3), vec![1, 2, 3]);
    assert_eq!(pseudo::refresh_steps(100, 3), vec![20, 40, 60]);
    assert!(log.pseudo.iter().all(|p| p.unlabeled == 1 && p.kept == 1), "{:?}", log.pseudo);
    let (b, _) =
        pollster::block_on(seg::train(Some(ctx), shape, &gr[..2], &mr[..2], &gr[2..], None, &cfg, &mut |_, _| {}))
            .unwrap();
    assert_ne!(a.w1, b.w1, "the pseudo-labels changed nothing");
    // Asked for pseudo-labels without the generalist: refused.
    let err =
        pollster::block_on(seg::train(Some(ctx), shape, &gr[..2], &mr[..2], &gr[2..], None, &with, &mut |_, _| {}))
            .unwrap_err();
    assert!(err.to_string().contains("generalist"), "{err}");
}

/// The segmentation warm loop adds exactly the images its score ranks first: recomputed here from the same
/// cold start and the same (deterministic) head, `lc` must pick the four least confident unlabelled images.
#[test]
fn seg_warm_loop_adds_the_least_confident_images() {
    use medpick_core::protocol::{self, SegPool, SegTest};
    use medpick_core::select::{self, Matrix, SelectInput};
    use medpick_core::uncertainty as u;
    let Some(ctx) = gpu() else { return };
    let (shape, grids, masks, full) = dsb2018_grids();
    let tr = 16;
    let pooled: Vec<f32> = grids[..tr].iter().flat_map(|g| shape.spatial_mean(g)).collect();
    let ids: Vec<String> = (0..tr).map(|i| format!("img{i}")).collect();
    let pool = SegPool {
        ids: &ids,
        x: &pooled,
        dim: shape.c,
        grids: &grids[..tr],
        masks: &masks[..tr],
        sam: None,
        hist: None,
        val: None,
        variants: &[],
    };
    let test = SegTest { grids: &grids[tr..], masks: &full[tr..], places: &[] };
    let cfg = SegConfig { hidden: 8, epochs: 10, batch: 4, lr: 1e-2, ..Default::default() };
    let seed = 3;
    let run = |pool: &SegPool, score: &str| {
        pollster::block_on(protocol::warm_loop_seg(
            Some(ctx),
            pool,
            &test,
            shape,
            "random",
            score,
            2,
            4,
            seed,
            &cfg,
            &mut |_, _| {},
        ))
    };
    let rounds = run(&pool, "lc").unwrap();
    assert_eq!(rounds.iter().map(|r| r.labeled).collect::<Vec<_>>(), vec![4, 8]);
    assert!(rounds.iter().all(|r| r.dice.is_some_and(|d| (0.0..=1.0).contains(&d))), "{rounds:?}");
    assert!(rounds[1].next.is_empty());
    let x = Matrix::new(&pooled, tr, shape.c).unwrap();
    let first = pollster::block_on(select::select(
        "random",
        &SelectInput {
            x,
            budget: 4,
            seed,
            labeled: &[],
            scans: Some(medpick_core::exec::Backend::Gpu(ctx)),
            weights: None,
        },
    ))
    .unwrap()
    .picks;
    let gr: Vec<&[f32]> = first.iter().map(|&i| grids[i].as_slice()).collect();
    let mr: Vec<&[u8]> = first.iter().map(|&i| masks[i].as_slice()).collect();
    let c = SegConfig { seed, ..cfg.clone() };
    let (head, _) = pollster::block_on(seg::train(Some(ctx), shape, &gr, &mr, &[], None, &c, &mut |_, _| {})).unwrap();
    let rest: Vec<usize> = (0..tr).filter(|i| !first.contains(i)).collect();
    let lc: Vec<f64> = rest
        .iter()
        .map(|&i| {
            let p = pollster::block_on(head.predict(Some(ctx), &grids[i])).unwrap();
            let probs: Vec<f32> = p.iter().map(|v| 1.0 - v).chain(p.iter().copied()).collect();
            u::lc(&probs, 2, p.len())
        })
        .collect();
    let want: Vec<String> = u::top_by(&lc, 4, true).iter().map(|&k| ids[rest[k]].clone()).collect();
    assert_eq!(rounds[0].next, want, "lc scores {lc:?}");
    // `herd` needs the histograms; with them, at this size (top 10 % of 12 < the batch of 4: four candidates, each
    // its own cluster) it adds the four highest-HER images at round 0's τ, in HER order.
    let err = run(&pool, "herd").unwrap_err();
    assert!(err.to_string().contains("histograms"), "{err}");
    let hist: Vec<[f32; 20]> = grids[..tr].iter().map(|g| u::intensity_histogram(g)).collect();
    let with_hist = SegPool { hist: Some(&hist), ..pool };
    let herd = run(&with_hist, "herd").unwrap();
    let tau = u::her_threshold(0.0, 1.0, 0.35, 0.60);
    let her: Vec<f64> = rest
        .iter()
        .map(|&i| {
            let p = pollster::block_on(head.predict(Some(ctx), &grids[i])).unwrap();
            let probs: Vec<f32> = p.iter().map(|v| 1.0 - v).chain(p.iter().copied()).collect();
            u::her(&probs, 2, p.len(), tau)
        })
        .collect();
    let want: Vec<String> = u::top_by(&her, 4, false).iter().map(|&k| ids[rest[k]].clone()).collect();
    assert_eq!(herd[0].next, want, "her scores {her:?}");
    // A classification-only score is refused by name.
    let err = run(&pool, "bald").unwrap_err();
    assert!(err.to_string().contains("bald"), "{err}");
}

/// 3-D scores stack a volume's slices in slice order whatever the test order, apply MedCAL's component filter
/// (components of at least a third of the largest), use the volume's spacing; 2-D images and incomplete volumes stay out of the 3-D table.
#[test]
fn seg_volumes_are_stacked_in_slice_order_and_filtered_to_their_large_components() {
    let grid = GridShape { c: 3, h: 4, w: 5 };
    let mut rng = Rng::new(7);
    let mut head = SegHead::init(grid, 4, 2, &mut rng).unwrap();
    // Only sub-pixel (0, 0) of each grid cell may be foreground: isolated pixels, so a prediction has several
    // components (output channel (i·r + j)·2 + class).
    for o in 2..8 {
        head.w2[o * 4..(o + 1) * 4].fill(0.0);
        head.b2[o] = if o % 2 == 0 { 1.0 } else { -1.0 };
    }
    let (oh, ow) = head.out_hw();
    // Volume "a": slices 0..6 given in the order 3, 0, 5, 1, 4, 2; a 2-D image; volume "b" missing slice 1.
    let order = [3usize, 0, 5, 1, 4, 2];
    let mut grids: Vec<Vec<f32>> = (0..9).map(|_| rng.uniform_vec(grid.len(), -2.0, 2.0)).collect();
    grids[8] = grids[7].clone();
    let masks: Vec<(usize, usize, Vec<u8>)> =
        (0..9).map(|i| (oh, ow, (0..oh * ow).map(|p| ((p * 7 + i * 3) % 5 < 2) as u8).collect())).collect();
    let spacing = [2.5, 0.8, 0.6];
    let mut places: Vec<Option<protocol::SlicePlace>> =
        order.iter().map(|&k| Some(protocol::SlicePlace { volume: "a".into(), index: k, spacing })).collect();
    places.push(None);
    places.push(Some(protocol::SlicePlace { volume: "b".into(), index: 0, spacing }));
    places.push(Some(protocol::SlicePlace { volume: "b".into(), index: 2, spacing }));
    let test = protocol::SegTest { grids: &grids, masks: &masks, places: &places };
    let each = pollster::block_on(protocol::seg_scores_each(None, &head, &test)).unwrap();
    assert_eq!(each.images.len(), 9);
    assert_eq!(each.volumes.len(), 1);
    assert_eq!(each.volumes_skipped.len(), 1);
    assert!(each.volumes_skipped[0].0 == "b" && each.volumes_skipped[0].1.contains("slice 1 is missing"));
    // By hand: predict each slice, stack by index, component filter, 3-D scores.
    let (mut pred, mut gt) = (vec![0u8; 6 * oh * ow], vec![0u8; 6 * oh * ow]);
    for (i, &k) in order.iter().enumerate() {
        let p = pollster::block_on(head.predict(None, &grids[i])).unwrap();
        for (j, v) in p.iter().enumerate() {
            pred[k * oh * ow + j] = (*v > 0.5) as u8;
            gt[k * oh * ow + j] = masks[i].2[j];
        }
    }
    let kept = medpick_core::metrics::large_components(&pred, [6, oh, ow]);
    let v = &each.volumes[0];
    assert_eq!((v.volume.as_str(), v.first, v.slices), ("a", 0, 6));
    assert_eq!(v.scores, medpick_core::metrics::seg_scores(&kept, &gt, [6, oh, ow], spacing));
    // The random head's prediction has more than one component, so the filter mattered.
    assert_ne!(kept, pred, "the test needs a prediction with several components");
    // eval_seg reports 2-D means while a volume is incomplete, 3-D means once every volume is complete.
    let e2 = pollster::block_on(protocol::eval_seg(None, &head, &test)).unwrap();
    assert_eq!(e2.dice, protocol::SegEval::mean(&each.images).dice);
    let only_a = protocol::SegTest { grids: &grids[..7], masks: &masks[..7], places: &places[..7] };
    let e3 = pollster::block_on(protocol::eval_seg(None, &head, &only_a)).unwrap();
    assert_eq!(e3.dice, v.scores.dice);
    assert_eq!(protocol::incomplete_volumes(&places).0, 2);
    assert_eq!(protocol::incomplete_volumes(&places[..7]), (1, vec![]));
}

/// Intensity variants (brightness, contrast, gamma before encoding): `embed_samples` with a variant gives the
/// encoder's output on the transformed image, cached apart from the original; training draws among them, and
/// without variants trains exactly as before.
#[test]
fn seg_intensity_variants_are_encoded_transforms_cached_apart_and_trained_on() {
    use medpick_core::augment::{IntensityAug, IntensityVariant};
    use medpick_core::features::{embed_samples, Encoder, Pool};
    use medpick_core::manifest::SampleLoader;
    let Some(ctx) = gpu() else { return };
    let (shape, grids, masks, _) = dsb2018_grids();
    let (root, samples) = dsb2018_samples();
    let enc = Encoder::load(None, "pixels:64", None).unwrap();
    let cache = std::env::temp_dir().join(format!("medpick-intensity-{}", std::process::id()));
    let tr = 16;
    let k = 3;
    let embed = |v: Option<IntensityVariant>, cache: Option<&std::path::Path>| {
        let w = medpick_core::io::Window::File;
        pollster::block_on(embed_samples(None, &enc, &root, &samples[..tr], Pool::Grid, w, cache, v, &mut |_, _, _| {}))
            .unwrap()
    };
    let mut variants: Vec<Vec<Vec<f32>>> = vec![Vec::new(); tr];
    let mut loader = SampleLoader::new(&root, medpick_core::io::Window::File);
    for index in 1..=k {
        let v = IntensityVariant { seed: 0, index };
        let (f, rep) = embed(Some(v), Some(&cache));
        assert_eq!(rep.embedded, tr);
        assert!(f.preprocess.contains("intensity-v1 variant"), "{}", f.preprocess);
        // By hand for one image: transform, then encode.
        let img = IntensityAug::draw(v, &samples[index].id).apply(&loader.load(&samples[index]).unwrap());
        let want = pollster::block_on(enc.embed(None, &img, Pool::Grid)).unwrap();
        assert_eq!(f.row(index), want.as_slice());
        assert_ne!(f.row(index), grids[index].as_slice());
        // Cached under its own key: a second run reads it back; the originals are not among them.
        let (again, rep) = embed(Some(v), Some(&cache));
        assert_eq!((rep.from_cache, again.data == f.data), (tr, true));
        for (i, vs) in variants.iter_mut().enumerate() {
            vs.push(f.row(i).to_vec());
        }
    }
    let (_, rep) = embed(None, Some(&cache));
    assert_eq!(rep.from_cache, 0, "originals and variants share cache entries");
    let _ = std::fs::remove_dir_all(&cache);
    let gr: Vec<&[f32]> = grids[..tr].iter().map(|g| g.as_slice()).collect();
    let mr: Vec<&[u8]> = masks[..tr].iter().map(|m| m.as_slice()).collect();
    let vr: Vec<Vec<&[f32]>> = variants.iter().map(|vs| vs.iter().map(|g| g.as_slice()).collect()).collect();
    let cfg = SegConfig { hidden: 8, epochs: 4, batch: 8, lr: 1e-2, intensity_variants: k, ..Default::default() };
    let run = |v: &[Vec<&[f32]>]| {
        pollster::block_on(seg::train_with_val(
            Some(ctx),
            shape,
            &gr,
            v,
            &mr,
            &[],
            None,
            &cfg,
            None,
            None,
            &mut |_, _| {},
        ))
    };
    let (plain, with) = (run(&[]).unwrap().0, run(&vr).unwrap().0);
    assert_ne!(plain.w1, with.w1, "the variants were not trained on");
    // Off means off: no variants gives exactly `train`'s head (no extra random draws).
    let (same, _) =
        pollster::block_on(seg::train(Some(ctx), shape, &gr, &mr, &[], None, &cfg, &mut |_, _| {})).unwrap();
    assert_eq!((&same.w1, &same.w2), (&plain.w1, &plain.w2));
    let err = run(&vr[..3]).unwrap_err();
    assert!(err.to_string().contains("intensity variants for 3 of 16"), "{err}");
}
