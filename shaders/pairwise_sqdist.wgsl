// pairwise_sqdist: D[i,j] = max(‖a_i‖² + ‖b_j‖² − 2·a_i·b_j, 0) for A [N,D], B [M,D]. The same tiling as matmul
// (A·Bᵀ, 128×64 tiles, 8×4 per thread); the squared norms are accumulated from the same workgroup tiles, so one
// pass reads A and B once.

// Kept in sync with kernels/src/gpu/params.rs `PairwiseSqdistParams`.
struct Params {
    n: u32,
    m: u32,
    d: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;          // [N, D] row-major
@group(0) @binding(2) var<storage, read> b: array<f32>;          // [M, D] row-major
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [N, M]

const TM: u32 = 128u;
const TN: u32 = 64u;
const TK: u32 = 16u;
const VA: u32 = 32u;
const VB: u32 = 16u;

var<workgroup> a_tile: array<vec4<f32>, 512>;   // [TK][TM/4]
var<workgroup> b_tile: array<vec4<f32>, 256>;   // [TK][TN/4]

fn load_a(r: u32, k: u32) -> f32 {
    if (r < params.n && k < params.d) {
        return a[r * params.d + k];
    }
    return 0.0;
}

fn load_b(r: u32, k: u32) -> f32 {
    if (r < params.m && k < params.d) {
        return b[r * params.d + k];
    }
    return 0.0;
}

// Row r of D, columns col..col+3: ‖a_r‖² + ‖b_col..‖² − 2·dot, clamped at 0.
fn store_row(r: u32, col: u32, na: f32, nb: vec4<f32>, dot: vec4<f32>) {
    if (r >= params.n) {
        return;
    }
    let v = max(vec4<f32>(na) + nb - 2.0 * dot, vec4<f32>(0.0));
    for (var j = 0u; j < 4u; j++) {
        if (col + j < params.m) {
            out[r * params.m + col + j] = v[j];
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wid.y * TM;
    let col0 = wid.x * TN;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var na0 = vec4<f32>(0.0);   // ‖a‖² of rows 8·ty .. +3
    var na1 = vec4<f32>(0.0);   // rows 8·ty + 4 .. +7
    var nb = vec4<f32>(0.0);    // ‖b‖² of columns 4·tx .. +3

    // As in matmul.wgsl: a thread whose 8×4 block lies wholly outside D skips the arithmetic, so a scan of a few
    // rows (k-means++ trials) against the pool costs its size, not whole 128-row tiles.
    let inside = row0 + 8u * lid.y < params.n && col0 + 4u * lid.x < params.m;

    for (var t = 0u; t < params.d; t += TK) {
        for (var e = 0u; e < 2u; e++) {
            let s = li + 256u * e;
            let kk = t + s / VA;
            let r = row0 + 4u * (s % VA);
            a_tile[s] = vec4<f32>(load_a(r, kk), load_a(r + 1u, kk), load_a(r + 2u, kk), load_a(r + 3u, kk));
        }
        let kb = t + li / VB;
        let cb = col0 + 4u * (li % VB);
        b_tile[li] = vec4<f32>(load_b(cb, kb), load_b(cb + 1u, kb), load_b(cb + 2u, kb), load_b(cb + 3u, kb));
        workgroupBarrier();
        if (inside) {
            for (var kk = 0u; kk < TK; kk++) {
                let a0 = a_tile[kk * VA + 2u * lid.y];
                let a1 = a_tile[kk * VA + 2u * lid.y + 1u];
                let bv = b_tile[kk * VB + lid.x];
                na0 += a0 * a0;
                na1 += a1 * a1;
                nb += bv * bv;
                acc0 += a0.x * bv;
                acc1 += a0.y * bv;
                acc2 += a0.z * bv;
                acc3 += a0.w * bv;
                acc4 += a1.x * bv;
                acc5 += a1.y * bv;
                acc6 += a1.z * bv;
                acc7 += a1.w * bv;
            }
        }
        workgroupBarrier();
    }

    let col = col0 + 4u * lid.x;
    let r0 = row0 + 8u * lid.y;
    store_row(r0, col, na0.x, nb, acc0);
    store_row(r0 + 1u, col, na0.y, nb, acc1);
    store_row(r0 + 2u, col, na0.z, nb, acc2);
    store_row(r0 + 3u, col, na0.w, nb, acc3);
    store_row(r0 + 4u, col, na1.x, nb, acc4);
    store_row(r0 + 5u, col, na1.y, nb, acc5);
    store_row(r0 + 6u, col, na1.z, nb, acc6);
    store_row(r0 + 7u, col, na1.w, nb, acc7);
}
