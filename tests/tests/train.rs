//! Training: finite-difference gradient checks of the backward kernels, reproducibility, and a real head on
//! real data (BreastMNIST, raw-pixel features) that must beat an untrained one.

use medpick_core::cpu;
use medpick_core::model::exec::Exec;
use medpick_core::rng::Rng;
use medpick_core::train::cls::{self, ClsConfig, ClsHead, HeadKind};

use crate::common::{gpu, shared};

/// Batch-mean loss of a linear layer, in f64 on the CPU twins (the function the gradients are checked against).
fn loss_f64(w: &[f32], b: &[f32], x: &[f32], y: &[u32], rows: usize, dim: usize, classes: usize, eps: f32) -> f64 {
    let z = cpu::matmul(x, w, Some(b), rows, classes, dim, true);
    let (l, _) = cpu::softmax_xent(&z, y, rows, classes, eps, 1.0);
    l.iter().map(|&v| v as f64).sum::<f64>() / rows as f64
}

fn gradient_check(on_gpu: bool) {
    let ctx = if on_gpu {
        match gpu() {
            Some(c) => Some(c),
            None => return,
        }
    } else {
        None
    };
    let (rows, dim, classes, eps) = (9, 5, 3, 0.1);
    let mut rng = Rng::new(11);
    let x = rng.uniform_vec(rows * dim, -1.0, 1.0);
    let w = rng.uniform_vec(classes * dim, -0.5, 0.5);
    let b = rng.uniform_vec(classes, -0.5, 0.5);
    // One ignored row (label = classes) must contribute nothing.
    let y: Vec<u32> = (0..rows).map(|r| if r == 4 { classes as u32 } else { rng.below(classes as u32) }).collect();
    let mut ex = match ctx {
        Some(c) => Exec::gpu(c),
        None => Exec::cpu(),
    };
    let (tw, tb, tx) = (ex.upload("w", &w).unwrap(), ex.upload("b", &b).unwrap(), ex.upload("x", &x).unwrap());
    let (loss, dw, db) =
        pollster::block_on(cls::linear_loss_and_grads(&mut ex, &tw, &tb, &tx, &y, (rows, dim, classes), eps)).unwrap();
    let dw = pollster::block_on(ex.read(&dw, classes * dim)).unwrap();
    let db = pollster::block_on(ex.read(&db, classes)).unwrap();
    let l0 = loss_f64(&w, &b, &x, &y, rows, dim, classes, eps);
    assert!((loss as f64 - l0).abs() < 1e-5, "loss {loss} vs {l0}");
    let h = 1e-3f32;
    let numeric = |i: usize, is_bias: bool| -> f64 {
        let (mut wp, mut bp) = (w.clone(), b.clone());
        let (mut wm, mut bm) = (w.clone(), b.clone());
        if is_bias {
            bp[i] += h;
            bm[i] -= h;
        } else {
            wp[i] += h;
            wm[i] -= h;
        }
        (loss_f64(&wp, &bp, &x, &y, rows, dim, classes, eps) - loss_f64(&wm, &bm, &x, &y, rows, dim, classes, eps))
            / (2.0 * h as f64)
    };
    // The kernel's gradient is of the sum over rows scaled by 1/rows, i.e. of the mean over all rows,
    // ignored ones included (they count in `rows`): the loss above divides by `rows` the same way.
    for i in 0..classes * dim {
        let n = numeric(i, false);
        assert!((dw[i] as f64 - n).abs() < 2e-4 + 1e-3 * n.abs(), "dW[{i}]: {} vs numeric {n}", dw[i]);
    }
    for i in 0..classes {
        let n = numeric(i, true);
        assert!((db[i] as f64 - n).abs() < 2e-4 + 1e-3 * n.abs(), "db[{i}]: {} vs numeric {n}", db[i]);
    }
}

#[test]
fn linear_head_gradients_match_finite_differences_on_the_gpu() {
    gradient_check(true);
}

#[test]
fn linear_head_gradients_match_finite_differences_on_the_cpu() {
    gradient_check(false);
}

