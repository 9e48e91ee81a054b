// min_dist_update: the k-center greedy step. d_i = Σ_k (x[i,k] − x[center,k])²;
// mind[i] = d_i if init == 1 (first centre) else min(mind[i], d_i). Squared distances: argmax is unchanged by sqrt.

// Kept in sync with core/src/gpu/params.rs `MinDistUpdateParams`.
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
const CHUNK: u32 = 256u;

// The centre row is staged through workgroup memory CHUNK values at a time.
var<workgroup> c_tile: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // 2-D dispatch for more than 65535 workgroups: linear workgroup index = y·nx + x.
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    let c0 = params.center * params.d;
    var acc = 0.0;
    for (var t = 0u; t < params.d; t += CHUNK) {
        if (t + li < params.d) {
            c_tile[li] = x[c0 + t + li];
        }
        workgroupBarrier();
        if (i < params.n) {
            let len = min(CHUNK, params.d - t);
            let row = i * params.d + t;
            for (var k = 0u; k < len; k++) {
                let diff = x[row + k] - c_tile[k];
                acc += diff * diff;
            }
        }
        workgroupBarrier();
    }
    if (i < params.n) {
        if (params.init == 1u) {
            mind[i] = acc;
        } else {
            mind[i] = min(mind[i], acc);
        }
    }
}
