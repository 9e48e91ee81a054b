// softmax_mse: the mean teacher's consistency loss, per row of student logits z and teacher logits zt
// [rows, classes]: p = softmax(z), q = softmax(zt), loss[r] = Σ_c (p_c − q_c)², and its gradient w.r.t. the
// student logits only (the teacher is a constant): dz_k = scale · 2·p_k·((p_k − q_k) − Σ_c (p_c − q_c)·p_c).
// One thread per row; softmax with max subtraction.

// Kept in sync with kernels/src/gpu/params.rs `SoftmaxMseParams`.
struct Params {
    rows: u32,
    classes: u32,
    scale: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;            // [rows, classes] student logits
@group(0) @binding(2) var<storage, read> zt: array<f32>;           // [rows, classes] teacher logits
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;   // [rows]
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;     // [rows, classes]

const WG: u32 = 64u;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * WG + li;
    if (r >= params.rows) {
        return;
    }
    let c = params.classes;
    let base = r * c;
    var ms = z[base];
    var mt = zt[base];
    for (var k = 1u; k < c; k++) {
        ms = max(ms, z[base + k]);
        mt = max(mt, zt[base + k]);
    }
    var ss = 0.0;
    var st = 0.0;
    for (var k = 0u; k < c; k++) {
        ss += exp(z[base + k] - ms);
        st += exp(zt[base + k] - mt);
    }
    var l = 0.0;
    var dot = 0.0;
    for (var k = 0u; k < c; k++) {
        let p = exp(z[base + k] - ms) / ss;
        let d = p - exp(zt[base + k] - mt) / st;
        l += d * d;
        dot += d * p;
    }
    for (var k = 0u; k < c; k++) {
        let p = exp(z[base + k] - ms) / ss;
        let d = p - exp(zt[base + k] - mt) / st;
        dz[base + k] = params.scale * 2.0 * p * (d - dot);
    }
    loss[r] = l;
}
