//! Evaluation metrics, as MedCAL-Bench reports them: Dice, IoU, HD95 and ASD for segmentation (2-D per image,
//! or 3-D per volume after MedCAL's connected-component filter of the prediction), accuracy, balanced
//! accuracy and macro one-vs-rest AUC for classification. Evaluation runs once per model on the host.
//!
//! Conventions (as MedPy, which MedCAL uses): distances are between the surface pixels of the two masks
//! (a foreground pixel with a 4-/6-connected background neighbour or on the border), in `spacing` units.
//! Both masks empty: Dice = IoU = 1, distances 0. Exactly one empty: Dice = IoU = 0, distances undefined
//! (`None`; MedCAL skips such cases in its distance means).

/// Overlap and surface-distance metrics of one prediction against its ground truth.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SegScores {
    pub dice: f64,
    pub iou: f64,
    pub hd95: Option<f64>,
    pub asd: Option<f64>,
}

/// Dice and IoU of two binary masks (non-zero = foreground).
pub fn dice_iou(pred: &[u8], gt: &[u8]) -> (f64, f64) {
    let (mut inter, mut p, mut g) = (0usize, 0usize, 0usize);
    for (&a, &b) in pred.iter().zip(gt) {
        let (a, b) = (a != 0, b != 0);
        inter += (a && b) as usize;
        p += a as usize;
        g += b as usize;
    }
    if p + g == 0 {
        return (1.0, 1.0);
    }
    (2.0 * inter as f64 / (p + g) as f64, inter as f64 / (p + g - inter) as f64)
}

/// Surface voxels of a mask with dims [d, h, w] (d = 1 for 2-D): foreground with a 4-/6-connected background
/// neighbour or on the border (MedPy: the mask minus its erosion, the outside counting as background).
fn surface(mask: &[u8], dims: [usize; 3]) -> Vec<bool> {
    let [d, h, w] = dims;
    let at = |z: usize, y: usize, x: usize| mask[(z * h + y) * w + x] != 0;
    let mut out = vec![false; mask.len()];
    for z in 0..d {
        for y in 0..h {
            for x in 0..w {
                if !at(z, y, x) {
                    continue;
                }
                let border2d = y == 0 || x == 0 || y + 1 == h || x + 1 == w;
                let border3d = d > 1 && (z == 0 || z + 1 == d);
                out[(z * h + y) * w + x] = border2d
                    || border3d
                    || !at(z, y - 1, x)
                    || !at(z, y + 1, x)
                    || !at(z, y, x - 1)
                    || !at(z, y, x + 1)
                    || (d > 1 && (!at(z - 1, y, x) || !at(z + 1, y, x)));
            }
        }
    }
    out
}

/// Squared distance transform along one line (Felzenszwalb & Huttenlocher's lower envelope of parabolas):
/// `out[p] = min_q ((p − q)·s)² + f[q]` over the finite `f[q]`; infinity when there are none.
fn edt_line(f: &[f64], s: f64, out: &mut [f64], v: &mut Vec<usize>, left: &mut Vec<f64>) {
    v.clear();
    left.clear();
    for (q, &fq) in f.iter().enumerate() {
        if !fq.is_finite() {
            continue;
        }
        let xq = q as f64 * s;
        while let Some(&p) = v.last() {
            let xp = p as f64 * s;
            let cross = ((fq + xq * xq) - (f[p] + xp * xp)) / (2.0 * (xq - xp));
            if cross <= left[left.len() - 1] {
                v.pop();
                left.pop();
            } else {
                v.push(q);
                left.push(cross);
                break;
            }
        }
        if v.is_empty() {
            v.push(q);
            left.push(f64::NEG_INFINITY);
        }
    }
    if v.is_empty() {
        out.fill(f64::INFINITY);
        return;
    }
    let mut k = 0;
    for (p, o) in out.iter_mut().enumerate() {
        let xp = p as f64 * s;
        while k + 1 < v.len() && left[k + 1] < xp {
            k += 1;
        }
        let dx = xp - v[k] as f64 * s;
        *o = dx * dx + f[v[k]];
    }
}

