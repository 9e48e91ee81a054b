// kcenter_update_f16: kcenter_update on the f16 feature store (min_dist_update_f16's packed rows: ⌈D/2⌉ words a
// row, two halves a word, widened exactly by bit arithmetic). Everything else as kcenter_update.wgsl:
// min_dist_update with triangle-inequality pruning (the accelerated Gonzalez k-center step).
// Each row keeps owner[i], the centre that gave its current minimum mind[i]; dc2[j] is ‖c − c_j‖² from the new
// centre c to centre j (computed on the host). A row of centre j is not read when dc2[j] > 4·mind[i]·(1 + margin):
// then ‖x − c‖ ≥ ‖c − c_j‖ − ‖x − c_j‖ > ‖x − c_j‖ by more than the sums' rounding, so the plain step would keep
// mind[i]. A row that is read gets exactly min_dist_update's value (the same eight lanes and order), and moves
// to centre k when that is smaller, so mind equals the plain scan's bit for bit and fewer rows are read.
// init == 1: the first centre, every row measured, owner = k. Rows are x[row0 + i] of the whole pool for the
// block's rows i < n; the centre is the block's row `center` (a blocked pool's spare row). count[0] grows by the
// number of rows read (wrapping u32: the host reads it often enough), one atomic add per workgroup.

// Kept in sync with kernels/src/gpu/params.rs `KcenterUpdateF16Params`.
struct Params {
    n: u32,
    d: u32,
    center: u32,
    init: u32,
    row0: u32,
    k: u32,
    margin: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;             // [rows of this block, ⌈D/2⌉] f16 pairs
@group(0) @binding(2) var<storage, read> dc2: array<f32>;           // [k]: ‖c − c_j‖²
@group(0) @binding(3) var<storage, read_write> owner: array<u32>;   // [N of the pool]
@group(0) @binding(4) var<storage, read_write> mind: array<f32>;    // [N of the pool]
@group(0) @binding(5) var<storage, read_write> count: array<atomic<u32>>;  // [1]

const WG: u32 = 256u;
const LANES: u32 = 8u;
const ROWS: u32 = 32u;

var<workgroup> part: array<f32, 256>;
var<workgroup> opened: atomic<u32>;

// The f16 in the low 16 bits of h, as f32 (exact). Finite inputs only: the features are checked finite.
fn widen(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 0u) {
        // Zero or subnormal: m · 2⁻²⁴.
        let v = f32(m) * 5.9604645e-8;
        return bitcast<f32>(bitcast<u32>(v) | sign);
    }
    return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

fn pair(w: u32) -> vec2<f32> {
    return vec2<f32>(widen(w & 0xffffu), widen(w >> 16u));
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let lane = li % LANES;
    let i = (wid.y * nwg.x + wid.x) * ROWS + li / LANES;
    let g = params.row0 + i;
    var open = false;
    if (i < params.n) {
        open = params.init == 1u || !(dc2[owner[g]] > 4.0 * mind[g] * (1.0 + params.margin));
    }
    if (open && lane == 0u) {
        atomicAdd(&opened, 1u);
    }
    var acc = 0.0;
    if (open) {
        let words = (params.d + 1u) / 2u;
        let row = i * words;
        let c0 = params.center * words;
        for (var k = lane; k < words; k += LANES) {
            let diff = pair(x[row + k]) - pair(x[c0 + k]);
            acc += diff.x * diff.x + diff.y * diff.y;
        }
    }
    part[li] = acc;
    workgroupBarrier();
    if (li == 0u) {
        let rows = atomicLoad(&opened);
        if (rows > 0u) {
            atomicAdd(&count[0], rows);
        }
    }
    if (lane == 0u && open) {
        var sum = 0.0;
        for (var j = 0u; j < LANES; j++) {
            sum += part[li + j];
        }
        if (params.init == 1u) {
            mind[g] = sum;
            owner[g] = params.k;
        } else if (sum < mind[g]) {
            mind[g] = sum;
            owner[g] = params.k;
        }
    }
}
