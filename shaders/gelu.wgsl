// gelu: y = 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2), the exact (erf) form of nn.GELU(). WGSL has no erf; the
// erfc form avoids the cancellation of 1 + erf(x) for negative x, and erfc_f32 is the Chebyshev fit of Numerical
// Recipes (erfcc: relative error < 1.2e-7 everywhere).

// Kept in sync with kernels/src/gpu/params.rs `GeluParams`.
struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [N]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // [N]

const WG: u32 = 256u;

// erfc(z) for any z: the fit is for z ≥ 0, and erfc(−z) = 2 − erfc(z).
fn erfc_f32(z: f32) -> f32 {
    let az = abs(z);
    let t = 1.0 / (1.0 + 0.5 * az);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(-az * az + poly);
    return select(2.0 - r, r, z >= 0.0);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i >= params.n) {
        return;
    }
    let v = x[i];
    y[i] = 0.5 * v * erfc_f32(-v * 0.70710678118654752);
}