/// Exact squared Euclidean distance (in `spacing` units, [z, y, x]) from every voxel to the nearest `seed`
/// voxel, by three separable passes; infinity everywhere when there is no seed. O(voxels), as SciPy's
/// `distance_transform_edt` that MedPy calls.
fn squared_edt(seed: &[bool], dims: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
    let [d, h, w] = dims;
    let mut g: Vec<f64> = seed.iter().map(|&b| if b { 0.0 } else { f64::INFINITY }).collect();
    let (mut line, mut out, mut v, mut left) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (len, stride, s) in [(w, 1, spacing[2]), (h, w, spacing[1]), (d, h * w, spacing[0])] {
        if len < 2 {
            continue;
        }
        line.resize(len, 0.0);
        out.resize(len, 0.0);
        for start in (0..g.len()).filter(|i| (i / stride) % len == 0) {
            for (k, l) in line.iter_mut().enumerate() {
                *l = g[start + k * stride];
            }
            edt_line(&line, s, &mut out, &mut v, &mut left);
            for (k, &o) in out.iter().enumerate() {
                g[start + k * stride] = o;
            }
        }
    }
    g
}

/// For each surface voxel of `from`, the distance to the nearest surface voxel of `to`.
fn nearest(from: &[bool], to: &[bool], dims: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
    let dt = squared_edt(to, dims, spacing);
    from.iter().zip(&dt).filter(|(&f, _)| f).map(|(_, &d)| d.sqrt()).collect()
}

fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    // numpy's default (linear interpolation between closest ranks), as MedPy's hd95 uses.
    let pos = q / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Dice, IoU, HD95 and ASD of a mask with dims [d, h, w] (d = 1 for 2-D) and voxel `spacing` [z, y, x].
pub fn seg_scores(pred: &[u8], gt: &[u8], dims: [usize; 3], spacing: [f64; 3]) -> SegScores {
    let (dice, iou) = dice_iou(pred, gt);
    let (sp, sg) = (surface(pred, dims), surface(gt, dims));
    let (ep, eg) = (!sp.contains(&true), !sg.contains(&true));
    let (hd95, asd) = if ep && eg {
        (Some(0.0), Some(0.0))
    } else if ep || eg {
        (None, None)
    } else {
        let a = nearest(&sp, &sg, dims, spacing);
        let b = nearest(&sg, &sp, dims, spacing);
        let asd = (a.iter().sum::<f64>() + b.iter().sum::<f64>()) / (a.len() + b.len()) as f64;
        // MedPy hd95: the 95th percentile of both directed distance sets together.
        let all: Vec<f64> = a.into_iter().chain(b).collect();
        (Some(percentile(all, 95.0)), Some(asd))
    };
    SegScores { dice, iou, hd95, asd }
}

/// 6-connected (4-connected in 2-D) foreground components: a label per voxel (0 = background, components
/// numbered from 1 in scan order) and each component's size (index = label − 1).
fn components(mask: &[u8], dims: [usize; 3]) -> (Vec<u32>, Vec<usize>) {
    let [d, h, w] = dims;
    let mut label = vec![0u32; mask.len()];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if mask[start] == 0 || label[start] != 0 {
            continue;
        }
        let next = sizes.len() as u32 + 1;
        let mut size = 0usize;
        label[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (z, y, x) = (i / (h * w), (i / w) % h, i % w);
            let mut push = |j: usize| {
                if mask[j] != 0 && label[j] == 0 {
                    label[j] = next;
                    stack.push(j);
                }
            };
            if x > 0 {
                push(i - 1);
            }
            if x + 1 < w {
                push(i + 1);
            }
            if y > 0 {
                push(i - w);
            }
            if y + 1 < h {
                push(i + w);
            }
            if z > 0 {
                push(i - h * w);
            }
            if z + 1 < d {
                push(i + h * w);
            }
        }
        sizes.push(size);
    }
    (label, sizes)
}

