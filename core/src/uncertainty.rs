//! Model-in-the-loop scores for later rounds (METHODS.md §5–§7): given a model's predictions on the unlabelled
//! pool, score every sample and pick the `budget` most informative. Segmentation predictions are per-pixel
//! class probabilities [C, P] per sample; classification predictions are class probabilities [C].
//!
//! Scores follow the GM-ABS code (LC, HE, HER, HERD), DropQuery (MC-dropout mismatch + k-means) and BALD. ASD
//! and DKD are **ASSFT-like reconstructions** (the paper's code is not public; METHODS.md §7): see their docs.
//! The per-pixel entropy and max-probability maps are what the `entropy_map` kernel computes on the GPU.

use crate::rng::Rng;
use crate::select::kmeans::kmeans;
use crate::select::Matrix;
use crate::{Error, Result};

const EPS: f64 = 1e-6;

/// Normalised entropy −Σ p·ln(p + 1e-6) / ln C of one probability vector (FM-ABS/GM-ABS's definition).
pub fn norm_entropy(p: &[f32]) -> f64 {
    let c = p.len().max(2) as f64;
    -p.iter().map(|&v| v as f64 * (v as f64 + EPS).ln()).sum::<f64>() / c.ln()
}

/// Per-pixel (normalised entropy, max probability) of a [C, P] probability map.
pub fn pixel_maps(probs: &[f32], classes: usize, pixels: usize) -> (Vec<f64>, Vec<f64>) {
    let mut ent = Vec::with_capacity(pixels);
    let mut conf = Vec::with_capacity(pixels);
    let mut q = vec![0f32; classes];
    for p in 0..pixels {
        for c in 0..classes {
            q[c] = probs[c * pixels + p];
        }
        ent.push(norm_entropy(&q));
        conf.push(q.iter().fold(0f32, |a, &b| a.max(b)) as f64);
    }
    (ent, conf)
}

/// Quantile with linear interpolation between closest ranks (torch.quantile's default).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let pos = q * (s.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    s[i] + (s[(i + 1).min(s.len() - 1)] - s[i]) * f
}

/// LC (GM-ABS "bottom-quartile" least confidence): the mean max-probability of the pixels below the 25 %
/// quantile of max-probability (≤ when all are equal). Lower = less confident = picked first.
pub fn lc(probs: &[f32], classes: usize, pixels: usize) -> f64 {
    let (_, conf) = pixel_maps(probs, classes, pixels);
    let q = quantile(&conf, 0.25);
    let below: Vec<f64> = conf.iter().copied().filter(|&c| c < q).collect();
    let pool = if below.is_empty() { conf.iter().copied().filter(|&c| c <= q).collect() } else { below };
    pool.iter().sum::<f64>() / pool.len().max(1) as f64
}

/// HE: mean normalised entropy over pixels. Higher = picked first.
pub fn he(probs: &[f32], classes: usize, pixels: usize) -> f64 {
    let (ent, _) = pixel_maps(probs, classes, pixels);
    ent.iter().sum::<f64>() / pixels.max(1) as f64
}

/// The HER threshold ramp of the GM-ABS code: τ(t) = lo + (hi − lo)·exp(−5(1 − t/T)²), t clipped to [0, T]
/// (defaults lo = 0.35, hi = 0.60; FM-ABS's paper is said to use 0.5 → 0.75: pass those to get it).
pub fn her_threshold(t: f64, t_max: f64, lo: f64, hi: f64) -> f64 {
    let r = if t_max <= 0.0 { 1.0 } else { (-5.0 * (1.0 - (t / t_max).clamp(0.0, 1.0)).powi(2)).exp() };
    lo + (hi - lo) * r
}

/// HER: the fraction of pixels whose normalised entropy exceeds τ. Higher = picked first.
pub fn her(probs: &[f32], classes: usize, pixels: usize, tau: f64) -> f64 {
    let (ent, _) = pixel_maps(probs, classes, pixels);
    ent.iter().filter(|&&h| h > tau).count() as f64 / pixels.max(1) as f64
}

