//! CPU twin of `shaders/segment_mean.wgsl`: centers[c] = mean of the rows `order[offsets[c]..offsets[c+1]]`
//! (f64 accumulation); an empty segment leaves its centre as it was.

use super::par;

pub fn segment_mean(x: &[f32], order: &[u32], offsets: &[u32], centers: &mut [f32], k: usize, d: usize) {
    if d == 0 {
        return;
    }
    // Centres on the CPU backend's threads; each sums its members in order, feature by feature.
    let per = par::rows_per_task(k, d * (order.len() / k.max(1)).max(1), 1 << 15);
    par::for_chunks(&mut centers[..k * d], per * d, |task, out| {
        let mut sum = vec![0f64; d];
        for (cc, centre) in out.chunks_exact_mut(d).enumerate() {
            let c = task * per + cc;
            let (a, b) = (offsets[c] as usize, offsets[c + 1] as usize);
            if b <= a {
                continue;
            }
            sum.iter_mut().for_each(|s| *s = 0.0);
            for &m in &order[a..b] {
                for (s, &v) in sum.iter_mut().zip(&x[m as usize * d..(m as usize + 1) * d]) {
                    *s += v as f64;
                }
            }
            for (o, s) in centre.iter_mut().zip(&sum) {
                *o = (s / (b - a) as f64) as f32;
            }
        }
    });
}

/// The host half of the two-pass update: rows grouped by label (stable, so by row within a cluster) and the
/// CSR offsets of each cluster's segment.
pub fn segments(labels: &[u32], k: usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; k + 1];
    for &l in labels {
        offsets[l as usize + 1] += 1;
    }
    for c in 0..k {
        offsets[c + 1] += offsets[c];
    }
    let mut at: Vec<u32> = offsets[..k].to_vec();
    let mut order = vec![0u32; labels.len()];
    for (i, &l) in labels.iter().enumerate() {
        order[at[l as usize] as usize] = i as u32;
        at[l as usize] += 1;
    }
    (order, offsets)
}
