// relu: y = max(x, 0), elementwise (the MLP activation of SAM's mask decoder).

// Kept in sync with kernels/src/gpu/params.rs `ReluParams`.
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
    y[i] = max(x[i], 0.0);
}
