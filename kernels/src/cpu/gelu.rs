//! CPU twin of `shaders/gelu.wgsl`: exact GELU 0.5·x·(1 + erf(x/√2)), with a rational f32 erf (absolute error
//! < 4e-7, the kernel's erfc fit is 1.2e-7 relative) evaluated in SIMD lanes, in parallel. It was libm's f64 erf:
//! 6× slower per value, and LiteMedSAM alone takes ~150 M GELUs per image.

use super::par;

pub fn gelu(x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    gelu_in_place(&mut y);
    y
}

/// GELU of every value of `y`, in place.
pub fn gelu_in_place(y: &mut [f32]) {
    par::for_chunks(y, 1 << 15, |_, c| {
        gelu_slice(c);
    });
}

/// Below this the GELU is taken as 0.5·x·erfc(−x/√2) (the kernel's form): there 1 + erf(x/√2) cancels, and the
/// rational erf's 4e-7 absolute error would become a relative one of the small result.
const TAIL: f32 = -4.5;

#[inline(always)]
pub fn gelu_one(v: f32) -> f32 {
    if v < TAIL {
        gelu_tail(v)
    } else {
        gelu_rational(v)
    }
}

#[inline(always)]
fn gelu_rational(v: f32) -> f32 {
    0.5 * v * (1.0 + erf_f32(v * std::f32::consts::FRAC_1_SQRT_2))
}

/// The tail's results below f32's smallest normal (from x ≈ −13 on) are flushed to zero, as GPUs flush them:
/// subnormal activations would slow every later kernel that reads them by an order of magnitude on x86.
#[inline(always)]
fn gelu_tail(v: f32) -> f32 {
    let r = 0.5 * v * erfc_f32(-v * std::f32::consts::FRAC_1_SQRT_2);
    if r.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        r
    }
}

#[inline(always)]
fn gelu_slice_body(y: &mut [f32]) {
    // Blocks of 256 values: the rational form for all of them (branch-free in SIMD lanes), while the few values
    // in the tail are set aside; then the tail form for those alone, packed together so it too runs in lanes,
    // and written back. Each value ends as `gelu_one` of itself (every form is lane-independent). Computing
    // both forms for every 16 values that held one tail value made the GELU 20 % of a LiteMedSAM pass.
    let mut idx = [0u16; 256];
    let mut vals = [0f32; 256];
    for block in y.chunks_mut(256) {
        let mut nt = 0;
        for (ci, c) in block.chunks_mut(16).enumerate() {
            let mut tail = false;
            for &v in c.iter() {
                tail |= v < TAIL;
            }
            if tail {
                for (l, &v) in c.iter().enumerate() {
                    if v < TAIL {
                        idx[nt] = (ci * 16 + l) as u16;
                        vals[nt] = v;
                        nt += 1;
                    }
                }
            }
            for v in c.iter_mut() {
                *v = gelu_rational(*v);
            }
        }
        if nt > 0 {
            for v in vals[..nt].iter_mut() {
                *v = gelu_tail(*v);
            }
            for (&i, &v) in idx[..nt].iter().zip(&vals[..nt]) {
                block[i as usize] = v;
            }
        }
    }
}

super::math::multiversion! {
    fn gelu_slice(y: &mut [f32]) => gelu_slice_body
}

/// erfc(z) for any z: the fit is for z ≥ 0, and erfc(−z) = 2 − erfc(z) (`erfc_f32` of `shaders/gelu.wgsl`:
/// Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
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
                            + t * (-1.135_204 + t * (1.488_515_9 + t * (-0.822_152_2 + t * 0.170_872_76))))))));
    let r = t * super::math::exp_f32(-az * az + poly);
    if z >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// erf(x) in f32: the odd/even rational fit Eigen and XLA use (x clamped to [−4, 4], where erf is ±1 in f32),
/// absolute error below 4e-7 everywhere; no exp and one division, so it runs in SIMD lanes.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_3e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

#[cfg(test)]
mod tests {
    #[test]
    fn erf_f32_is_within_4e7_of_libm() {
        let mut worst = 0f64;
        let mut x = -6.0f64;
        while x < 6.0 {
            worst = worst.max((super::erf_f32(x as f32) as f64 - libm::erf(x as f32 as f64)).abs());
            x += 0.000_73;
        }
        assert!(worst < 4e-7, "erf_f32 worst absolute error {worst}");
    }

    #[test]
    fn gelu_slice_equals_gelu_one_of_each_value() {
        let x: Vec<f32> = (0..1000).map(|i| ((i * 7919 % 1000) as f32 - 700.0) * 0.013).collect();
        let mut y = x.clone();
        super::gelu_slice(&mut y);
        for (a, b) in x.iter().zip(&y) {
            assert_eq!(super::gelu_one(*a).to_bits(), b.to_bits(), "gelu({a})");
        }
    }

    #[test]
    fn gelu_never_returns_a_subnormal() {
        let mut x = -200.0f32;
        while x < 10.0 {
            let y = super::gelu_one(x);
            assert!(y == 0.0 || y.is_normal(), "gelu({x}) = {y:e}");
            x += 0.0137;
        }
    }

    #[test]
    fn gelu_is_within_the_selftest_tolerance_of_f64_gelu() {
        // The GPU-vs-CPU tolerance of the gelu self-test: |err| ≤ 1e-6 + 1e-5·|want|.
        let mut x = -12.0f64;
        while x < 12.0 {
            let xf = x as f32;
            let want = 0.5 * xf as f64 * (1.0 + libm::erf(xf as f64 * std::f64::consts::FRAC_1_SQRT_2));
            let got = super::gelu_one(xf) as f64;
            assert!((got - want).abs() <= 1e-6 + 1e-5 * want.abs(), "gelu({xf}) = {got}, want {want}");
            x += 0.000_91;
        }
    }
}
