//! CPU twin of `shaders/softmax_xent.wgsl`: per-row softmax cross-entropy with label smoothing and its
//! gradient, in f64. Returns (loss [rows], dlogits [rows, classes]).

pub fn softmax_xent(
    logits: &[f32],
    labels: &[u32],
    rows: usize,
    classes: usize,
    smoothing: f32,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut loss = vec![0f32; rows];
    let mut grad = vec![0f32; rows * classes];
    for r in 0..rows {
        let y = labels[r] as usize;
        if y >= classes {
            continue;
        }
        let z = &logits[r * classes..(r + 1) * classes];
        let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let lse = m + z.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        let off = smoothing as f64 / classes as f64;
        let mut l = 0f64;
        for k in 0..classes {
            let t = if k == y { 1.0 - smoothing as f64 + off } else { off };
            let logp = z[k] as f64 - lse;
            l -= t * logp;
            grad[r * classes + k] = (scale as f64 * (logp.exp() - t)) as f32;
        }
        loss[r] = l as f32;
    }
    (loss, grad)
}
