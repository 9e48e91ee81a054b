// softmax_rows: Y[r,c] = exp(X[r,c] − max_c X[r,·]) / Σ_c exp(X[r,c] − max_c X[r,·]). One workgroup per row.

// Kept in sync with kernels/src/gpu/params.rs `SoftmaxRowsParams`.
struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [R, C]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // [R, C]

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

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
    let base = r * params.cols;

    var m = -0x1.fffffep+127f;
    for (var c = li; c < params.cols; c += WG) {
        m = max(m, x[base + c]);
    }
    red[li] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] = max(red[li], red[li + s]);
        }
        workgroupBarrier();
    }
    let row_max = red[0];
    workgroupBarrier();

    var sum = 0.0;
    for (var c = li; c < params.cols; c += WG) {
        sum += exp(x[base + c] - row_max);
    }
    red[li] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];
    for (var c = li; c < params.cols; c += WG) {
        y[base + c] = exp(x[base + c] - row_max) * inv;
    }
}
