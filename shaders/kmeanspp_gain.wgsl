// kmeanspp_gain: k-means++'s potential decrease of each trial centre t, Σᵢ max(0, mind[i] − ‖xᵢ − cand_t‖²),
// summed per workgroup of 32 rows into partial[(wg0 + wg)·total + t] (the host adds the workgroups in order).
// kcenter_update's pruning: a row of centre j = owner[i] is not read for trial t when dcand[t·stride + j] (the
// trial's squared distance to centre j, from the host) > 4·mind[i]·(1 + margin) — the trial is then farther
// from the row than its centre, so its term is 0 in the plain sum too. A row that is read gets kcenter_update's
// distance up to rounding (four lanes a row). With dcand all 0 every row is read: the plain gains. Rows are
// x[row0 + i] of the pool for the block's rows i < n; this dispatch does trials t0 .. t0 + trials (≤ 16) of
// `total`. count[0] grows by the (row, trial) pairs read (wrapping u32). One barrier a workgroup: each thread keeps
// its lane's sums of every trial, then one thread a trial adds the 32 rows' terms in order.

// Kept in sync with kernels/src/gpu/params.rs `KmeansppGainParams`.
struct Params {
    n: u32,
    d: u32,
    trials: u32,
    row0: u32,
    stride: u32,
    wg0: u32,
    margin: f32,
    t0: u32,
    total: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;             // [rows of this block, D]
@group(0) @binding(2) var<storage, read> cand: array<f32>;          // [total, D]
@group(0) @binding(3) var<storage, read> dcand: array<f32>;         // [total, stride]: ‖cand_t − c_j‖²
@group(0) @binding(4) var<storage, read> owner: array<u32>;         // [N of the pool]
@group(0) @binding(5) var<storage, read> mind: array<f32>;          // [N of the pool]
@group(0) @binding(6) var<storage, read_write> partial: array<f32>; // [(wg0 + workgroups) · total]
@group(0) @binding(7) var<storage, read_write> count: array<atomic<u32>>;  // [1]

const WG: u32 = 128u;
const LANES: u32 = 4u;
const ROWS: u32 = 32u;
const MAX_TRIALS: u32 = 16u;

var<workgroup> part: array<f32, 2048>;   // [MAX_TRIALS][WG]
var<workgroup> row_m: array<f32, 32>;
var<workgroup> row_own: array<u32, 32>;
var<workgroup> row_ok: array<u32, 32>;

fn is_open(t: u32, own: u32, m: f32) -> bool {
    return !(dcand[(params.t0 + t) * params.stride + own] > 4.0 * m * (1.0 + params.margin));
}

@compute @workgroup_size(128, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let lane = li % LANES;
    let r = li / LANES;
    let wg = wid.y * nwg.x + wid.x;
    let i = wg * ROWS + r;
    let g = params.row0 + i;
    let valid = i < params.n;
    var m = 0.0;
    var own = 0u;
    if (valid) {
        m = mind[g];
        own = owner[g];
    }
    if (lane == 0u) {
        row_m[r] = m;
        row_own[r] = own;
        row_ok[r] = select(0u, 1u, valid);
    }
    let trials = min(params.trials, MAX_TRIALS);
    for (var t = 0u; t < trials; t++) {
        var acc = 0.0;
        if (valid && is_open(t, own, m)) {
            let row = i * params.d;
            let c0 = (params.t0 + t) * params.d;
            for (var k = lane; k < params.d; k += LANES) {
                let diff = x[row + k] - cand[c0 + k];
                acc += diff * diff;
            }
        }
        part[t * WG + li] = acc;
    }
    workgroupBarrier();
    // Only workgroups holding rows write (a 2-D grid may have more than ⌈n/32⌉).
    if (li < trials && wg * ROWS < params.n) {
        let t = li;
        var s = 0.0;
        var opened = 0u;
        for (var rr = 0u; rr < ROWS; rr++) {
            if (row_ok[rr] == 1u && is_open(t, row_own[rr], row_m[rr])) {
                opened += 1u;
                var sum = 0.0;
                for (var j = 0u; j < LANES; j++) {
                    sum += part[t * WG + rr * LANES + j];
                }
                s += max(row_m[rr] - sum, 0.0);
            }
        }
        partial[(params.wg0 + wg) * params.total + params.t0 + t] = s;
        if (opened > 0u) {
            atomicAdd(&count[0], opened);
        }
    }
}
