//! CPU twin of `shaders/segment_mean.wgsl`: centers[c] = mean of the rows `order[offsets[c]..offsets[c+1]]`
//! (f64 accumulation); an empty segment leaves its centre as it was.

pub fn segment_mean(x: &[f32], order: &[u32], offsets: &[u32], centers: &mut [f32], k: usize, d: usize) {
    for c in 0..k {
        let (a, b) = (offsets[c] as usize, offsets[c + 1] as usize);
        if b <= a {
            continue;
        }
        for t in 0..d {
            let s: f64 = order[a..b].iter().map(|&m| x[m as usize * d + t] as f64).sum();
            centers[c * d + t] = (s / (b - a) as f64) as f32;
        }
    }
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
