// topk_rows: for each row r of X [R,C] keep the k smallest (value, column + col_offset) pairs in ascending order,
// ties to the lower column. Streaming over column tiles: with merge == 1 the lists already in out_val/out_idx
// (from tiles of lower columns) are extended. Empty slots hold (0x1.fffffep+127f, 0xFFFFFFFF). k ≤ 64.
// One thread per row, insertion into a private sorted list.

// Kept in sync with kernels/src/gpu/params.rs `TopkRowsParams`.
struct Params {
    rows: u32,
    cols: u32,
    k: u32,
    col_offset: u32,
    merge: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;              // [R, C]
@group(0) @binding(2) var<storage, read_write> out_val: array<f32>;  // [R, k]
@group(0) @binding(3) var<storage, read_write> out_idx: array<u32>;  // [R, k]

const WG: u32 = 64u;
const KMAX: u32 = 64u;
const EMPTY_VAL: f32 = 0x1.fffffep+127f;
const NONE: u32 = 0xFFFFFFFFu;

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
    let k = min(params.k, KMAX);
    var vals: array<f32, 64>;
    var idxs: array<u32, 64>;
    for (var j = 0u; j < k; j++) {
        if (params.merge == 1u) {
            vals[j] = out_val[r * params.k + j];
            idxs[j] = out_idx[r * params.k + j];
        } else {
            vals[j] = EMPTY_VAL;
            idxs[j] = NONE;
        }
    }
    let base = r * params.cols;
    for (var c = 0u; c < params.cols; c++) {
        let v = x[base + c];
        // Strict: an equal value arriving later has a higher column and stays behind (NaN never enters).
        if (v < vals[k - 1u]) {
            var j = k - 1u;
            while (j > 0u && vals[j - 1u] > v) {
                vals[j] = vals[j - 1u];
                idxs[j] = idxs[j - 1u];
                j -= 1u;
            }
            vals[j] = v;
            idxs[j] = c + params.col_offset;
        }
    }
    for (var j = 0u; j < k; j++) {
        out_val[r * params.k + j] = vals[j];
        out_idx[r * params.k + j] = idxs[j];
    }
}
