// facility_gain: the facility-location marginal gain of each candidate row, from squared distances between
// L2-normalised rows (cosine similarity s = 1 − D/2):
//   gain[r] = Σ_j max(0, s[r, j] − m_j),  m_j = max(0, 1 − mind[j]/2),
// where mind[j] is the smallest squared distance from j to an already chosen row (a large value before the
// first pick, so m_j = 0 as in MedCAL's max(0, ·) coverage). With mode == 1 the same pass gives k-means++'s
// potential decrease of each candidate centre instead: gain[r] = Σ_j max(0, mind[j] − D[r, j]). Mode bit 2
// adds to gain[r] instead of overwriting it (column tiles of one row block).
// One workgroup per candidate row, tree reduction.

// Kept in sync with kernels/src/gpu/params.rs `FacilityGainParams`.
struct Params {
    rows: u32,
    cols: u32,
    mode: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dist: array<f32>;         // [R, C] squared distances
@group(0) @binding(2) var<storage, read> mind: array<f32>;         // [C]
@group(0) @binding(3) var<storage, read_write> gain: array<f32>;   // [R]

const WG: u32 = 256u;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = wid.y * nwg.x + wid.x;
    var acc = 0.0;
    if (r < params.rows) {
        let base = r * params.cols;
        for (var j = li; j < params.cols; j += WG) {
            if ((params.mode & 1u) != 0u) {
                acc += max(0.0, mind[j] - dist[base + j]);
            } else {
                let s = 1.0 - 0.5 * dist[base + j];
                let m = max(0.0, 1.0 - 0.5 * mind[j]);
                acc += max(0.0, s - m);
            }
        }
    }
    partial[li] = acc;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step /= 2u) {
        if (li < step) {
            partial[li] += partial[li + step];
        }
        workgroupBarrier();
    }
    if (li == 0u && r < params.rows) {
        if ((params.mode & 2u) != 0u) {
            gain[r] += partial[0];
        } else {
            gain[r] = partial[0];
        }
    }
}
