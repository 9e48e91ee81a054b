// min_dist_update: the k-center greedy step. d_i = Σ_k (x[i,k] − x[center,k])²;
// mind[i] = d_i if init == 1 (first centre) else min(mind[i], d_i). Squared distances: argmax is unchanged by sqrt.
// Eight threads per row, each summing every eighth feature, then the row's first thread adds the eight.

// Kept in sync with kernels/src/gpu/params.rs `MinDistUpdateParams`.
struct Params {
    n: u32,
    d: u32,
    center: u32,
    init: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // [N, D] row-major
@group(0) @binding(2) var<storage, read_write> mind: array<f32>;   // [N]

const WG: u32 = 256u;
const LANES: u32 = 8u;   // threads per row: they read consecutive features (contiguous loads, not a gather)
const ROWS: u32 = 32u;   // rows per workgroup (WG / LANES)

// Each row's LANES partial sums, added by the row's first thread.
var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // 2-D dispatch for more than 65535 workgroups: linear workgroup index = y·nx + x.
    let lane = li % LANES;
    let i = (wid.y * nwg.x + wid.x) * ROWS + li / LANES;
    var acc = 0.0;
    if (i < params.n) {
        let row = i * params.d;
        let c0 = params.center * params.d;
        for (var k = lane; k < params.d; k += LANES) {
            let diff = x[row + k] - x[c0 + k];
            acc += diff * diff;
        }
    }
    part[li] = acc;
    workgroupBarrier();
    if (lane == 0u && i < params.n) {
        var sum = 0.0;
        for (var j = 0u; j < LANES; j++) {
            sum += part[li + j];
        }
        if (params.init == 1u) {
            mind[i] = sum;
        } else {
            mind[i] = min(mind[i], sum);
        }
    }
}