/// BreastMNIST train/test as raw 28×28 pixels in [0, 1].
fn breastmnist() -> Option<(Vec<f32>, Vec<usize>, Vec<f32>, Vec<usize>)> {
    let sh = shared()?;
    let p = sh.join("data/medmnist/breastmnist.npz");
    let load = |split: &str| {
        let img = medpick_core::io::npz::read_u8(&p, &format!("{split}_images"), 1 << 24).unwrap();
        let (_, _, labels) = medpick_core::io::npz::read_labels(&p, &format!("{split}_labels")).unwrap();
        let x: Vec<f32> = img.iter().map(|&v| v as f32 / 255.0).collect();
        (x, labels.into_iter().map(|l| l as usize).collect::<Vec<_>>())
    };
    let (xtr, ytr) = load("train");
    let (xte, yte) = load("test");
    Some((xtr, ytr, xte, yte))
}

#[test]
fn heads_trained_on_breastmnist_beat_untrained_ones_and_are_reproducible() {
    let Some((xtr, ytr, xte, yte)) = breastmnist() else { return };
    let ctx = gpu();
    for kind in [HeadKind::Linear, HeadKind::DropQuery] {
        let cfg = ClsConfig { kind, epochs: 30, seed: 3, ..Default::default() };
        let (head, log) = pollster::block_on(cls::train(ctx, &xtr, &ytr, 2, &cfg, None)).unwrap();
        let probs = pollster::block_on(head.predict(ctx, &xte)).unwrap();
        let pred = ClsHead::argmax(&probs, 2);
        let bacc = medpick_core::metrics::balanced_accuracy(&pred, &yte, 2);
        let auc = medpick_core::metrics::macro_auc(&probs, &yte, 2).unwrap();
        // Untrained: zero weights, a constant prediction.
        let untrained = ClsHead { weight: vec![0.0; head.weight.len()], bias: vec![0.0; 2], ..head.clone() };
        let p0 = pollster::block_on(untrained.predict(ctx, &xte)).unwrap();
        let b0 = medpick_core::metrics::balanced_accuracy(&ClsHead::argmax(&p0, 2), &yte, 2);
        eprintln!(
            "{kind:?}: {} steps in {:.2} s ({:.2} ms/step), loss {:.3} -> {:.3}; test balanced acc {bacc:.3} (untrained {b0:.3}), AUC {auc:.3}",
            log.steps,
            log.seconds,
            1e3 * log.seconds / log.steps as f64,
            log.epoch_loss[0],
            log.epoch_loss.last().unwrap()
        );
        assert!(log.epoch_loss.last().unwrap() < &log.epoch_loss[0], "loss must fall");
        assert!(bacc > b0 + 0.1 && auc > 0.7, "{kind:?}: balanced acc {bacc} vs untrained {b0}, AUC {auc}");
        // Same seed, same head, bit for bit.
        let (again, _) = pollster::block_on(cls::train(ctx, &xtr, &ytr, 2, &cfg, None)).unwrap();
        assert!(again.weight == head.weight && again.bias == head.bias, "{kind:?}: training is not reproducible");
    }
}

