// min_dist_update_f16: min_dist_update on features stored as f16 (half the bytes each k-center step reads).
// Each row is ⌈D/2⌉ u32 words, two f16 values per word (low half first; an odd D's last word has a zero high
// half, which adds nothing to a distance). unpack2x16float is core WGSL: no shader-f16 feature is needed.
// d_i = Σ_k (x[i,k] − x[center,k])² in f32 from the unpacked values; mind[i] = d_i if init == 1 else
// min(mind[i], d_i). Eight threads per row, each summing every eighth word, then the row's first thread adds
// the eight.

// Kept in sync with kernels/src/gpu/params.rs `MinDistUpdateF16Params`.
struct Params {
    n: u32,
    d: u32,
    center: u32,
    init: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;            // [N, ⌈D/2⌉] packed f16 pairs
@group(0) @binding(2) var<storage, read_write> mind: array<f32>;   // [N]

const WG: u32 = 256u;
const LANES: u32 = 8u;   // threads per row: they read consecutive words
const ROWS: u32 = 32u;   // rows per workgroup (WG / LANES)

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let lane = li % LANES;
    let i = (wid.y * nwg.x + wid.x) * ROWS + li / LANES;
    let words = (params.d + 1u) / 2u;
    var acc = 0.0;
    if (i < params.n) {
        let row = i * words;
        let c0 = params.center * words;
        for (var k = lane; k < words; k += LANES) {
            let diff = unpack2x16float(x[row + k]) - unpack2x16float(x[c0 + k]);
            acc += diff.x * diff.x + diff.y * diff.y;
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
