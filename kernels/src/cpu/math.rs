//! Elementwise math the CPU backend vectorises: a branch-free f32 `exp` (Cephes' expf: range reduction by
//! ln 2 in two parts and a degree-6 polynomial, within 2 ulp of the true value over the clamped range),
//! [`map_in_place`], which runs an elementwise function in AVX-512 or AVX2 lanes where the CPU has them (detected
//! at run time) and in the baseline SIMD of the target (SSE2, NEON, simd128) otherwise, the softmax numerators,
//! and the [`multiversion!`] macro other kernels use for the same dispatch. No FMA contraction is used and
//! reductions keep a fixed number of lanes, so every path gives the same bits.

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
        + 0.5; // Cephes: 5.0000001e-1, which is 0.5 in f32
    let p = p * (r * r) + r + 1.0;
    let scale = f32::from_bits((ni.wrapping_add(127) << 23) as u32);
    p * scale
}

/// `$vis fn $name(args) -> R` that runs `$body(args)` compiled for AVX-512F, for AVX2, or for the target's baseline
/// (SSE2, NEON, simd128), whichever this CPU has (detected at run time). The body must be `#[inline(always)]`
/// and must not depend on the lane width for its result: every path then gives the same bits.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? => $body:ident) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn v512($($a: $t),*) $(-> $r)? { $body($($a),*) }
                #[target_feature(enable = "avx2")]
                unsafe fn v256($($a: $t),*) $(-> $r)? { $body($($a),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: AVX-512F is present (checked just above).
                    return unsafe { v512($($a),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: AVX2 is present (checked just above).
                    return unsafe { v256($($a),*) };
                }
            }
            $body($($a),*)
        }
    };
}
pub(crate) use multiversion;

#[inline(always)]
fn map_body<F: Fn(f32) -> f32>(y: &mut [f32], f: &F) {
    for v in y {
        *v = f(*v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn map_avx512<F: Fn(f32) -> f32>(y: &mut [f32], f: &F) {
    map_body(y, f)
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
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is present (checked just above).
            return unsafe { map_avx512(y, &f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked just above).
            return unsafe { map_avx2(y, &f) };
        }
    }
    map_body(y, &f)
}

/// Lanes of the partial sums and maxima below: fixed, so the result does not depend on the SIMD width.
const LANES: usize = 16;

#[inline(always)]
fn softmax_numerators_body(row: &mut [f32]) -> f32 {
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            mx[l] = if c[l] > mx[l] { c[l] } else { mx[l] };
        }
    }
    let mut m = chunks.remainder().iter().fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
    for v in mx {
        m = if v > m { v } else { m };
    }
    let mut acc = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            c[l] = exp_f32(c[l] - m);
            acc[l] += c[l];
        }
    }
    let mut tail = 0f32;
    for v in chunks.into_remainder() {
        *v = exp_f32(*v - m);
        tail += *v;
    }
    acc.iter().sum::<f32>() + tail
}

multiversion! {
    /// The numerators of a softmax, in place: `row[j] = e^(row[j] − max)`; returns their sum (the denominator).
    pub fn softmax_numerators(row: &mut [f32]) -> f32 => softmax_numerators_body
}

/// The SIMD level the CPU backend's elementwise code found on this CPU (the GEMM picks its own, at least this).
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
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

/// Whether every value is finite (no NaN, ±∞): the exponent bits of 4096 values at a time OR-ed without an early
/// exit inside a block, so the scan vectorises (a whole activation per layer in a checked pass).
pub fn all_finite(v: &[f32]) -> bool {
    v.chunks(4096).all(|c| c.iter().fold(0u32, |acc, x| acc | ((x.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32) == 0)
}

/// Ask the cache for the memory of `v` ahead of its use (one hint per 64-byte line; no effect on results). Scans
/// that read rows in an order the hardware prefetcher cannot guess (a cluster's members, scattered over the pool)
/// call it a few rows ahead.
#[inline]
pub fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let (p, bytes) = (v.as_ptr() as *const i8, std::mem::size_of_val(v));
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch hint never faults and reads nothing the program sees; the address is inside `v`.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch(p.add(off), std::arch::x86_64::_MM_HINT_T0)
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_finite_finds_one_non_finite_value_anywhere() {
        let mut v: Vec<f32> = (0..10_000).map(|i| (i as f32 - 5000.0) * 1e-3).collect();
        v[7] = f32::MAX;
        v[8] = -f32::MAX;
        v[9] = f32::MIN_POSITIVE / 4.0; // subnormal
        assert!(all_finite(&v) && all_finite(&[]));
        for at in [0, 4095, 4096, 9999] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
                let mut w = v.clone();
                w[at] = bad;
                assert!(!all_finite(&w), "{bad} at {at}");
            }
        }
    }

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
    fn softmax_numerators_match_a_plain_softmax() {
        for n in [1usize, 15, 16, 17, 49, 196, 1000] {
            let mut row: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.21).collect();
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let want: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let z = softmax_numerators(&mut row);
            let zw: f64 = want.iter().sum();
            assert!(((z as f64) - zw).abs() <= 1e-5 * zw, "n {n}: sum {z} vs {zw}");
            for (g, w) in row.iter().zip(&want) {
                assert!((*g as f64 - w).abs() <= 1e-6 * w.max(1e-30) + 1e-38, "n {n}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn map_in_place_matches_the_scalar_loop() {
        let mut y: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) * 0.05).collect();
        let want: Vec<f32> = y.iter().map(|&v| exp_f32(v) * 0.5 + v).collect();
        map_in_place(&mut y, |v| exp_f32(v) * 0.5 + v);
        assert_eq!(y, want);
    }
}
