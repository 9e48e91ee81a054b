// attention: multi-head softmax attention inside windows of a token grid, O = softmax(Q·Kᵀ·scale + B)·V per
// (window, head), with an online (streaming) softmax. Tokens live in a grid of width grid_w; window (wy, wx)
// holds the ws_h × ws_w tokens at rows wy·ws_h.., columns wx·ws_w.. (row-major inside the window). Channel
// layout of the fused qkv rows is given by offsets, which covers TinyViT (q,k,v interleaved per head) and ViTs
// (all q | all k | all v); a ViT sequence of S tokens is one 1 × S window. With has_bias the TinyViT relative
// bias B[i,j] = biases[head, |r_i − r_j|·ws_w + |c_i − c_j|] is added.
// Dispatch (⌈N/64⌉, heads, windows); thread = one query. The head dim is a multiple of 4 (≤ 64): q, k, v
// and the accumulator are vec4 groups. Head dims 32 (TinyViT) and 64 (every DINOv2) take unrolled paths
// (scripts/gen-attention-unrolled.py) with q and the accumulator in named variables: the generic path's
// loop-indexed arrays live in memory on CPU adapters (llvmpipe), where the unrolled paths made LiteMedSAM's
// attention 1.5× faster. With `pair` (CPU adapters) those head dims give each of the first 32 threads two queries,
// i and i + 32, so that every key and value read from workgroup memory serves both; the other 32 threads only
// stage. Other head dims take the generic path; all paths add the same terms in the same order.

// Kept in sync with kernels/src/gpu/params.rs `AttentionParams`.
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
    pair: u32,     // 1: threads 0..31 take queries i and i + 32 (head dims 32 and 64; CPU adapters), 32..63 stage
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

// Stage keys and values j0 .. j0+CH of this head into k_tile / v_tile (all 64 threads cooperate).
fn stage(j0: u32, li: u32, hd4: u32, win: u32, hbase: u32, n: u32) {
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
}

fn bias_of(head: u32, n: u32, ri: i32, ci: i32, j: u32) -> f32 {
    if (params.has_bias == 1u) {
        let dr = u32(abs(ri - i32(j / params.ws_w)));
        let dc = u32(abs(ci - i32(j % params.ws_w)));
        return biases[head * n + dr * params.ws_w + dc];
    }
    return 0.0;
}