/// Model selection on BreastMNIST's validation split (MedCAL: every 5 epochs, best validation accuracy): the head
/// returned is bit for bit the one a run stopped at the best epoch returns, its validation accuracy is the one
/// logged, and no other checkpoint is more accurate on validation (the earliest of equals is kept).
#[test]
fn classification_head_keeps_the_checkpoint_of_best_validation_accuracy() {
    let Some((xtr, ytr, _, _)) = breastmnist() else { return };
    let sh = shared().unwrap();
    let p = sh.join("data/medmnist/breastmnist.npz");
    let img = medpick_core::io::npz::read_u8(&p, "val_images", 1 << 24).unwrap();
    let (_, _, yv) = medpick_core::io::npz::read_labels(&p, "val_labels").unwrap();
    let xv: Vec<f32> = img.iter().map(|&v| v as f32 / 255.0).collect();
    let yv: Vec<usize> = yv.into_iter().map(|l| l as usize).collect();
    let ctx = gpu();
    // A budget-sized training set (54 images), as in the protocol.
    let (x54, y54) = (&xtr[..54 * 784], &ytr[..54]);
    let cfg = ClsConfig { epochs: 40, seed: 1, lr: 3e-3, ..Default::default() };
    let val = cls::Validation { x: &xv, labels: &yv, every: 5 };
    let (head, log) = pollster::block_on(cls::train(ctx, x54, y54, 2, &cfg, Some(val))).unwrap();
    let best = log.best_epoch.unwrap();
    let acc_of = |h: &ClsHead| {
        let pred = ClsHead::argmax(&pollster::block_on(h.predict(ctx, &xv)).unwrap(), 2);
        medpick_core::metrics::accuracy(&pred, &yv)
    };
    assert_eq!(acc_of(&head), log.val_accuracy.unwrap());
    let mut accs = Vec::new();
    for e in (5..=40).step_by(5) {
        let (h, _) =
            pollster::block_on(cls::train(ctx, x54, y54, 2, &ClsConfig { epochs: e, ..cfg.clone() }, None)).unwrap();
        if e == best {
            assert!(h.weight == head.weight && h.bias == head.bias, "epoch {e}: not the head returned");
        }
        accs.push((e, acc_of(&h)));
    }
    eprintln!("validation accuracy per checkpoint {accs:?}; kept epoch {best}");
    for &(e, a) in &accs {
        assert!(a < log.val_accuracy.unwrap() || (a == log.val_accuracy.unwrap() && e >= best), "epoch {e}: {a}");
    }
    // A validation split that does not match the features is refused.
    let bad = cls::Validation { x: &xv[..10], labels: &yv, every: 5 };
    assert!(pollster::block_on(cls::train(ctx, x54, y54, 2, &cfg, Some(bad))).is_err());
}

// ---- Segmentation head -------------------------------------------------------------------------------------

/// The browser's classification head (classes labelled in the tab, trained on the session's rows with
/// `train::labelled::train_cls`) equals `medpick train --task cls` on a feature file and the labels CSV the tab
/// exports: same rows in the same order, same classes, same settings and seed, so the same weights, bit for bit
/// (the CPU backend). Real data: BreastMNIST's raw pixels, every third image labelled.
#[test]
fn a_head_trained_in_the_tab_equals_medpick_train_on_the_exported_labels() {
    use medpick_core::features::Features;
    use medpick_core::train::{heads, labelled};
    let Some((xtr, ytr, _, _)) = breastmnist() else { return };
    let (n, dim) = (240, 28 * 28);
    let names = ["benign", "malignant"];
    let ids: Vec<String> = (0..n).map(|i| format!("images/breast_{i:04}.png")).collect();
    let dir = crate::cli::tmp("tab-cls-head");
    let features = dir.join("features.safetensors");
    let f = Features {
        ids: ids.clone(),
        dim,
        data: xtr[..n * dim].to_vec(),
        model: "pixels".into(),
        pool: "mean".into(),
        preprocess: "pixels".into(),
    };
    f.write(&features, false).unwrap();
    let labelled_rows: Vec<usize> = (0..n).step_by(3).collect();
    let csv = std::iter::once("id,label".to_string())
        .chain(labelled_rows.iter().map(|&i| format!("{},{}", ids[i], names[ytr[i].min(1)])))
        .collect::<Vec<_>>()
        .join("\n");
    let labels = dir.join("labels.csv");
    std::fs::write(&labels, csv).unwrap();
    let cfg = ClsConfig { epochs: 20, seed: 5, ..ClsConfig::default() };
    let (cli, _) = pollster::block_on(heads::train_cls(None, &features, &labels, &cfg)).unwrap();
    let x: Vec<f32> = labelled_rows.iter().flat_map(|&i| xtr[i * dim..(i + 1) * dim].iter().copied()).collect();
    let y: Vec<String> = labelled_rows.iter().map(|&i| names[ytr[i].min(1)].to_string()).collect();
    let (tab, log) = pollster::block_on(labelled::train_cls(None, "pixels", &x, dim, &y, 20, 5)).unwrap();
    assert_eq!(log.epoch_loss.len(), 20);
    assert_eq!((&tab.classes, tab.trained_on, tab.dim), (&cli.classes, cli.trained_on, cli.dim));
    assert_eq!(serde_json::to_value(&tab.head).unwrap(), serde_json::to_value(&cli.head).unwrap());
}