/// Keep only the largest 6-connected (4-connected in 2-D) foreground component. Ties keep the component found
/// first in scan order.
pub fn largest_component(mask: &[u8], dims: [usize; 3]) -> Vec<u8> {
    let (label, sizes) = components(mask, dims);
    // The first of the largest (max_by_key would return the last).
    let best = sizes.iter().enumerate().fold(None, |b: Option<(usize, usize)>, (i, &n)| match b {
        Some((_, bn)) if bn >= n => b,
        _ => Some((i, n)),
    });
    let Some((best, _)) = best else { return vec![0; mask.len()] };
    label.iter().map(|&l| (l as usize == best + 1) as u8).collect()
}

/// MedCAL's 3-D post-processing: keep every 6-connected foreground component of at least a third of the largest
/// one's size (`area ≥ largest / 3`), drop the rest.
pub fn large_components(mask: &[u8], dims: [usize; 3]) -> Vec<u8> {
    let (label, sizes) = components(mask, dims);
    let largest = sizes.iter().copied().max().unwrap_or(0) as f64;
    let keep: Vec<bool> = sizes.iter().map(|&n| n as f64 >= largest / 3.0).collect();
    label.iter().map(|&l| (l != 0 && keep[l as usize - 1]) as u8).collect()
}

/// Fraction of correct predictions.
pub fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    pred.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64
}

/// Mean per-class recall over the classes present in `truth`.
pub fn balanced_accuracy(pred: &[usize], truth: &[usize], classes: usize) -> f64 {
    let mut hit = vec![0usize; classes];
    let mut n = vec![0usize; classes];
    for (&p, &t) in pred.iter().zip(truth) {
        if t < classes {
            n[t] += 1;
            hit[t] += (p == t) as usize;
        }
    }
    let present: Vec<f64> = (0..classes).filter(|&c| n[c] > 0).map(|c| hit[c] as f64 / n[c] as f64).collect();
    if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    }
}

