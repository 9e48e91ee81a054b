// transpose: Y [cols, rows] = Xᵀ for X [rows, cols] (gradients of linear layers: dW = dYᵀ·X). One thread per
// element, reading rows coalesced.

// Kept in sync with kernels/src/gpu/params.rs `TransposeParams`.
struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [rows, cols]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // [cols, rows]

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i >= params.rows * params.cols) {
        return;
    }
    let r = i / params.cols;
    let c = i % params.cols;
    y[c * params.rows + r] = x[i];
}
