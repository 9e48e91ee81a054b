//! CPU twin of `shaders/pairwise_sqdist.wgsl`: D[i,j] = max(‖a_i‖² + ‖b_j‖² − 2·a_i·b_j, 0), in f64.

pub fn pairwise_sqdist(a: &[f32], b: &[f32], n: usize, m: usize, d: usize) -> Vec<f32> {
    let norms = |x: &[f32], rows: usize| -> Vec<f64> {
        (0..rows).map(|i| x[i * d..(i + 1) * d].iter().map(|&v| v as f64 * v as f64).sum()).collect()
    };
    let na = norms(a, n);
    let nb = norms(b, m);
    let mut out = vec![0f32; n * m];
    for i in 0..n {
        let ai = &a[i * d..(i + 1) * d];
        for j in 0..m {
            let bj = &b[j * d..(j + 1) * d];
            let dot: f64 = ai.iter().zip(bj).map(|(&x, &y)| x as f64 * y as f64).sum();
            out[i * m + j] = (na[i] + nb[j] - 2.0 * dot).max(0.0) as f32;
        }
    }
    out
}
