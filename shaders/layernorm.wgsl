// layernorm: Y[r,:] = (X[r,:] − μ) / sqrt(σ² + eps) · w + b, μ and biased σ² over the last dim (two passes).
// One workgroup per row.

// Kept in sync with core/src/gpu/params.rs `LayernormParams`.
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

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

fn reduce_sum(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = wid.y * nwg.x + wid.x;   // uniform across the workgroup
    if (r >= params.rows) {
        return;
    }
    let base = r * params.d;
    let inv_d = 1.0 / f32(params.d);

    var s = 0.0;
    for (var c = li; c < params.d; c += WG) {
        s += x[base + c];
    }
    let mean = reduce_sum(li, s) * inv_d;

    var sq = 0.0;
    for (var c = li; c < params.d; c += WG) {
        let t = x[base + c] - mean;
        sq += t * t;
    }
    let var_ = reduce_sum(li, sq) * inv_d;
    let rstd = 1.0 / sqrt(var_ + params.eps);
    for (var c = li; c < params.d; c += WG) {
        y[base + c] = (x[base + c] - mean) * rstd * w[c] + b[c];
    }
}
