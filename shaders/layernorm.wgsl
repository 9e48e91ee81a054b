// layernorm: Y[r,:] = (X[r,:] − μ) / sqrt(σ² + eps) · w + b, μ and biased σ² over the last dim (two passes).
// One thread per row: no workgroup barriers, which CPU implementations of WebGPU (lavapipe, SwiftShader) pay
// dearly for, and rows of a few hundred channels are short enough for one thread.

// Kept in sync with kernels/src/gpu/params.rs `LayernormParams`.
struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [R, D]
@group(0) @binding(2) var<storage, read> w: array<f32>;          // [D]
@group(0) @binding(3) var<storage, read> b: array<f32>;          // [D]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, D]

const WG: u32 = 64u;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * WG + li;
    if (r >= params.rows) {
        return;
    }
    let base = r * params.d;
    var s = 0.0;
    for (var c = 0u; c < params.d; c++) {
        s += x[base + c];
    }
    let mean = s / f32(params.d);
    var sq = 0.0;
    for (var c = 0u; c < params.d; c++) {
        let t = x[base + c] - mean;
        sq += t * t;
    }
    let rstd = 1.0 / sqrt(sq / f32(params.d) + params.eps);
    for (var c = 0u; c < params.d; c++) {
        y[base + c] = (x[base + c] - mean) * rstd * w[c] + b[c];
    }
}
