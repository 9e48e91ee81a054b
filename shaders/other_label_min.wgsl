// other_label_min: ProbCover's purity scan without an n×n pass per δ. For a tile of squared distances between
// rows row_offset.. and columns col_offset.. of the pool, per row: the smallest distance to a point with another
// pseudo-label (ball i is pure iff δ² is below it) and the largest distance overall (the δ grid's upper end).
// With merge == 1 the running values of earlier column tiles are extended. Outputs are indexed by pool row.

// Kept in sync with kernels/src/gpu/params.rs `OtherLabelMinParams`.
struct Params {
    rows: u32,
    cols: u32,
    row_offset: u32,
    col_offset: u32,
    merge: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dist: array<f32>;             // [R, C] squared distances
@group(0) @binding(2) var<storage, read> labels: array<u32>;           // [N]
@group(0) @binding(3) var<storage, read_write> other_min: array<f32>;  // [N]
@group(0) @binding(4) var<storage, read_write> row_max: array<f32>;    // [N]

const WG: u32 = 64u;
const BIG: f32 = 0x1.fffffep+127f;

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
    let i = params.row_offset + r;
    var mn = BIG;
    var mx = 0.0;
    if (params.merge == 1u) {
        mn = other_min[i];
        mx = row_max[i];
    }
    let li_label = labels[i];
    let base = r * params.cols;
    for (var c = 0u; c < params.cols; c++) {
        let v = dist[base + c];
        mx = max(mx, v);
        if (labels[params.col_offset + c] != li_label) {
            mn = min(mn, v);
        }
    }
    other_min[i] = mn;
    row_max[i] = mx;
}
