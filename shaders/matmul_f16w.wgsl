// matmul_f16w: C[M,N] = A[M,K] · op(B) (+ bias[N]) with B stored in f16 (half the memory and bandwidth of the
// weights) and A, bias, C and all accumulation in f32. Same tiling and operand layouts as matmul.wgsl (trans_b = 1:
// B stored [N,K], PyTorch Linear weights); only B's loads differ (f16 → f32 on load). Needs the `shader-f16`
// feature; medpick uses it only for model weights and only where the device grants the feature.
// The body below mirrors matmul.wgsl line for line (WGSL has no generics or includes): change both together;
// both are tested against their CPU twins on the same cases.

enable f16;

// Kept in sync with kernels/src/gpu/params.rs `MatmulF16wParams` (checked by tests/tests/shaders.rs).
struct Params {
    m: u32,
    n: u32,
    k: u32,
    trans_b: u32,
    use_bias: u32,
    splits: u32,   // 1: whole K; > 1: workgroup z sums K range [z·k_chunk, (z+1)·k_chunk) (split-K)
    k_chunk: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;          // [M, K] row-major
@group(0) @binding(2) var<storage, read> b: array<f16>;          // [K, N] or, with trans_b, [N, K]; f16
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [N]; read only when use_bias == 1
@group(0) @binding(4) var<storage, read_write> c: array<f32>;    // [M, N]; split-K: partials [M·N, splits]

const TM: u32 = 128u;  // output tile rows
const TN: u32 = 64u;   // output tile columns
const TK: u32 = 16u;   // K-tile depth
const VA: u32 = 32u;   // vec4 groups per tile column (TM / 4)
const VB: u32 = 16u;   // vec4 groups per tile row (TN / 4)

// K-major tiles: a_tile[kk·32 + q] holds rows 4q..4q+3 of the A tile at depth kk; b_tile[kk·16 + q] columns 4q..4q+3.
var<workgroup> a_tile: array<vec4<f32>, 512>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

// k_end: end of this workgroup's K range (params.k, or its chunk's end under split-K).
fn load_a(r: u32, kk: u32, k_end: u32) -> f32 {
    if (r < params.m && kk < k_end) {
        return a[r * params.k + kk];
    }
    return 0.0;
}

fn load_b(kk: u32, col: u32, k_end: u32) -> f32 {
    if (kk < k_end && col < params.n) {
        if (params.trans_b == 1u) {
            return f32(b[col * params.k + kk]);
        }
        return f32(b[kk * params.n + col]);
    }
    return 0.0;
}

// Rows r of C, columns col..col+3 (under split-K, partial z of each element: c[(r·N + col)·splits + z]).
fn store_row(r: u32, col: u32, v: vec4<f32>, z: u32) {
    if (r >= params.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (col + j < params.n) {
            c[(r * params.n + col + j) * params.splits + z] = v[j];
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

    // As in matmul.wgsl: a thread whose 8×4 block lies wholly outside C skips the FMAs.
    let inside = row0 + 8u * lid.y < params.m && col0 + 4u * lid.x < params.n;

    // Split-K: this workgroup's K range (the partials are summed by a second GEMM).
    let z = wid.z;
    let split = params.splits > 1u;
    let k_begin = select(0u, z * params.k_chunk, split);
    let k_end = select(params.k, min(params.k, k_begin + params.k_chunk), split);

    for (var t = k_begin; t < k_end; t += TK) {
        // A: 512 vec4 slots, 2 per thread (s = li + 256·e → depth s / 32, group s % 32); B: 256 slots, 1 per thread.
        for (var e = 0u; e < 2u; e++) {
            let s = li + 256u * e;
            let kk = t + s / VA;
            let r = row0 + 4u * (s % VA);
            a_tile[s] = vec4<f32>(load_a(r, kk, k_end), load_a(r + 1u, kk, k_end), load_a(r + 2u, kk, k_end), load_a(r + 3u, kk, k_end));
        }
        let kb = t + li / VB;
        let cb = col0 + 4u * (li % VB);
        b_tile[li] = vec4<f32>(load_b(kb, cb, k_end), load_b(kb, cb + 1u, k_end), load_b(kb, cb + 2u, k_end), load_b(kb, cb + 3u, k_end));
        workgroupBarrier();
        if (inside) {
            for (var kk = 0u; kk < TK; kk++) {
                let a0 = a_tile[kk * VA + 2u * lid.y];
                let a1 = a_tile[kk * VA + 2u * lid.y + 1u];
                let bv = b_tile[kk * VB + lid.x];
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
    var bias4 = vec4<f32>(0.0);
    if (params.use_bias == 1u && z == 0u) {
        for (var j = 0u; j < 4u; j++) {
            if (col + j < params.n) {
                bias4[j] = bias[col + j];
            }
        }
    }
    let r0 = row0 + 8u * lid.y;
    store_row(r0, col, acc0 + bias4, z);
    store_row(r0 + 1u, col, acc1 + bias4, z);
    store_row(r0 + 2u, col, acc2 + bias4, z);
    store_row(r0 + 3u, col, acc3 + bias4, z);
    store_row(r0 + 4u, col, acc4 + bias4, z);
    store_row(r0 + 5u, col, acc5 + bias4, z);
    store_row(r0 + 6u, col, acc6 + bias4, z);
    store_row(r0 + 7u, col, acc7 + bias4, z);
}
