// dice_loss: the soft Dice losses of a 2-class segmentation batch on softmax probabilities, and their gradient
// w.r.t. the logits. Logits [rows, 2] (one row per pixel of every image in the batch), labels [rows] in {0, 1}
// (a label ≥ 2 marks a pixel to ignore). Sums run over the whole batch, as MedCAL's DiceLoss does.
//   mode 0, MedCAL (METHODS §4.1): L = mean_c 1 − (2·Σ p_c·y_c + ε) / (Σ p_c² + Σ y_c² + ε)
//   mode 1, FM-ABS noise-robust (METHODS §6.3): L = mean_c Σ |p_c − y_c|^γ / (Σ (p_c + y_c) + ε)
// with ε = 1e-5. Three dispatches of this kernel (`phase`), deterministic, no atomics:
//   phase 0: workgroup g reduces rows [g·CHUNK, (g+1)·CHUNK) to six partial sums → sums[g·8 + 0..6];
//   phase 1: one workgroup adds the `groups` partials → sums[groups·8 + 0..6] and the loss → sums[groups·8 + 6];
//   phase 2: one thread per row: grad = scale · dL/dz from the totals (dp₁/dz₁ = p₀·p₁ = −dp₁/dz₀).

// Kept in sync with kernels/src/gpu/params.rs `DiceLossParams`.
struct Params {
    rows: u32,
    phase: u32,
    mode: u32,
    groups: u32,
    gamma: f32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;     // [rows, 2]
@group(0) @binding(2) var<storage, read> labels: array<u32>;     // [rows]
@group(0) @binding(3) var<storage, read_write> sums: array<f32>; // [(groups + 1) · 8]
@group(0) @binding(4) var<storage, read_write> grad: array<f32>; // [rows, 2]

const WG: u32 = 256u;
const CHUNK: u32 = 4096u;
const EPS: f32 = 1e-5;

var<workgroup> red: array<array<f32, 6>, 256>;

// Foreground probability softmax(z)[1] = σ(z₁ − z₀), stable for large |z₁ − z₀|.
fn p1_of(r: u32) -> f32 {
    let t = logits[2u * r + 1u] - logits[2u * r];
    return select(exp(t) / (1.0 + exp(t)), 1.0 / (1.0 + exp(-t)), t >= 0.0);
}

fn powg(a: f32) -> f32 {
    return select(0.0, pow(a, params.gamma), a > 0.0);
}

// The six per-row terms of the selected mode.
fn terms(r: u32) -> array<f32, 6> {
    let p1 = p1_of(r);
    let p0 = 1.0 - p1;
    let y1 = f32(labels[r] == 1u);
    let y0 = 1.0 - y1;
    if (params.mode == 0u) {
        return array<f32, 6>(p0 * y0, p1 * y1, p0 * p0, p1 * p1, y0, y1);
    }
    return array<f32, 6>(powg(abs(p0 - y0)), powg(abs(p1 - y1)), p0 + y0, p1 + y1, 0.0, 0.0);
}

fn reduce_workgroup(li: u32) {
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (li < s) {
            for (var k = 0u; k < 6u; k++) {
                red[li][k] += red[li + s][k];
            }
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let g = wid.y * nwg.x + wid.x;
    let tot = params.groups * 8u;
    if (params.phase == 0u) {
        var acc = array<f32, 6>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let end = min(params.rows, (g + 1u) * CHUNK);
        for (var r = g * CHUNK + li; r < end; r += WG) {
            if (labels[r] < 2u) {
                let t = terms(r);
                for (var k = 0u; k < 6u; k++) {
                    acc[k] += t[k];
                }
            }
        }
        red[li] = acc;
        reduce_workgroup(li);
        if (li == 0u && g < params.groups) {
            for (var k = 0u; k < 6u; k++) {
                sums[g * 8u + k] = red[0][k];
            }
        }
    } else if (params.phase == 1u) {
        var acc = array<f32, 6>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (var i = li; i < params.groups; i += WG) {
            for (var k = 0u; k < 6u; k++) {
                acc[k] += sums[i * 8u + k];
            }
        }
        red[li] = acc;
        reduce_workgroup(li);
        if (li == 0u && g == 0u) {
            let s = red[0];
            for (var k = 0u; k < 6u; k++) {
                sums[tot + k] = s[k];
            }
            var loss = 0.0;
            if (params.mode == 0u) {
                loss = 0.5 * ((1.0 - (2.0 * s[0] + EPS) / (s[2] + s[4] + EPS)) + (1.0 - (2.0 * s[1] + EPS) / (s[3] + s[5] + EPS)));
            } else {
                loss = 0.5 * (s[0] / (s[2] + EPS) + s[1] / (s[3] + EPS));
            }
            sums[tot + 6u] = loss;
        }
    } else {
        let r = g * WG + li;
        if (r >= params.rows) {
            return;
        }
        if (labels[r] >= 2u) {
            grad[2u * r] = 0.0;
            grad[2u * r + 1u] = 0.0;
            return;
        }
        let p1 = p1_of(r);
        let p0 = 1.0 - p1;
        let y1 = f32(labels[r] == 1u);
        let y0 = 1.0 - y1;
        var g0 = 0.0;
        var g1 = 0.0;
        if (params.mode == 0u) {
            // d/dp [1 − (2I + ε)/(S + ε)] = −(2y·(S + ε) − (2I + ε)·2p) / (S + ε)², halved for the class mean.
            let s0 = sums[tot + 2u] + sums[tot + 4u] + EPS;
            let s1 = sums[tot + 3u] + sums[tot + 5u] + EPS;
            let i0 = 2.0 * sums[tot] + EPS;
            let i1 = 2.0 * sums[tot + 1u] + EPS;
            g0 = -0.5 * (2.0 * y0 * s0 - i0 * 2.0 * p0) / (s0 * s0);
            g1 = -0.5 * (2.0 * y1 * s1 - i1 * 2.0 * p1) / (s1 * s1);
        } else {
            // d/dp [N/(M + ε)] = (γ·|p − y|^(γ−1)·sign(p − y)·(M + ε) − N) / (M + ε)², halved.
            let m0 = sums[tot + 2u] + EPS;
            let m1 = sums[tot + 3u] + EPS;
            let d0 = p0 - y0;
            let d1 = p1 - y1;
            let e0 = params.gamma * select(0.0, pow(abs(d0), params.gamma - 1.0), abs(d0) > 0.0) * sign(d0);
            let e1 = params.gamma * select(0.0, pow(abs(d1), params.gamma - 1.0), abs(d1) > 0.0) * sign(d1);
            g0 = 0.5 * (e0 * m0 - sums[tot]) / (m0 * m0);
            g1 = 0.5 * (e1 * m1 - sums[tot + 1u]) / (m1 * m1);
        }
        let dz1 = params.scale * p0 * p1 * (g1 - g0);
        grad[2u * r] = -dz1;
        grad[2u * r + 1u] = dz1;
    }
}