/// Margin (top-1 − top-2 probability), averaged over pixels for maps. Lower = picked first.
pub fn margin(probs: &[f32], classes: usize, pixels: usize) -> f64 {
    let mut total = 0.0;
    for p in 0..pixels {
        let (mut a, mut b) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for c in 0..classes {
            let v = probs[c * pixels + p] as f64;
            if v > a {
                b = a;
                a = v;
            } else if v > b {
                b = v;
            }
        }
        total += a - if b.is_finite() { b } else { 0.0 };
    }
    total / pixels.max(1) as f64
}

/// BALD from M stochastic (MC-dropout) passes of one sample, each [C] (or [C, P] maps, averaged over pixels):
/// H(mean p) − mean H(p_m), with natural-log entropies. Higher = picked first.
pub fn bald(passes: &[Vec<f32>], classes: usize, pixels: usize) -> Result<f64> {
    if passes.is_empty() {
        return Err(Error::Invalid("bald needs at least one dropout pass".into()));
    }
    let m = passes.len() as f64;
    let h = |q: &[f64]| -q.iter().map(|&v| v * (v + EPS).ln()).sum::<f64>();
    let mut total = 0.0;
    for p in 0..pixels {
        let mut mean = vec![0f64; classes];
        let mut exp_h = 0.0;
        for pass in passes {
            let q: Vec<f64> = (0..classes).map(|c| pass[c * pixels + p] as f64).collect();
            exp_h += h(&q) / m;
            for (a, b) in mean.iter_mut().zip(&q) {
                *a += b / m;
            }
        }
        total += h(&mean) - exp_h;
    }
    Ok(total / pixels.max(1) as f64)
}

