// attention: multi-head softmax attention inside windows of a token grid, O = softmax(Q·Kᵀ·scale + B)·V per
// (window, head), with an online (streaming) softmax. Tokens live in a grid of width grid_w; window (wy, wx)
// holds the ws_h × ws_w tokens at rows wy·ws_h.., columns wx·ws_w.. (row-major inside the window). Channel
// layout of the fused qkv rows is given by offsets, which covers TinyViT (q,k,v interleaved per head) and ViTs
// (all q | all k | all v); a ViT sequence of S tokens is one 1 × S window. With has_bias the TinyViT relative
// bias B[i,j] = biases[head, |r_i − r_j|·ws_w + |c_i − c_j|] is added.
// Dispatch (⌈N/64⌉, heads, windows); thread = one query. The head dim is a multiple of 4 (≤ 64): q, k, v
// and the accumulator are vec4 groups.

// Kept in sync with core/src/gpu/params.rs `AttentionParams`.
struct Params {
    grid_w: u32,
    ws_h: u32,
    ws_w: u32,
    n_win_x: u32,
    heads: u32,
    hd: u32,
    qkv_stride: u32,
    head_stride: u32,
    k_off: u32,
    v_off: u32,
    out_stride: u32,
    has_bias: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;        // [tokens, qkv_stride]
@group(0) @binding(2) var<storage, read> biases: array<f32>;     // [heads, ws_h·ws_w]; read when has_bias == 1
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [tokens, out_stride]; head h at h·hd

const WG: u32 = 64u;
const HD4MAX: u32 = 16u;  // largest head dim / 4
const CH: u32 = 16u;      // keys staged per step

// Keys and values of CH tokens of one head, as vec4 groups: tile[jj·16 + d4].
var<workgroup> k_tile: array<vec4<f32>, 256>;
var<workgroup> v_tile: array<vec4<f32>, 256>;

fn token(win: u32, t: u32) -> u32 {
    let wy = win / params.n_win_x;
    let wx = win % params.n_win_x;
    return (wy * params.ws_h + t / params.ws_w) * params.grid_w + wx * params.ws_w + t % params.ws_w;
}

fn load4(base: u32) -> vec4<f32> {
    return vec4<f32>(qkv[base], qkv[base + 1u], qkv[base + 2u], qkv[base + 3u]);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let n = params.ws_h * params.ws_w;
    let head = wid.y;
    let win = wid.z;
    let i = wid.x * WG + li;
    let hd4 = params.hd / 4u;
    let hbase = head * params.head_stride;

    var q: array<vec4<f32>, 16>;
    var acc: array<vec4<f32>, 16>;
    if (i < n) {
        let qb = token(win, i) * params.qkv_stride + hbase;
        for (var d = 0u; d < hd4; d++) {
            q[d] = load4(qb + 4u * d) * params.scale;
            acc[d] = vec4<f32>(0.0);
        }
    }
    let ri = i32(i / params.ws_w);
    let ci = i32(i % params.ws_w);
    var m = -0x1.fffffep+127f;
    var l = 0.0;

    for (var j0 = 0u; j0 < n; j0 += CH) {
        // Stage keys and values j0 .. j0+CH of this head (all 64 threads cooperate).
        for (var e = li; e < CH * hd4; e += WG) {
            let jj = e / hd4;
            let d = e % hd4;
            let j = j0 + jj;
            if (j < n) {
                let b = token(win, j) * params.qkv_stride + hbase + 4u * d;
                k_tile[jj * HD4MAX + d] = load4(b + params.k_off);
                v_tile[jj * HD4MAX + d] = load4(b + params.v_off);
            }
        }
        workgroupBarrier();
        if (i < n) {
            let cnt = min(CH, n - j0);
            for (var jj = 0u; jj < cnt; jj++) {
                var sv = vec4<f32>(0.0);
                for (var d = 0u; d < hd4; d++) {
                    sv += q[d] * k_tile[jj * HD4MAX + d];
                }
                var s = sv.x + sv.y + sv.z + sv.w;
                if (params.has_bias == 1u) {
                    let j = j0 + jj;
                    let dr = u32(abs(ri - i32(j / params.ws_w)));
                    let dc = u32(abs(ci - i32(j % params.ws_w)));
                    s += biases[head * n + dr * params.ws_w + dc];
                }
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
    if (i < n) {
        let ob = token(win, i) * params.out_stride + head * params.hd;
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
