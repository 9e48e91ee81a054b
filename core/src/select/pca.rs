//! A 2-D map of the pool for people to look at: the first two principal components of the features, by power
//! iteration on the centred data (never forming the D×D covariance, so flattened grids work too).
//! Deterministic: fixed start vector, signs fixed so the largest loading is positive.

use super::Matrix;

/// (x, y) per row: projections on the first two principal axes. Fewer than two rows or zero variance → zeros.
pub fn pca2(x: Matrix) -> Vec<[f32; 2]> {
    let (n, d) = (x.n, x.d);
    if n < 2 || d == 0 {
        return vec![[0.0, 0.0]; n];
    }
    let mut mean = vec![0f64; d];
    for i in 0..n {
        for (m, v) in mean.iter_mut().zip(x.row(i)) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred = |i: usize, j: usize| x.row(i)[j] as f64 - mean[j];
    // y = Xcᵀ (Xc v)
    let apply = |v: &[f64]| -> Vec<f64> {
        let mut out = vec![0f64; d];
        for i in 0..n {
            let s: f64 = (0..d).map(|j| centred(i, j) * v[j]).sum();
            for (j, o) in out.iter_mut().enumerate() {
                *o += s * centred(i, j);
            }
        }
        out
    };
    let normalize = |v: &mut Vec<f64>| -> f64 {
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|a| *a /= norm);
        }
        norm
    };
    let mut axes: Vec<Vec<f64>> = Vec::new();
    for a in 0..2 {
        let mut v: Vec<f64> = (0..d).map(|j| 1.0 + ((j * 7 + a * 3) % 11) as f64 * 0.1).collect();
        normalize(&mut v);
        for _ in 0..200 {
            let mut w = apply(&v);
            for u in &axes {
                let dot: f64 = w.iter().zip(u).map(|(p, q)| p * q).sum();
                w.iter_mut().zip(u).for_each(|(p, q)| *p -= dot * q);
            }
            if normalize(&mut w) == 0.0 {
                v = vec![0.0; d];
                break;
            }
            let change: f64 = w.iter().zip(&v).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            v = w;
            if change < 1e-10 {
                break;
            }
        }
        if let Some(big) = v.iter().copied().max_by(|p, q| p.abs().total_cmp(&q.abs())) {
            if big < 0.0 {
                v.iter_mut().for_each(|p| *p = -*p);
            }
        }
        axes.push(v);
    }
    (0..n)
        .map(|i| {
            let proj = |u: &[f64]| (0..d).map(|j| centred(i, j) * u[j]).sum::<f64>() as f32;
            [proj(&axes[0]), proj(&axes[1])]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca2_recovers_the_dominant_axes() {
        // Points spread along (1,1,0)/√2 and, uncorrelated with that, ±0.5 along (0,0,1).
        let s_of = |i: usize| if i.min(49 - i).is_multiple_of(2) { 0.5f32 } else { -0.5 };
        let mut data = Vec::new();
        for i in 0..50 {
            let t = (i as f32 - 24.5) * 0.4;
            data.extend_from_slice(&[t, t, s_of(i)]);
        }
        let mean_s = (0..50).map(s_of).sum::<f32>() / 50.0;
        let x = Matrix::new(&data, 50, 3).unwrap();
        let p = pca2(x);
        for (i, xy) in p.iter().enumerate() {
            let t = (i as f32 - 24.5) * 0.4;
            assert!((xy[0].abs() - (t * 2f32.sqrt()).abs()).abs() < 1e-4, "row {i}: {xy:?}");
            assert!((xy[1].abs() - (s_of(i) - mean_s).abs()).abs() < 1e-4, "row {i}: {xy:?}");
        }
    }
}
