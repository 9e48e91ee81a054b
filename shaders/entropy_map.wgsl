// entropy_map: per pixel p of image b, probabilities q_c = softmax_c(logits[b,c,p]) (C == 1: sigmoid, i.e. the two
// classes {1 − σ(l), σ(l)}); entropy[b,p] = −Σ_c q_c·ln(q_c + 1e-6) / ln(max(C, 2)) (FM-ABS's normalised entropy,
// with its 1e-6) and maxprob[b,p] = max_c q_c.

// Kept in sync with kernels/src/gpu/params.rs `EntropyMapParams`.
struct Params {
    images: u32,
    classes: u32,
    pixels: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;        // [B, C, P] (NCHW with P = H·W)
@group(0) @binding(2) var<storage, read_write> entropy: array<f32>; // [B, P]
@group(0) @binding(3) var<storage, read_write> maxprob: array<f32>; // [B, P]

const WG: u32 = 256u;
const EPS: f32 = 1e-6;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i >= params.images * params.pixels) {
        return;
    }
    let img = i / params.pixels;
    let p = i % params.pixels;
    let base = img * params.classes * params.pixels + p;
    if (params.classes == 1u) {
        let q1 = 1.0 / (1.0 + exp(-logits[base]));
        let q0 = 1.0 - q1;
        entropy[i] = -(q0 * log(q0 + EPS) + q1 * log(q1 + EPS)) / log(2.0);
        maxprob[i] = max(q0, q1);
        return;
    }
    var m = -0x1.fffffep+127f;
    for (var c = 0u; c < params.classes; c++) {
        m = max(m, logits[base + c * params.pixels]);
    }
    var z = 0.0;
    for (var c = 0u; c < params.classes; c++) {
        z += exp(logits[base + c * params.pixels] - m);
    }
    var h = 0.0;
    var best = 0.0;
    for (var c = 0u; c < params.classes; c++) {
        let q = exp(logits[base + c * params.pixels] - m) / z;
        h -= q * log(q + EPS);
        best = max(best, q);
    }
    entropy[i] = h / log(f32(params.classes));
    maxprob[i] = best;
}
