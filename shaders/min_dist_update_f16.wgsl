// min_dist_update_f16: min_dist_update on features stored as f16 (half the bytes each k-center step reads).
// Each row is ⌈D/2⌉ u32 words, two f16 values per word (low half first; an odd D's last word has a zero high
// half, which adds nothing to a distance). The halves are widened by bit arithmetic (exact, subnormals included),
// so neither the shader-f16 feature nor the f16-in-f32 downlevel capability of unpack2x16float is needed.
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
    let words = (params.d + 1u) / 2u;
    var acc = 0.0;
    if (i < params.n) {
        let row = i * words;
        let c0 = params.center * words;
        for (var k = lane; k < words; k += LANES) {
            let diff = pair(x[row + k]) - pair(x[c0 + k]);
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
