// gelu_backward: dx = dy · GELU'(x) for the exact (erf) GELU of gelu.wgsl: GELU'(x) = Φ(x) + x·φ(x), with
// Φ(x) = 0.5·erfc(−x/√2) (same erfc fit as gelu.wgsl) and φ(x) = exp(−x²/2)/√(2π). One thread per value.

// Kept in sync with kernels/src/gpu/params.rs `GeluBackwardParams`.
struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [N] the GELU's input
@group(0) @binding(2) var<storage, read> dy: array<f32>;         // [N] gradient of its output
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;   // [N]

const WG: u32 = 256u;

// erfc(z) for any z (Numerical Recipes' erfcc, relative error < 1.2e-7; as in gelu.wgsl).
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
    let cdf = 0.5 * erfc_f32(-v * 0.70710678118654752);
    let pdf = 0.39894228040143268 * exp(-0.5 * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
}