fn store4(o: u32, v: vec4<f32>) {
    out[o] = v.x;
    out[o + 1u] = v.y;
    out[o + 2u] = v.z;
    out[o + 3u] = v.w;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let n = params.ws_h * params.ws_w;
    let head = wid.y;
    let win = wid.z;
    let i = wid.x * WG + li;
    let hd4 = params.hd / 4u;
    let hbase = head * params.head_stride;

    let ri = i32(i / params.ws_w);
    let ci = i32(i % params.ws_w);
    var m = -0x1.fffffep+127f;
    var l = 0.0;
    // BEGIN unrolled paths: written by scripts/gen-attention-unrolled.py, edit that instead.
    if (params.pair == 1u && hd4 == 8u) {
        let act = li < 32u;
        let ib = i + 32u;
        let va = act && i < n;
        let vb = act && ib < n;
        let rb = i32(min(ib, n - 1u) / params.ws_w);
        let cb = i32(min(ib, n - 1u) % params.ws_w);
        var mb = -0x1.fffffep+127f;
        var lb = 0.0;
        var qa0 = vec4<f32>(0.0);
        var aa0 = vec4<f32>(0.0);
        var qb0 = vec4<f32>(0.0);
        var ab0 = vec4<f32>(0.0);
        var qa1 = vec4<f32>(0.0);
        var aa1 = vec4<f32>(0.0);
        var qb1 = vec4<f32>(0.0);
        var ab1 = vec4<f32>(0.0);
        var qa2 = vec4<f32>(0.0);
        var aa2 = vec4<f32>(0.0);
        var qb2 = vec4<f32>(0.0);
        var ab2 = vec4<f32>(0.0);
        var qa3 = vec4<f32>(0.0);
        var aa3 = vec4<f32>(0.0);
        var qb3 = vec4<f32>(0.0);
        var ab3 = vec4<f32>(0.0);
        var qa4 = vec4<f32>(0.0);
        var aa4 = vec4<f32>(0.0);
        var qb4 = vec4<f32>(0.0);
        var ab4 = vec4<f32>(0.0);
        var qa5 = vec4<f32>(0.0);
        var aa5 = vec4<f32>(0.0);
        var qb5 = vec4<f32>(0.0);
        var ab5 = vec4<f32>(0.0);
        var qa6 = vec4<f32>(0.0);
        var aa6 = vec4<f32>(0.0);
        var qb6 = vec4<f32>(0.0);
        var ab6 = vec4<f32>(0.0);
        var qa7 = vec4<f32>(0.0);
        var aa7 = vec4<f32>(0.0);
        var qb7 = vec4<f32>(0.0);
        var ab7 = vec4<f32>(0.0);
        if (va) {
            let qba = token(win, i) * params.qkv_stride + hbase;
            let qbb = token(win, min(ib, n - 1u)) * params.qkv_stride + hbase;
            qa0 = load4(qba + 0u) * params.scale;
            qb0 = load4(qbb + 0u) * params.scale;
            qa1 = load4(qba + 4u) * params.scale;
            qb1 = load4(qbb + 4u) * params.scale;
            qa2 = load4(qba + 8u) * params.scale;
            qb2 = load4(qbb + 8u) * params.scale;
            qa3 = load4(qba + 12u) * params.scale;
            qb3 = load4(qbb + 12u) * params.scale;
            qa4 = load4(qba + 16u) * params.scale;
            qb4 = load4(qbb + 16u) * params.scale;
            qa5 = load4(qba + 20u) * params.scale;
            qb5 = load4(qbb + 20u) * params.scale;
            qa6 = load4(qba + 24u) * params.scale;
            qb6 = load4(qbb + 24u) * params.scale;
            qa7 = load4(qba + 28u) * params.scale;
            qb7 = load4(qbb + 28u) * params.scale;
        }
        for (var j0 = 0u; j0 < n; j0 += CH) {
            stage(j0, li, hd4, win, hbase, n);
            workgroupBarrier();
            if (va) {
                let cnt = min(CH, n - j0);
                for (var jj = 0u; jj < cnt; jj++) {
                    let kb = jj * HD4MAX;
                    let k0 = k_tile[kb + 0u];
                    let k1 = k_tile[kb + 1u];
                    let k2 = k_tile[kb + 2u];
                    let k3 = k_tile[kb + 3u];
                    let k4 = k_tile[kb + 4u];
                    let k5 = k_tile[kb + 5u];
                    let k6 = k_tile[kb + 6u];
                    let k7 = k_tile[kb + 7u];
                    let sva = qa0 * k0 + qa1 * k1 + qa2 * k2 + qa3 * k3 + qa4 * k4 + qa5 * k5 + qa6 * k6 + qa7 * k7;
                    let svb = qb0 * k0 + qb1 * k1 + qb2 * k2 + qb3 * k3 + qb4 * k4 + qb5 * k5 + qb6 * k6 + qb7 * k7;
                    let sa = sva.x + sva.y + sva.z + sva.w + bias_of(head, n, ri, ci, j0 + jj);
                    let sb = svb.x + svb.y + svb.z + svb.w + bias_of(head, n, rb, cb, j0 + jj);
                    let ma = max(m, sa);
                    let mbn = max(mb, sb);
                    let corra = exp(m - ma);
                    let corrb = exp(mb - mbn);
                    let pa = exp(sa - ma);
                    let pb = exp(sb - mbn);
                    l = l * corra + pa;
                    lb = lb * corrb + pb;
                    let v0 = v_tile[kb + 0u];
                    aa0 = aa0 * corra + pa * v0;
                    ab0 = ab0 * corrb + pb * v0;
                    let v1 = v_tile[kb + 1u];
                    aa1 = aa1 * corra + pa * v1;
                    ab1 = ab1 * corrb + pb * v1;
                    let v2 = v_tile[kb + 2u];
                    aa2 = aa2 * corra + pa * v2;
                    ab2 = ab2 * corrb + pb * v2;
                    let v3 = v_tile[kb + 3u];
                    aa3 = aa3 * corra + pa * v3;
                    ab3 = ab3 * corrb + pb * v3;
                    let v4 = v_tile[kb + 4u];
                    aa4 = aa4 * corra + pa * v4;
                    ab4 = ab4 * corrb + pb * v4;
                    let v5 = v_tile[kb + 5u];
                    aa5 = aa5 * corra + pa * v5;
                    ab5 = ab5 * corrb + pb * v5;
                    let v6 = v_tile[kb + 6u];
                    aa6 = aa6 * corra + pa * v6;
                    ab6 = ab6 * corrb + pb * v6;
                    let v7 = v_tile[kb + 7u];
                    aa7 = aa7 * corra + pa * v7;
                    ab7 = ab7 * corrb + pb * v7;
                    m = ma;
                    mb = mbn;
                }
            }
            workgroupBarrier();
        }
        if (va) {
            let oba = token(win, i) * params.out_stride + head * params.hd;
            let inva = 1.0 / l;
            store4(oba + 0u, aa0 * inva);
            store4(oba + 4u, aa1 * inva);
            store4(oba + 8u, aa2 * inva);
            store4(oba + 12u, aa3 * inva);
            store4(oba + 16u, aa4 * inva);
            store4(oba + 20u, aa5 * inva);
            store4(oba + 24u, aa6 * inva);
            store4(oba + 28u, aa7 * inva);
        }
        if (vb) {
            let obb = token(win, ib) * params.out_stride + head * params.hd;
            let invb = 1.0 / lb;
            store4(obb + 0u, ab0 * invb);
            store4(obb + 4u, ab1 * invb);
            store4(obb + 8u, ab2 * invb);
            store4(obb + 12u, ab3 * invb);
            store4(obb + 16u, ab4 * invb);
            store4(obb + 20u, ab5 * invb);
            store4(obb + 24u, ab6 * invb);
            store4(obb + 28u, ab7 * invb);
        }
        return;
    }
    if (params.pair == 1u && hd4 == 16u) {
        let act = li < 32u;
        let ib = i + 32u;
        let va = act && i < n;
        let vb = act && ib < n;
        let rb = i32(min(ib, n - 1u) / params.ws_w);
        let cb = i32(min(ib, n - 1u) % params.ws_w);
        var mb = -0x1.fffffep+127f;
        var lb = 0.0;
        var qa0 = vec4<f32>(0.0);
        var aa0 = vec4<f32>(0.0);
        var qb0 = vec4<f32>(0.0);
        var ab0 = vec4<f32>(0.0);
        var qa1 = vec4<f32>(0.0);
        var aa1 = vec4<f32>(0.0);
        var qb1 = vec4<f32>(0.0);
        var ab1 = vec4<f32>(0.0);
        var qa2 = vec4<f32>(0.0);
        var aa2 = vec4<f32>(0.0);
        var qb2 = vec4<f32>(0.0);
        var ab2 = vec4<f32>(0.0);
        var qa3 = vec4<f32>(0.0);
        var aa3 = vec4<f32>(0.0);
        var qb3 = vec4<f32>(0.0);
        var ab3 = vec4<f32>(0.0);
        var qa4 = vec4<f32>(0.0);
        var aa4 = vec4<f32>(0.0);
        var qb4 = vec4<f32>(0.0);
        var ab4 = vec4<f32>(0.0);
        var qa5 = vec4<f32>(0.0);
        var aa5 = vec4<f32>(0.0);
        var qb5 = vec4<f32>(0.0);
        var ab5 = vec4<f32>(0.0);
        var qa6 = vec4<f32>(0.0);
        var aa6 = vec4<f32>(0.0);
        var qb6 = vec4<f32>(0.0);
        var ab6 = vec4<f32>(0.0);
        var qa7 = vec4<f32>(0.0);
        var aa7 = vec4<f32>(0.0);
        var qb7 = vec4<f32>(0.0);
        var ab7 = vec4<f32>(0.0);
        var qa8 = vec4<f32>(0.0);
        var aa8 = vec4<f32>(0.0);
        var qb8 = vec4<f32>(0.0);
        var ab8 = vec4<f32>(0.0);
        var qa9 = vec4<f32>(0.0);
        var aa9 = vec4<f32>(0.0);
        var qb9 = vec4<f32>(0.0);
        var ab9 = vec4<f32>(0.0);
        var qa10 = vec4<f32>(0.0);
        var aa10 = vec4<f32>(0.0);
        var qb10 = vec4<f32>(0.0);
        var ab10 = vec4<f32>(0.0);
        var qa11 = vec4<f32>(0.0);
        var aa11 = vec4<f32>(0.0);
        var qb11 = vec4<f32>(0.0);
        var ab11 = vec4<f32>(0.0);
        var qa12 = vec4<f32>(0.0);
        var aa12 = vec4<f32>(0.0);
        var qb12 = vec4<f32>(0.0);
        var ab12 = vec4<f32>(0.0);
        var qa13 = vec4<f32>(0.0);
        var aa13 = vec4<f32>(0.0);
        var qb13 = vec4<f32>(0.0);
        var ab13 = vec4<f32>(0.0);
        var qa14 = vec4<f32>(0.0);
        var aa14 = vec4<f32>(0.0);
        var qb14 = vec4<f32>(0.0);
        var ab14 = vec4<f32>(0.0);
        var qa15 = vec4<f32>(0.0);
        var aa15 = vec4<f32>(0.0);
        var qb15 = vec4<f32>(0.0);
        var ab15 = vec4<f32>(0.0);
        if (va) {
            let qba = token(win, i) * params.qkv_stride + hbase;
            let qbb = token(win, min(ib, n - 1u)) * params.qkv_stride + hbase;
            qa0 = load4(qba + 0u) * params.scale;
            qb0 = load4(qbb + 0u) * params.scale;
            qa1 = load4(qba + 4u) * params.scale;
            qb1 = load4(qbb + 4u) * params.scale;
            qa2 = load4(qba + 8u) * params.scale;
            qb2 = load4(qbb + 8u) * params.scale;
            qa3 = load4(qba + 12u) * params.scale;
            qb3 = load4(qbb + 12u) * params.scale;
            qa4 = load4(qba + 16u) * params.scale;
            qb4 = load4(qbb + 16u) * params.scale;
            qa5 = load4(qba + 20u) * params.scale;
            qb5 = load4(qbb + 20u) * params.scale;
            qa6 = load4(qba + 24u) * params.scale;
            qb6 = load4(qbb + 24u) * params.scale;
            qa7 = load4(qba + 28u) * params.scale;
            qb7 = load4(qbb + 28u) * params.scale;
            qa8 = load4(qba + 32u) * params.scale;
            qb8 = load4(qbb + 32u) * params.scale;
            qa9 = load4(qba + 36u) * params.scale;
            qb9 = load4(qbb + 36u) * params.scale;
            qa10 = load4(qba + 40u) * params.scale;
            qb10 = load4(qbb + 40u) * params.scale;
            qa11 = load4(qba + 44u) * params.scale;
            qb11 = load4(qbb + 44u) * params.scale;
            qa12 = load4(qba + 48u) * params.scale;
            qb12 = load4(qbb + 48u) * params.scale;
            qa13 = load4(qba + 52u) * params.scale;
            qb13 = load4(qbb + 52u) * params.scale;
            qa14 = load4(qba + 56u) * params.scale;
            qb14 = load4(qbb + 56u) * params.scale;
            qa15 = load4(qba + 60u) * params.scale;
            qb15 = load4(qbb + 60u) * params.scale;
        }
        for (var j0 = 0u; j0 < n; j0 += CH) {
            stage(j0, li, hd4, win, hbase, n);
            workgroupBarrier();
            if (va) {
                let cnt = min(CH, n - j0);
                for (var jj = 0u; jj < cnt; jj++) {
                    let kb = jj * HD4MAX;
                    let k0 = k_tile[kb + 0u];
                    let k1 = k_tile[kb + 1u];
                    let k2 = k_tile[kb + 2u];
                    let k3 = k_tile[kb + 3u];
                    let k4 = k_tile[kb + 4u];
                    let k5 = k_tile[kb + 5u];
                    let k6 = k_tile[kb + 6u];
                    let k7 = k_tile[kb + 7u];
                    let k8 = k_tile[kb + 8u];
                    let k9 = k_tile[kb + 9u];
                    let k10 = k_tile[kb + 10u];
                    let k11 = k_tile[kb + 11u];
                    let k12 = k_tile[kb + 12u];
                    let k13 = k_tile[kb + 13u];
                    let k14 = k_tile[kb + 14u];
                    let k15 = k_tile[kb + 15u];
                    let sva = qa0 * k0 + qa1 * k1 + qa2 * k2 + qa3 * k3 + qa4 * k4 + qa5 * k5 + qa6 * k6 + qa7 * k7 + qa8 * k8 + qa9 * k9 + qa10 * k10 + qa11 * k11 + qa12 * k12 + qa13 * k13 + qa14 * k14 + qa15 * k15;
                    let svb = qb0 * k0 + qb1 * k1 + qb2 * k2 + qb3 * k3 + qb4 * k4 + qb5 * k5 + qb6 * k6 + qb7 * k7 + qb8 * k8 + qb9 * k9 + qb10 * k10 + qb11 * k11 + qb12 * k12 + qb13 * k13 + qb14 * k14 + qb15 * k15;
                    let sa = sva.x + sva.y + sva.z + sva.w + bias_of(head, n, ri, ci, j0 + jj);
                    let sb = svb.x + svb.y + svb.z + svb.w + bias_of(head, n, rb, cb, j0 + jj);
                    let ma = max(m, sa);
                    let mbn = max(mb, sb);
                    let corra = exp(m - ma);
                    let corrb = exp(mb - mbn);
                    let pa = exp(sa - ma);
                    let pb = exp(sb - mbn);
                    l = l * corra + pa;
                    lb = lb * corrb + pb;
                    let v0 = v_tile[kb + 0u];
                    aa0 = aa0 * corra + pa * v0;
                    ab0 = ab0 * corrb + pb * v0;
                    let v1 = v_tile[kb + 1u];
                    aa1 = aa1 * corra + pa * v1;
                    ab1 = ab1 * corrb + pb * v1;
                    let v2 = v_tile[kb + 2u];
                    aa2 = aa2 * corra + pa * v2;
                    ab2 = ab2 * corrb + pb * v2;
                    let v3 = v_tile[kb + 3u];
                    aa3 = aa3 * corra + pa * v3;
                    ab3 = ab3 * corrb + pb * v3;
                    let v4 = v_tile[kb + 4u];
                    aa4 = aa4 * corra + pa * v4;
                    ab4 = ab4 * corrb + pb * v4;
                    let v5 = v_tile[kb + 5u];
                    aa5 = aa5 * corra + pa * v5;
                    ab5 = ab5 * corrb + pb * v5;
                    let v6 = v_tile[kb + 6u];
                    aa6 = aa6 * corra + pa * v6;
                    ab6 = ab6 * corrb + pb * v6;
                    let v7 = v_tile[kb + 7u];
                    aa7 = aa7 * corra + pa * v7;
                    ab7 = ab7 * corrb + pb * v7;
                    let v8 = v_tile[kb + 8u];
                    aa8 = aa8 * corra + pa * v8;
                    ab8 = ab8 * corrb + pb * v8;
                    let v9 = v_tile[kb + 9u];
                    aa9 = aa9 * corra + pa * v9;
                    ab9 = ab9 * corrb + pb * v9;
                    let v10 = v_tile[kb + 10u];
                    aa10 = aa10 * corra + pa * v10;
                    ab10 = ab10 * corrb + pb * v10;
                    let v11 = v_tile[kb + 11u];
                    aa11 = aa11 * corra + pa * v11;
                    ab11 = ab11 * corrb + pb * v11;
                    let v12 = v_tile[kb + 12u];
                    aa12 = aa12 * corra + pa * v12;
                    ab12 = ab12 * corrb + pb * v12;
                    let v13 = v_tile[kb + 13u];
                    aa13 = aa13 * corra + pa * v13;
                    ab13 = ab13 * corrb + pb * v13;
                    let v14 = v_tile[kb + 14u];
                    aa14 = aa14 * corra + pa * v14;
                    ab14 = ab14 * corrb + pb * v14;
                    let v15 = v_tile[kb + 15u];
                    aa15 = aa15 * corra + pa * v15;
                    ab15 = ab15 * corrb + pb * v15;
                    m = ma;
                    mb = mbn;
                }
            }
            workgroupBarrier();
        }
        if (va) {
            let oba = token(win, i) * params.out_stride + head * params.hd;
            let inva = 1.0 / l;
            store4(oba + 0u, aa0 * inva);
            store4(oba + 4u, aa1 * inva);
            store4(oba + 8u, aa2 * inva);
            store4(oba + 12u, aa3 * inva);
            store4(oba + 16u, aa4 * inva);
            store4(oba + 20u, aa5 * inva);
            store4(oba + 24u, aa6 * inva);
            store4(oba + 28u, aa7 * inva);
            store4(oba + 32u, aa8 * inva);
            store4(oba + 36u, aa9 * inva);
            store4(oba + 40u, aa10 * inva);
            store4(oba + 44u, aa11 * inva);
            store4(oba + 48u, aa12 * inva);
            store4(oba + 52u, aa13 * inva);
            store4(oba + 56u, aa14 * inva);
            store4(oba + 60u, aa15 * inva);
        }
        if (vb) {
            let obb = token(win, ib) * params.out_stride + head * params.hd;
            let invb = 1.0 / lb;
            store4(obb + 0u, ab0 * invb);
            store4(obb + 4u, ab1 * invb);
            store4(obb + 8u, ab2 * invb);
            store4(obb + 12u, ab3 * invb);
            store4(obb + 16u, ab4 * invb);
            store4(obb + 20u, ab5 * invb);
            store4(obb + 24u, ab6 * invb);
            store4(obb + 28u, ab7 * invb);
            store4(obb + 32u, ab8 * invb);
            store4(obb + 36u, ab9 * invb);
            store4(obb + 40u, ab10 * invb);
            store4(obb + 44u, ab11 * invb);
            store4(obb + 48u, ab12 * invb);
            store4(obb + 52u, ab13 * invb);
            store4(obb + 56u, ab14 * invb);
            store4(obb + 60u, ab15 * invb);
        }
        return;
    }
    if (hd4 == 8u) {
        var q0 = vec4<f32>(0.0);
        var a0 = vec4<f32>(0.0);
        var q1 = vec4<f32>(0.0);
        var a1 = vec4<f32>(0.0);
        var q2 = vec4<f32>(0.0);
        var a2 = vec4<f32>(0.0);
        var q3 = vec4<f32>(0.0);
        var a3 = vec4<f32>(0.0);
        var q4 = vec4<f32>(0.0);
        var a4 = vec4<f32>(0.0);
        var q5 = vec4<f32>(0.0);
        var a5 = vec4<f32>(0.0);
        var q6 = vec4<f32>(0.0);
        var a6 = vec4<f32>(0.0);
        var q7 = vec4<f32>(0.0);
        var a7 = vec4<f32>(0.0);
        if (i < n) {
            let qb = token(win, i) * params.qkv_stride + hbase;
            q0 = load4(qb + 0u) * params.scale;
            q1 = load4(qb + 4u) * params.scale;
            q2 = load4(qb + 8u) * params.scale;
            q3 = load4(qb + 12u) * params.scale;
            q4 = load4(qb + 16u) * params.scale;
            q5 = load4(qb + 20u) * params.scale;
            q6 = load4(qb + 24u) * params.scale;
            q7 = load4(qb + 28u) * params.scale;
        }
        for (var j0 = 0u; j0 < n; j0 += CH) {
            stage(j0, li, hd4, win, hbase, n);
            workgroupBarrier();
            if (i < n) {
                let cnt = min(CH, n - j0);
                for (var jj = 0u; jj < cnt; jj++) {
                    let kb = jj * HD4MAX;
                    let sv = q0 * k_tile[kb + 0u] + q1 * k_tile[kb + 1u] + q2 * k_tile[kb + 2u] + q3 * k_tile[kb + 3u] + q4 * k_tile[kb + 4u] + q5 * k_tile[kb + 5u] + q6 * k_tile[kb + 6u] + q7 * k_tile[kb + 7u];
                    let s = sv.x + sv.y + sv.z + sv.w + bias_of(head, n, ri, ci, j0 + jj);
                    let m_new = max(m, s);
                    let corr = exp(m - m_new);
                    let p = exp(s - m_new);
                    l = l * corr + p;
                    a0 = a0 * corr + p * v_tile[kb + 0u];
                    a1 = a1 * corr + p * v_tile[kb + 1u];
                    a2 = a2 * corr + p * v_tile[kb + 2u];
                    a3 = a3 * corr + p * v_tile[kb + 3u];
                    a4 = a4 * corr + p * v_tile[kb + 4u];
                    a5 = a5 * corr + p * v_tile[kb + 5u];
                    a6 = a6 * corr + p * v_tile[kb + 6u];
                    a7 = a7 * corr + p * v_tile[kb + 7u];
                    m = m_new;
                }
            }
            workgroupBarrier();
        }
        if (i < n) {
            let ob = token(win, i) * params.out_stride + head * params.hd;
            let inv = 1.0 / l;
            store4(ob + 0u, a0 * inv);
            store4(ob + 4u, a1 * inv);
            store4(ob + 8u, a2 * inv);
            store4(ob + 12u, a3 * inv);
            store4(ob + 16u, a4 * inv);
            store4(ob + 20u, a5 * inv);
            store4(ob + 24u, a6 * inv);
            store4(ob + 28u, a7 * inv);
        }
        return;
    }
    if (hd4 == 16u) {
        var q0 = vec4<f32>(0.0);
        var a0 = vec4<f32>(0.0);
        var q1 = vec4<f32>(0.0);
        var a1 = vec4<f32>(0.0);
        var q2 = vec4<f32>(0.0);
        var a2 = vec4<f32>(0.0);
        var q3 = vec4<f32>(0.0);
        var a3 = vec4<f32>(0.0);
        var q4 = vec4<f32>(0.0);
        var a4 = vec4<f32>(0.0);
        var q5 = vec4<f32>(0.0);
        var a5 = vec4<f32>(0.0);
        var q6 = vec4<f32>(0.0);
        var a6 = vec4<f32>(0.0);
        var q7 = vec4<f32>(0.0);
        var a7 = vec4<f32>(0.0);
        var q8 = vec4<f32>(0.0);
        var a8 = vec4<f32>(0.0);
        var q9 = vec4<f32>(0.0);
        var a9 = vec4<f32>(0.0);
        var q10 = vec4<f32>(0.0);
        var a10 = vec4<f32>(0.0);
        var q11 = vec4<f32>(0.0);
        var a11 = vec4<f32>(0.0);
        var q12 = vec4<f32>(0.0);
        var a12 = vec4<f32>(0.0);
        var q13 = vec4<f32>(0.0);
        var a13 = vec4<f32>(0.0);
        var q14 = vec4<f32>(0.0);
        var a14 = vec4<f32>(0.0);
        var q15 = vec4<f32>(0.0);
        var a15 = vec4<f32>(0.0);
        if (i < n) {
            let qb = token(win, i) * params.qkv_stride + hbase;
            q0 = load4(qb + 0u) * params.scale;
            q1 = load4(qb + 4u) * params.scale;
            q2 = load4(qb + 8u) * params.scale;
            q3 = load4(qb + 12u) * params.scale;
            q4 = load4(qb + 16u) * params.scale;
            q5 = load4(qb + 20u) * params.scale;
            q6 = load4(qb + 24u) * params.scale;
            q7 = load4(qb + 28u) * params.scale;
            q8 = load4(qb + 32u) * params.scale;
            q9 = load4(qb + 36u) * params.scale;
            q10 = load4(qb + 40u) * params.scale;
            q11 = load4(qb + 44u) * params.scale;
            q12 = load4(qb + 48u) * params.scale;
            q13 = load4(qb + 52u) * params.scale;
            q14 = load4(qb + 56u) * params.scale;
            q15 = load4(qb + 60u) * params.scale;
        }
        for (var j0 = 0u; j0 < n; j0 += CH) {
            stage(j0, li, hd4, win, hbase, n);
            workgroupBarrier();
            if (i < n) {
                let cnt = min(CH, n - j0);
                for (var jj = 0u; jj < cnt; jj++) {
                    let kb = jj * HD4MAX;
                    let sv = q0 * k_tile[kb + 0u] + q1 * k_tile[kb + 1u] + q2 * k_tile[kb + 2u] + q3 * k_tile[kb + 3u] + q4 * k_tile[kb + 4u] + q5 * k_tile[kb + 5u] + q6 * k_tile[kb + 6u] + q7 * k_tile[kb + 7u] + q8 * k_tile[kb + 8u] + q9 * k_tile[kb + 9u] + q10 * k_tile[kb + 10u] + q11 * k_tile[kb + 11u] + q12 * k_tile[kb + 12u] + q13 * k_tile[kb + 13u] + q14 * k_tile[kb + 14u] + q15 * k_tile[kb + 15u];
                    let s = sv.x + sv.y + sv.z + sv.w + bias_of(head, n, ri, ci, j0 + jj);
                    let m_new = max(m, s);
                    let corr = exp(m - m_new);
                    let p = exp(s - m_new);
                    l = l * corr + p;
                    a0 = a0 * corr + p * v_tile[kb + 0u];
                    a1 = a1 * corr + p * v_tile[kb + 1u];
                    a2 = a2 * corr + p * v_tile[kb + 2u];
                    a3 = a3 * corr + p * v_tile[kb + 3u];
                    a4 = a4 * corr + p * v_tile[kb + 4u];
                    a5 = a5 * corr + p * v_tile[kb + 5u];
                    a6 = a6 * corr + p * v_tile[kb + 6u];
                    a7 = a7 * corr + p * v_tile[kb + 7u];
                    a8 = a8 * corr + p * v_tile[kb + 8u];
                    a9 = a9 * corr + p * v_tile[kb + 9u];
                    a10 = a10 * corr + p * v_tile[kb + 10u];
                    a11 = a11 * corr + p * v_tile[kb + 11u];
                    a12 = a12 * corr + p * v_tile[kb + 12u];
                    a13 = a13 * corr + p * v_tile[kb + 13u];
                    a14 = a14 * corr + p * v_tile[kb + 14u];
                    a15 = a15 * corr + p * v_tile[kb + 15u];
                    m = m_new;
                }
            }
            workgroupBarrier();
        }
        if (i < n) {
            let ob = token(win, i) * params.out_stride + head * params.hd;
            let inv = 1.0 / l;
            store4(ob + 0u, a0 * inv);
            store4(ob + 4u, a1 * inv);
            store4(ob + 8u, a2 * inv);
            store4(ob + 12u, a3 * inv);
            store4(ob + 16u, a4 * inv);
            store4(ob + 20u, a5 * inv);
            store4(ob + 24u, a6 * inv);
            store4(ob + 28u, a7 * inv);
            store4(ob + 32u, a8 * inv);
            store4(ob + 36u, a9 * inv);
            store4(ob + 40u, a10 * inv);
            store4(ob + 44u, a11 * inv);
            store4(ob + 48u, a12 * inv);
            store4(ob + 52u, a13 * inv);
            store4(ob + 56u, a14 * inv);
            store4(ob + 60u, a15 * inv);
        }
        return;
    }
    // END unrolled paths
    var q: array<vec4<f32>, 16>;
    var acc: array<vec4<f32>, 16>;
    if (i < n) {
        let qb = token(win, i) * params.qkv_stride + hbase;
        for (var d = 0u; d < hd4; d++) {
            q[d] = load4(qb + 4u * d) * params.scale;
            acc[d] = vec4<f32>(0.0);
        }
    }

    for (var j0 = 0u; j0 < n; j0 += CH) {
        stage(j0, li, hd4, win, hbase, n);
        workgroupBarrier();
        if (i < n) {
            let cnt = min(CH, n - j0);
            for (var jj = 0u; jj < cnt; jj++) {
                var sv = vec4<f32>(0.0);
                for (var d = 0u; d < hd4; d++) {
                    sv += q[d] * k_tile[jj * HD4MAX + d];
                }
                let s = sv.x + sv.y + sv.z + sv.w + bias_of(head, n, ri, ci, j0 + jj);
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
            store4(ob + 4u * d, acc[d] * inv);
        }
    }
}
