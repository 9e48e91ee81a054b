// cross_attention: multi-head softmax attention between two sequences, O = softmax(Q·Kᵀ·scale)·V per head,
// with an online (streaming) softmax. Q [nq, q_stride], K [nk, k_stride], V [nk, v_stride]; head h reads
// columns h·hd .. h·hd+hd of each and writes them in O [nq, out_stride]. Covers SAM's two-way transformer:
// token self-attention (nq = nk = 7), tokens → image (nq = 7, nk = 4096) and image → tokens (nq = 4096, nk = 7).
// Dispatch (⌈nq/64⌉, heads, 1); thread = one query. The head dim is a multiple of 4 (≤ 64).

// Kept in sync with kernels/src/gpu/params.rs `CrossAttentionParams`.
struct Params {
    nq: u32,
    nk: u32,
    heads: u32,
    hd: u32,
    q_stride: u32,
    k_stride: u32,
    v_stride: u32,
    out_stride: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<f32>;       // [nq, q_stride]
@group(0) @binding(2) var<storage, read> k_in: array<f32>;       // [nk, k_stride]
@group(0) @binding(3) var<storage, read> v_in: array<f32>;       // [nk, v_stride]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;  // [nq, out_stride]

const WG: u32 = 64u;
const HD4MAX: u32 = 16u;  // largest head dim / 4
const CH: u32 = 16u;      // keys staged per step

var<workgroup> k_tile: array<vec4<f32>, 256>;
var<workgroup> v_tile: array<vec4<f32>, 256>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let head = wid.y;
    let i = wid.x * WG + li;
    let hd4 = params.hd / 4u;
    let hoff = head * params.hd;

    var q: array<vec4<f32>, 16>;
    var acc: array<vec4<f32>, 16>;
    if (i < params.nq) {
        let qb = i * params.q_stride + hoff;
        for (var d = 0u; d < hd4; d++) {
            let b = qb + 4u * d;
            q[d] = vec4<f32>(q_in[b], q_in[b + 1u], q_in[b + 2u], q_in[b + 3u]) * params.scale;
            acc[d] = vec4<f32>(0.0);
        }
    }
    var m = -0x1.fffffep+127f;
    var l = 0.0;

    for (var j0 = 0u; j0 < params.nk; j0 += CH) {
        for (var e = li; e < CH * hd4; e += WG) {
            let jj = e / hd4;
            let d = e % hd4;
            let j = j0 + jj;
            if (j < params.nk) {
                let kb = j * params.k_stride + hoff + 4u * d;
                let vb = j * params.v_stride + hoff + 4u * d;
                k_tile[jj * HD4MAX + d] = vec4<f32>(k_in[kb], k_in[kb + 1u], k_in[kb + 2u], k_in[kb + 3u]);
                v_tile[jj * HD4MAX + d] = vec4<f32>(v_in[vb], v_in[vb + 1u], v_in[vb + 2u], v_in[vb + 3u]);
            }
        }
        workgroupBarrier();
        if (i < params.nq) {
            let cnt = min(CH, params.nk - j0);
            for (var jj = 0u; jj < cnt; jj++) {
                var sv = vec4<f32>(0.0);
                for (var d = 0u; d < hd4; d++) {
                    sv += q[d] * k_tile[jj * HD4MAX + d];
                }
                let s = sv.x + sv.y + sv.z + sv.w;
                let m_new = max(m, s);
                let corr = exp(m - m_new);
                let p = exp(s - m_new);
                l = l * corr + p;
                for (var d = 0u; d < hd4; d++) {
                    acc[d] = acc[d] * corr + p * v_tile[jj * HD4MAX + d];
                }
                m = m_new;
            }
        }
        workgroupBarrier();
    }
    if (i < params.nq) {
        let ob = i * params.out_stride + hoff;
        let inv = 1.0 / l;
        for (var d = 0u; d < hd4; d++) {
            let v = acc[d] * inv;
            out[ob + 4u * d] = v.x;
            out[ob + 4u * d + 1u] = v.y;
            out[ob + 4u * d + 2u] = v.z;
            out[ob + 4u * d + 3u] = v.w;
        }
    }
}
