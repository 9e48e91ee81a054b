// attention: multi-head softmax attention inside windows of a token grid, O = softmax(Q·Kᵀ·scale + B)·V per
// (window, head), with an online (streaming) softmax. Tokens live in a grid of width grid_w; window (wy, wx)
// holds the ws_h × ws_w tokens at rows wy·ws_h.., columns wx·ws_w.. (row-major inside the window). Channel
// layout of the fused qkv rows is given by offsets, which covers TinyViT (q,k,v interleaved per head) and ViTs
// (all q | all k | all v); a ViT sequence of S tokens is one 1 × S window. With has_bias the TinyViT relative
// bias B[i,j] = biases[head, |r_i − r_j|·ws_w + |c_i − c_j|] is added.
// Dispatch (⌈N/64⌉, heads, windows); thread = one query.

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
const HDMAX: u32 = 64u;   // largest head dim
const CH: u32 = 16u;      // keys staged per step

var<workgroup> k_tile: array<f32, 1024>;   // [CH][HDMAX]
var<workgroup> v_tile: array<f32, 1024>;   // [CH][HDMAX]

fn token(win: u32, t: u32) -> u32 {
    let wy = win / params.n_win_x;
    let wx = win % params.n_win_x;
    return (wy * params.ws_h + t / params.ws_w) * params.grid_w + wx * params.ws_w + t % params.ws_w;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let n = params.ws_h * params.ws_w;
    let head = wid.y;
    let win = wid.z;
    let i = wid.x * WG + li;
    let hd = params.hd;
    let hbase = head * params.head_stride;

    var q: array<f32, 64>;
    var acc: array<f32, 64>;
    if (i < n) {
        let qb = token(win, i) * params.qkv_stride + hbase;
        for (var d = 0u; d < hd; d++) {
            q[d] = qkv[qb + d] * params.scale;
            acc[d] = 0.0;
        }
    }
    let ri = i32(i / params.ws_w);
    let ci = i32(i % params.ws_w);
    var m = -0x1.fffffep+127f;
    var l = 0.0;

    for (var j0 = 0u; j0 < n; j0 += CH) {
        // Stage keys and values j0 .. j0+CH of this head (all 64 threads cooperate).
        for (var e = li; e < CH * hd; e += WG) {
            let jj = e / hd;
            let d = e % hd;
            let j = j0 + jj;
            if (j < n) {
                let b = token(win, j) * params.qkv_stride + hbase;
                k_tile[jj * HDMAX + d] = qkv[b + params.k_off + d];
                v_tile[jj * HDMAX + d] = qkv[b + params.v_off + d];
            }
        }
        workgroupBarrier();
        if (i < n) {
            let cnt = min(CH, n - j0);
            for (var jj = 0u; jj < cnt; jj++) {
                var s = 0.0;
                for (var d = 0u; d < hd; d++) {
                    s += q[d] * k_tile[jj * HDMAX + d];
                }
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
                for (var d = 0u; d < hd; d++) {
                    acc[d] = acc[d] * corr + p * v_tile[jj * HDMAX + d];
                }
                m = m_new;
            }
        }
        workgroupBarrier();
    }
    if (i < n) {
        let ob = token(win, i) * params.out_stride + head * hd;
        let inv = 1.0 / l;
        for (var d = 0u; d < hd; d++) {
            out[ob + d] = acc[d] * inv;
        }
    }
}
