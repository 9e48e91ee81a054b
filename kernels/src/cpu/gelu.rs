//! CPU twin of `shaders/gelu.wgsl`: exact GELU 0.5·x·(1 + erf(x/√2)) with libm's f64 erf.

pub fn gelu(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| gelu_one(v)).collect()
}

pub fn gelu_one(v: f32) -> f32 {
    let v = v as f64;
    (0.5 * v * (1.0 + libm::erf(v * std::f64::consts::FRAC_1_SQRT_2))) as f32
}
