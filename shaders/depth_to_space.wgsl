// depth_to_space: the rearrangement that finishes a stride-r, r×r transposed convolution computed as a
// matmul. X [H·W, r·r·C] holds, for input pixel (i, j), the outputs of the r×r block it spreads to, column
// (di·r + dj)·C + o; Y [(r·H)·(r·W), C] gets Y[(r·i + di)·r·W + r·j + dj, o] = X[i·W + j, (di·r + dj)·C + o]
// + bias[o]. Channels-last throughout. One thread per output value.

// Kept in sync with kernels/src/gpu/params.rs `DepthToSpaceParams`.
struct Params {
    h: u32,
    w: u32,
    c: u32,
    r: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [H·W, r·r·C]
@group(0) @binding(2) var<storage, read> bias: array<f32>;       // [C]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;    // [r·H·r·W, C]

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let idx = (wid.y * nwg.x + wid.x) * WG + li;
    let r = params.r;
    let c = params.c;
    let wo = params.w * r;
    if (idx >= params.h * r * wo * c) {
        return;
    }
    let o = idx % c;
    let p = idx / c;
    let yy = p / wo;
    let xx = p % wo;
    let i = yy / r;
    let di = yy % r;
    let j = xx / r;
    let dj = xx % r;
    y[idx] = x[(i * params.w + j) * (r * r * c) + (di * r + dj) * c + o] + bias[o];
}
