//! CPU twin of `shaders/gelu_backward.wgsl`: dx = dy · GELU'(x), GELU'(x) = Φ(x) + x·φ(x) (exact erf form), in f64.

pub fn gelu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    x.iter()
        .zip(dy)
        .map(|(&v, &g)| {
            let v = v as f64;
            let cdf = 0.5 * (1.0 + libm::erf(v * std::f64::consts::FRAC_1_SQRT_2));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (g as f64 * (cdf + v * pdf)) as f32
        })
        .collect()
}
