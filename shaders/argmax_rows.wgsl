// argmax_rows: for each row r of X [R,C]: out_val[r] = max_c X[r,c], out_idx[r] = the lowest c attaining it.
// NaN never wins; a row with no comparable value gets out_idx = 0xFFFFFFFF. One workgroup per row.

// Kept in sync with kernels/src/gpu/params.rs `ArgmaxRowsParams`.
struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;              // [R, C]
@group(0) @binding(2) var<storage, read_write> out_val: array<f32>;  // [R]
@group(0) @binding(3) var<storage, read_write> out_idx: array<u32>;  // [R]

const WG: u32 = 256u;
const NONE: u32 = 0xFFFFFFFFu;

var<workgroup> s_val: array<f32, 256>;
var<workgroup> s_idx: array<u32, 256>;

// (va, ia) beats (vb, ib): larger value, then lower index; NONE never beats anything.
fn better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
    if (ia == NONE) {
        return false;
    }
    if (ib == NONE) {
        return true;
    }
    return va > vb || (va == vb && ia < ib);
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
    var bv = 0.0;
    var bi = NONE;
    let base = r * params.cols;
    for (var c = li; c < params.cols; c += WG) {
        let v = x[base + c];
        if (v == v && better(v, c, bv, bi)) {   // v == v is false for NaN
            bv = v;
            bi = c;
        }
    }
    s_val[li] = bv;
    s_idx[li] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s && better(s_val[li + s], s_idx[li + s], s_val[li], s_idx[li])) {
            s_val[li] = s_val[li + s];
            s_idx[li] = s_idx[li + s];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        out_val[r] = s_val[0];
        out_idx[r] = s_idx[0];
    }
}
