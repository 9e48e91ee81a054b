//! Elementwise math the CPU backend vectorises: a branch-free f32 `exp` (Cephes' expf: range reduction by
//! ln 2 in two parts and a degree-6 polynomial, within 2 ulp of the true value over the clamped range), and
//! [`map_in_place`], which runs an elementwise function in AVX2 lanes where the CPU has them (detected at run
//! time) and in the baseline SIMD of the target (SSE2, NEON, simd128) otherwise. No FMA contraction is used,
//! so every path gives the same bits.

/// e^x in f32. Inputs below −87.3 give 2⁻¹²⁶·e^(x+87.3)-ish tiny values instead of denormals (a softmax or an
/// erfc tail, where they vanish in any sum); above 88.4 it saturates at f32::MAX-ish; NaN stays NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round-to-nearest by the 1.5·2²³ trick (plain SSE2 has no round instruction).
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.336_55, 88.376_26);
    let shifted = x * LOG2E + MAGIC;
    let n = shifted - MAGIC;
    // n as an integer from the shifted value's low mantissa bits (an `as i32` cast would not vectorise).
    let ni = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let p = p * (r * r) + r + 1.0;
    let scale = f32::from_bits((ni.wrapping_add(127) << 23) as u32);
    p * scale
}

#[inline(always)]
fn map_body<F: Fn(f32) -> f32>(y: &mut [f32], f: &F) {
    for v in y {
        *v = f(*v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map_avx2<F: Fn(f32) -> f32>(y: &mut [f32], f: &F) {
    map_body(y, f)
}

/// `y[i] = f(y[i])`, in the widest SIMD lanes this CPU has.
#[inline]
pub fn map_in_place<F: Fn(f32) -> f32>(y: &mut [f32], f: F) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { map_avx2(y, &f) };
    }
    map_body(y, &f)
}

/// The SIMD level the CPU backend's elementwise code found on this CPU (the GEMM picks its own, at least this).
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512 (GEMM), AVX2 (elementwise)";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "AVX2+FMA";
        }
        if std::arch::is_x86_feature_detected!("avx") {
            return "AVX";
        }
        return "SSE2 (portable path)";
    }
    #[cfg(target_arch = "aarch64")]
    return "NEON";
    #[cfg(target_arch = "wasm32")]
    return if cfg!(target_feature = "simd128") { "wasm simd128" } else { "wasm scalar" };
    #[allow(unreachable_code)]
    "portable"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_within_2_ulp_of_f64_exp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            let ulp = (want as f32).abs() * f32::EPSILON;
            worst = worst.max((got - want).abs() / ulp as f64);
            x += 0.0137;
        }
        assert!(worst <= 2.0, "exp_f32 worst error {worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(-1000.0) < 1e-37 && exp_f32(-1000.0) >= 0.0);
    }

    #[test]
    fn map_in_place_matches_the_scalar_loop() {
        let mut y: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) * 0.05).collect();
        let want: Vec<f32> = y.iter().map(|&v| exp_f32(v) * 0.5 + v).collect();
        map_in_place(&mut y, |v| exp_f32(v) * 0.5 + v);
        assert_eq!(y, want);
    }
}
