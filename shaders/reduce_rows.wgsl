// reduce_rows: out[r] = Σ_c X[r,c] (op 0), mean (op 1) or max (op 2) over each row. One workgroup per row,
// strided per-thread partials, then a tree reduction in workgroup memory.

// Kept in sync with kernels/src/gpu/params.rs `ReduceRowsParams`.
struct Params {
    rows: u32,
    cols: u32,
    op: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // [R, C]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;    // [R]

const WG: u32 = 256u;
const OP_MAX: u32 = 2u;
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
    let is_max = params.op == OP_MAX;
    var acc = 0.0;
    if (is_max) {
        acc = -0x1.fffffep+127f;
    }
    for (var c = li; c < params.cols; c += WG) {
        let v = x[base + c];
        if (is_max) {
            acc = max(acc, v);
        } else {
            acc += v;
        }
    }
    red[li] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            if (is_max) {
                red[li] = max(red[li], red[li + s]);
            } else {
                red[li] += red[li + s];
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        var v = red[0];
        if (params.op == 1u) {
            v = v / f32(params.cols);
        }
        out[r] = v;
    }
}
