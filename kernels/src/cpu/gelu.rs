//! CPU twin of `shaders/gelu.wgsl`: exact GELU 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2), with the kernel's own
//! erfc (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7 everywhere) evaluated in f32, in parallel.
//! (It was libm's f64 erf: 2× slower, and no closer to PyTorch than the fit's 1.2e-7.)

use super::par;

pub fn gelu(x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    gelu_in_place(&mut y);
    y
}

/// GELU of every value of `y`, in place.
pub fn gelu_in_place(y: &mut [f32]) {
    par::for_chunks(y, 1 << 15, |_, c| {
        super::math::map_in_place(c, gelu_one);
    });
}

#[inline(always)]
pub fn gelu_one(v: f32) -> f32 {
    0.5 * v * erfc_f32(-v * std::f32::consts::FRAC_1_SQRT_2)
}

/// erfc(z) for any z: the fit is for z ≥ 0, and erfc(−z) = 2 − erfc(z) (as `erfc_f32` in the WGSL).
#[inline(always)]
pub fn erfc_f32(z: f32) -> f32 {
    let az = z.abs();
    let t = 1.0 / (1.0 + 0.5 * az);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_9 + t * (1.488_515_9 + t * (-0.822_152_2 + t * 0.170_872_77))))))));
    let r = t * super::math::exp_f32(-az * az + poly);
    if z >= 0.0 {
        r
    } else {
        2.0 - r
    }
}