/// ROC AUC of scores for a binary truth (Mann–Whitney U with average ranks for ties). `None` when one class
/// is missing.
pub fn auc_binary(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let np = positive.iter().filter(|&&p| p).count();
    let nn = positive.len() - np;
    if np == 0 || nn == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if positive[k] {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    Some((rank_sum - (np * (np + 1)) as f64 / 2.0) / (np * nn) as f64)
}

/// Macro one-vs-rest AUC from probabilities [n, classes] (row-major), over the classes present in `truth`
/// with both positives and negatives (sklearn's `roc_auc_score(multi_class="ovr", average="macro")`; for two
/// classes, the AUC of class 1).
pub fn macro_auc(probs: &[f32], truth: &[usize], classes: usize) -> Option<f64> {
    if classes == 2 {
        let s: Vec<f64> = (0..truth.len()).map(|i| probs[i * 2 + 1] as f64).collect();
        return auc_binary(&s, &truth.iter().map(|&t| t == 1).collect::<Vec<_>>());
    }
    let aucs: Vec<f64> = (0..classes)
        .filter_map(|c| {
            let s: Vec<f64> = (0..truth.len()).map(|i| probs[i * classes + c] as f64).collect();
            auc_binary(&s, &truth.iter().map(|&t| t == c).collect::<Vec<_>>())
        })
        .collect();
    (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_iou_of_known_overlaps() {
        let a = [1, 1, 0, 0];
        let b = [1, 0, 1, 0];
        assert_eq!(dice_iou(&a, &b), (0.5, 1.0 / 3.0));
        assert_eq!(dice_iou(&[0, 0], &[0, 0]), (1.0, 1.0));
        assert_eq!(dice_iou(&[1, 0], &[0, 0]), (0.0, 0.0));
    }

    #[test]
    fn surface_distances_of_shifted_squares() {
        // Two 4×4 squares in a 10×10 image, the second shifted right by 2 pixels (spacing 0.5 mm in x).
        let mut a = vec![0u8; 100];
        let mut b = vec![0u8; 100];
        for y in 3..7 {
            for x in 2..6 {
                a[y * 10 + x] = 1;
                b[y * 10 + x + 2] = 1;
            }
        }
        let s = seg_scores(&a, &b, [1, 10, 10], [1.0, 1.0, 0.5]);
        assert!((s.dice - 0.5).abs() < 1e-12);
        // Every surface pixel is at most 2 px (1 mm) from the other surface; some are at 0.
        let hd = s.hd95.unwrap();
        assert!(hd > 0.0 && hd <= 1.0 + 1e-12, "{hd}");
        let asd = s.asd.unwrap();
        assert!(asd > 0.0 && asd < hd, "{asd}");
        let same = seg_scores(&a, &a, [1, 10, 10], [1.0, 1.0, 1.0]);
        assert_eq!((same.dice, same.hd95, same.asd), (1.0, Some(0.0), Some(0.0)));
        assert_eq!(seg_scores(&a, &[0; 100], [1, 10, 10], [1.0; 3]).hd95, None);
    }

    /// The distance transform against the brute-force nearest surface voxel, in 2-D and anisotropic 3-D.
    #[test]
    fn distance_transform_matches_brute_force() {
        let mut state = 12345u64;
        let mut rnd = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        for (dims, spacing) in [([1, 23, 17], [1.0, 0.7, 1.3]), ([9, 11, 13], [2.5, 0.9, 0.6]), ([5, 1, 8], [1.0; 3])] {
            let n = dims[0] * dims[1] * dims[2];
            for density in [2, 7, 50] {
                let seed: Vec<bool> = (0..n).map(|_| rnd() % density == 0).collect();
                let dt = squared_edt(&seed, dims, spacing);
                let pts: Vec<usize> = (0..n).filter(|&i| seed[i]).collect();
                for i in 0..n {
                    let c = |i: usize| [i / (dims[1] * dims[2]), (i / dims[2]) % dims[1], i % dims[2]];
                    let a = c(i);
                    let want = pts
                        .iter()
                        .map(|&j| {
                            let b = c(j);
                            (0..3).map(|k| ((a[k] as f64 - b[k] as f64) * spacing[k]).powi(2)).sum::<f64>()
                        })
                        .fold(f64::INFINITY, f64::min);
                    assert!(
                        (dt[i] == want) || (dt[i] - want).abs() <= 1e-9 * want.max(1.0),
                        "{dims:?} voxel {i}: {} vs {want}",
                        dt[i]
                    );
                }
            }
        }
    }

    #[test]
    fn largest_component_keeps_the_biggest_blob() {
        // 2-D: a 3-pixel blob and a 2-pixel blob; 3-D: two blobs joined only through z.
        let m = [1, 1, 0, 1, 0, 1, 0, 0, 0];
        assert_eq!(largest_component(&m, [1, 3, 3]), vec![1, 1, 0, 1, 0, 0, 0, 0, 0]);
        let v = [1, 0, 0, 0, /* z1 */ 1, 0, 0, 1];
        assert_eq!(largest_component(&v, [2, 2, 2]), vec![1, 0, 0, 0, 1, 0, 0, 0]);
        // Equal sizes: the first in scan order.
        assert_eq!(largest_component(&[1, 0, 1], [1, 1, 3]), vec![1, 0, 0]);
        assert_eq!(largest_component(&[0, 0], [1, 1, 2]), vec![0, 0]);
        // MedCAL's filter keeps components of at least a third of the largest: sizes 6, 2 and 1 in a row.
        let row = [1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1];
        assert_eq!(large_components(&row, [1, 1, 11]), vec![1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0]);
    }

    #[test]
    fn classification_metrics() {
        assert_eq!(accuracy(&[0, 1, 1, 2], &[0, 1, 2, 2]), 0.75);
        // Class 0: 1/1, class 1: 1/1, class 2: 1/2.
        assert!((balanced_accuracy(&[0, 1, 1, 2], &[0, 1, 2, 2], 3) - (2.5 / 3.0)).abs() < 1e-12);
        // Perfect ranking, reversed ranking, all tied.
        assert_eq!(auc_binary(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), Some(1.0));
        assert_eq!(auc_binary(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), Some(0.0));
        assert_eq!(auc_binary(&[0.5; 4], &[false, true, false, true]), Some(0.5));
        assert_eq!(auc_binary(&[0.5, 0.6], &[true, true]), None);
        // 3 classes, each perfectly separated by its own probability column.
        let probs = [0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8];
        assert_eq!(macro_auc(&probs, &[0, 1, 2], 3), Some(1.0));
    }
}
