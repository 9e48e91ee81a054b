//! CPU twin of `shaders/entropy_map.wgsl`: per-pixel normalised entropy −Σ q·ln(q + 1e-6)/ln(max(C,2)) and
//! max probability of logits [B, C, P] (C == 1: sigmoid over two classes), in f64.

pub fn entropy_map(logits: &[f32], images: usize, classes: usize, pixels: usize) -> (Vec<f32>, Vec<f32>) {
    const EPS: f64 = 1e-6;
    let mut ent = vec![0f32; images * pixels];
    let mut maxp = vec![0f32; images * pixels];
    let mut q = vec![0f64; classes.max(2)];
    for b in 0..images {
        for p in 0..pixels {
            let l = |c: usize| logits[(b * classes + c) * pixels + p] as f64;
            let qs: &[f64] = if classes == 1 {
                let q1 = 1.0 / (1.0 + (-l(0)).exp());
                q[0] = 1.0 - q1;
                q[1] = q1;
                &q[..2]
            } else {
                let m = (0..classes).map(l).fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = (0..classes).map(|c| (l(c) - m).exp()).sum();
                for (c, qc) in q.iter_mut().enumerate().take(classes) {
                    *qc = (l(c) - m).exp() / z;
                }
                &q[..classes]
            };
            let h: f64 = -qs.iter().map(|&v| v * (v + EPS).ln()).sum::<f64>();
            ent[b * pixels + p] = (h / (qs.len() as f64).ln()) as f32;
            maxp[b * pixels + p] = qs.iter().cloned().fold(0.0, f64::max) as f32;
        }
    }
    (ent, maxp)
}