/// ASSFT-like ASD (anatomical segmentation difficulty), our reconstruction: the mean normalised entropy over
/// the pixels predicted as foreground (argmax ≠ 0); 0 when nothing is predicted as foreground. Higher = first.
pub fn asd(probs: &[f32], classes: usize, pixels: usize) -> f64 {
    let (ent, _) = pixel_maps(probs, classes, pixels);
    let mut s = 0.0;
    let mut n = 0usize;
    for p in 0..pixels {
        let arg = (0..classes).max_by(|&a, &b| probs[a * pixels + p].total_cmp(&probs[b * pixels + p])).unwrap_or(0);
        if arg != 0 {
            s += ent[p];
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// ASSFT-like DKD (diversified knowledge divergence), our reconstruction: for each sample, the product of its
/// divergence from the pre-trained feature statistics (‖f − μ‖ / σ with μ, σ the pool's feature mean and mean
/// distance to it) and its diversity (distance to the nearest labelled sample, or 1 when none is labelled).
pub fn dkd(x: Matrix, labeled: &[usize]) -> Vec<f64> {
    let mut mu = vec![0f64; x.d];
    for i in 0..x.n {
        for (m, &v) in mu.iter_mut().zip(x.row(i)) {
            *m += v as f64 / x.n as f64;
        }
    }
    let dist = |a: &[f32], b: &dyn Fn(usize) -> f64| -> f64 {
        a.iter().enumerate().map(|(k, &v)| (v as f64 - b(k)).powi(2)).sum::<f64>().sqrt()
    };
    let div: Vec<f64> = (0..x.n).map(|i| dist(x.row(i), &|k| mu[k])).collect();
    let sigma = div.iter().sum::<f64>() / x.n.max(1) as f64 + 1e-12;
    (0..x.n)
        .map(|i| {
            let diversity =
                labeled.iter().map(|&l| dist(x.row(i), &|k| x.row(l)[k] as f64)).fold(f64::INFINITY, f64::min);
            (div[i] / sigma) * if diversity.is_finite() { diversity } else { 1.0 }
        })
        .collect()
}

/// HERD (GM-ABS `uncerper_div`): the top max(1, ⌊0.1·N⌋) samples by HER, described by 20-bin intensity
/// histograms over each image's [min, max] (normalised to sum 1), clustered with k-means (k = budget); the
/// first (highest-HER) member of every cluster with more than one member. GM-ABS skips singleton clusters and
/// may return fewer than `budget`; medpick then takes the next highest-HER candidates (documented fill).
pub fn herd(her_scores: &[f64], images: &[Vec<f32>], budget: usize, seed: u64) -> Result<Vec<usize>> {
    if her_scores.len() != images.len() {
        return Err(Error::Invalid("herd: one image per score".into()));
    }
    let hists: Vec<[f32; 20]> = images.iter().map(|img| intensity_histogram(img)).collect();
    herd_from_histograms(her_scores, &hists, budget, seed)
}

/// HERD's image descriptor: a 20-bin histogram of the intensities over the image's own [min, max], normalised
/// to sum 1 (a constant image puts everything in bin 0).
pub fn intensity_histogram(img: &[f32]) -> [f32; 20] {
    let (lo, hi) = img.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let mut h = [0f32; 20];
    for &v in img {
        let bin = if hi > lo { (((v - lo) / (hi - lo)) * 20.0).floor().clamp(0.0, 19.0) as usize } else { 0 };
        h[bin] += 1.0;
    }
    let n = img.len().max(1) as f32;
    h.map(|c| c / n)
}

/// [`herd`] from precomputed [`intensity_histogram`]s (one per score), so a loop keeps 20 numbers per image
/// rather than the images.
pub fn herd_from_histograms(her_scores: &[f64], hists: &[[f32; 20]], budget: usize, seed: u64) -> Result<Vec<usize>> {
    if her_scores.len() != hists.len() {
        return Err(Error::Invalid("herd: one histogram per score".into()));
    }
    let mut order: Vec<usize> = (0..her_scores.len()).collect();
    order.sort_by(|&a, &b| her_scores[b].total_cmp(&her_scores[a]).then(a.cmp(&b)));
    let top = ((her_scores.len() as f64 * 0.1).floor() as usize).max(1).max(budget).min(order.len());
    let cand = &order[..top];
    let hist: Vec<f32> = cand.iter().flat_map(|&i| hists[i]).collect();
    let m = Matrix::new(&hist, cand.len(), 20)?;
    let c = kmeans(m, budget.min(cand.len()), seed, 300, 1e-4);
    let mut picks = Vec::new();
    for k in 0..c.k {
        let members: Vec<usize> = (0..cand.len()).filter(|&j| c.labels[j] == k).collect();
        if members.len() > 1 {
            picks.push(cand[members[0]]);
        }
    }
    for &i in cand.iter().chain(order[top..].iter()) {
        if picks.len() >= budget {
            break;
        }
        if !picks.contains(&i) {
            picks.push(i);
        }
    }
    picks.truncate(budget);
    Ok(picks)
}

/// DropQuery (METHODS.md §5.3): `clean[i]` = predicted class without dropout, `passes[m][i]` = predicted class
/// in dropout pass m, `emb` = the classifier's embeddings of the pool. Candidates = samples whose dropout
/// predictions disagree with the clean one more than ⌊M/2⌋ times (lowered until ≥ 25·b candidates or 0);
/// fewer than b candidates → all of them plus seeded random others; else k-means (k = b) on the L2-normalised
/// candidate embeddings and the candidate nearest each centroid.
pub fn dropquery(clean: &[usize], passes: &[Vec<usize>], emb: Matrix, budget: usize, seed: u64) -> Result<Vec<usize>> {
    let n = clean.len();
    if emb.n != n || passes.iter().any(|p| p.len() != n) {
        return Err(Error::Invalid("dropquery: predictions and embeddings must cover the same samples".into()));
    }
    let mism: Vec<usize> = (0..n).map(|i| passes.iter().filter(|p| p[i] != clean[i]).count()).collect();
    let mut thresh = passes.len() / 2;
    while mism.iter().filter(|&&m| m > thresh).count() < 25 * budget && thresh > 0 {
        thresh -= 1;
    }
    let cand: Vec<usize> = (0..n).filter(|&i| mism[i] > thresh).collect();
    if cand.len() < budget {
        let mut rest: Vec<usize> = (0..n).filter(|i| !cand.contains(i)).collect();
        Rng::new(seed).shuffle(&mut rest);
        let mut out = cand.clone();
        out.extend(rest.into_iter().take(budget - cand.len()));
        return Ok(out);
    }
    let mut data = Vec::with_capacity(cand.len() * emb.d);
    for &i in &cand {
        let r = emb.row(i);
        let nrm = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() + 1e-10;
        data.extend(r.iter().map(|&v| (v as f64 / nrm) as f32));
    }
    let m = Matrix::new(&data, cand.len(), emb.d)?;
    let c = kmeans(m, budget, seed, 100, 1e-4);
    let mut out = Vec::new();
    for k in 0..c.k {
        let center = &c.centers[k * emb.d..(k + 1) * emb.d];
        let best = (0..cand.len()).filter(|&j| c.labels[j] == k).min_by(|&a, &b| {
            let da: f64 = m.row(a).iter().zip(center).map(|(&x, &y)| (x as f64 - y).powi(2)).sum();
            let db: f64 = m.row(b).iter().zip(center).map(|(&x, &y)| (x as f64 - y).powi(2)).sum();
            da.total_cmp(&db).then(a.cmp(&b))
        });
        if let Some(j) = best {
            out.push(cand[j]);
        }
    }
    Ok(out)
}

/// The `budget` samples with the highest (or, with `ascending`, lowest) score, ties to the lower index.
pub fn top_by(scores: &[f64], budget: usize, ascending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| !scores[i].is_nan()).collect();
    order.sort_by(|&a, &b| {
        let o = if ascending { scores[a].total_cmp(&scores[b]) } else { scores[b].total_cmp(&scores[a]) };
        o.then(a.cmp(&b))
    });
    order.truncate(budget);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-class maps over 100 pixels: `p` = probability of class 1 everywhere.
    fn map(p: f32) -> Vec<f32> {
        let mut v = vec![1.0 - p; 100];
        v.extend(vec![p; 100]);
        v
    }

    #[test]
    fn uncertain_maps_rank_first_under_every_score() {
        let maps = [map(0.99), map(0.55), map(0.8), map(0.5)];
        let he_s: Vec<f64> = maps.iter().map(|m| he(m, 2, 100)).collect();
        let lc_s: Vec<f64> = maps.iter().map(|m| lc(m, 2, 100)).collect();
        let her_s: Vec<f64> = maps.iter().map(|m| her(m, 2, 100, her_threshold(0.0, 100.0, 0.35, 0.60))).collect();
        let mg: Vec<f64> = maps.iter().map(|m| margin(m, 2, 100)).collect();
        assert_eq!(top_by(&he_s, 2, false), vec![3, 1]);
        assert_eq!(top_by(&lc_s, 2, true), vec![3, 1]);
        assert_eq!(top_by(&mg, 2, true), vec![3, 1]);
        assert_eq!(her_s[3], 1.0);
        assert_eq!(her_s[0], 0.0);
        assert!((he_s[3] - 1.0).abs() < 1e-5, "p = 0.5 has normalised entropy 1");
        assert!((her_threshold(0.0, 10.0, 0.35, 0.6) - (0.35 + 0.25 * (-5f64).exp())).abs() < 1e-12);
        assert!((her_threshold(10.0, 10.0, 0.35, 0.6) - 0.6).abs() < 1e-12);
    }

    #[test]
    fn lc_is_the_mean_of_the_bottom_quartile() {
        // Pixel confidences 0.5..1.0: the 25 % quantile and the mean below it.
        let pixels = 5;
        let p1 = [0.5f32, 0.6, 0.7, 0.8, 0.9];
        let mut m: Vec<f32> = p1.iter().map(|p| 1.0 - p).collect();
        m.extend(p1);
        // conf = [0.5, 0.6, 0.7, 0.8, 0.9]; q25 = 0.6; below = [0.5]
        assert!((lc(&m, 2, pixels) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn bald_is_zero_for_agreeing_passes_and_positive_otherwise() {
        let agree = vec![vec![0.2f32, 0.8], vec![0.2, 0.8]];
        let disagree = vec![vec![0.9f32, 0.1], vec![0.1, 0.9]];
        assert!(bald(&agree, 2, 1).unwrap().abs() < 1e-9);
        assert!(bald(&disagree, 2, 1).unwrap() > 0.3);
    }

    #[test]
    fn asd_only_looks_at_foreground() {
        let mut m = vec![0.99f32; 50];
        m.extend(vec![0.4f32; 50]); // class 0 probs: background in the first half, foreground in the second
        let p1: Vec<f32> = m.iter().map(|p| 1.0 - p).collect();
        let mut probs = m.clone();
        probs.extend(p1);
        let a = asd(&probs, 2, 100);
        let fg = norm_entropy(&[0.4, 0.6]);
        assert!((a - fg).abs() < 1e-9);
        assert_eq!(asd(&map(0.1), 2, 100), 0.0);
    }

    #[test]
    fn dropquery_prefers_disagreement_and_fills_randomly() {
        let n = 40;
        let clean: Vec<usize> = vec![0; n];
        let mut passes = vec![vec![0usize; n]; 3];
        for p in passes.iter_mut() {
            p[3] = 1;
            p[7] = 1;
        }
        let emb: Vec<f32> = (0..n * 2).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = Matrix::new(&emb, n, 2).unwrap();
        let picks = dropquery(&clean, &passes, x, 4, 1).unwrap();
        assert_eq!(picks.len(), 4);
        assert!(picks.contains(&3) && picks.contains(&7));
        assert_eq!(picks, dropquery(&clean, &passes, x, 4, 1).unwrap());
    }

    #[test]
    fn dkd_favours_far_from_labelled_and_atypical() {
        let emb = [0.0f32, 0.0, 0.1, 0.0, 5.0, 5.0, 0.05, 0.05];
        let x = Matrix::new(&emb, 4, 2).unwrap();
        let s = dkd(x, &[0]);
        assert_eq!(top_by(&s, 1, false), vec![2]);
        assert_eq!(s[0], 0.0);
    }

    #[test]
    fn herd_returns_budget_distinct_samples() {
        let imgs: Vec<Vec<f32>> = (0..30).map(|i| (0..64).map(|p| ((p * (i % 5 + 1)) % 17) as f32).collect()).collect();
        let her_s: Vec<f64> = (0..30).map(|i| (i % 7) as f64 / 7.0).collect();
        let picks = herd(&her_s, &imgs, 3, 0).unwrap();
        assert_eq!(picks.len(), 3);
        assert_eq!(picks.iter().collect::<std::collections::HashSet<_>>().len(), 3);
    }

    /// HERD trades HER rank for intensity diversity: of the top 10 % (4 of 40) by HER, images 0 and 1 look alike
    /// and so do 2 and 3; with a budget of 2 it takes one of each kind (0 and 2), where HER alone takes 0 and 1.
    #[test]
    fn herd_takes_one_image_per_intensity_cluster() {
        let her_s: Vec<f64> = (0..40).map(|i| 1.0 - i as f64 / 40.0).collect();
        let dark: Vec<f32> = (0..100).map(|p| if p < 80 { 0.0 } else { 1.0 }).collect();
        let bright: Vec<f32> = (0..100).map(|p| if p < 20 { 0.0 } else { 1.0 }).collect();
        let flat: Vec<f32> = (0..100).map(|p| p as f32).collect();
        let hists: Vec<[f32; 20]> = (0..40)
            .map(|i| {
                intensity_histogram(if i < 2 {
                    &dark
                } else if i < 4 {
                    &bright
                } else {
                    &flat
                })
            })
            .collect();
        assert_eq!(hists[0][0], 0.8);
        assert_eq!(hists[2][19], 0.8);
        let mut picks = herd_from_histograms(&her_s, &hists, 2, 0).unwrap();
        picks.sort();
        assert_eq!(picks, vec![0, 2]);
        assert_eq!(top_by(&her_s, 2, false), vec![0, 1]);
        assert!(herd_from_histograms(&her_s, &hists[..3], 2, 0).is_err());
    }
}
