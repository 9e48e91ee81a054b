//! CPU twin of `shaders/softmax_mse.wgsl`: per-row Σ_c (softmax(z)_c − softmax(zt)_c)² and its gradient w.r.t.
//! the student logits z (times `scale`), in f64. Returns (loss [rows], dz [rows, classes]).

pub fn softmax_mse(z: &[f32], zt: &[f32], rows: usize, classes: usize, scale: f32) -> (Vec<f32>, Vec<f32>) {
    let softmax = |v: &[f32]| -> Vec<f64> {
        let m = v.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let e: Vec<f64> = v.iter().map(|&x| (x as f64 - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect()
    };
    let mut loss = vec![0f32; rows];
    let mut dz = vec![0f32; rows * classes];
    for r in 0..rows {
        let p = softmax(&z[r * classes..(r + 1) * classes]);
        let q = softmax(&zt[r * classes..(r + 1) * classes]);
        let d: Vec<f64> = p.iter().zip(&q).map(|(a, b)| a - b).collect();
        loss[r] = d.iter().map(|x| x * x).sum::<f64>() as f32;
        let dot: f64 = d.iter().zip(&p).map(|(a, b)| a * b).sum();
        for k in 0..classes {
            dz[r * classes + k] = (scale as f64 * 2.0 * p[k] * (d[k] - dot)) as f32;
        }
    }
    (loss, dz)
}
