// softmax_xent: fused softmax cross-entropy with label smoothing, forward and backward in one pass. For row r
// of logits [rows, classes] with label y: p = softmax(z), target t = (1 − ε)·onehot(y) + ε/classes,
// loss[r] = −Σ t·log p, dlogits[r] = scale·(p − t) (scale = 1/rows for a batch mean). A label ≥ classes
// marks a row to ignore: loss 0, gradient 0. One thread per row; log-sum-exp with max subtraction.

// Kept in sync with kernels/src/gpu/params.rs `SoftmaxXentParams`.
struct Params {
    rows: u32,
    classes: u32,
    smoothing: f32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;          // [rows, classes]
@group(0) @binding(2) var<storage, read> labels: array<u32>;          // [rows]
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;      // [rows]
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;   // [rows, classes]

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
    let y = labels[r];
    if (y >= c) {
        loss[r] = 0.0;
        for (var k = 0u; k < c; k++) {
            dlogits[base + k] = 0.0;
        }
        return;
    }
    var m = logits[base];
    for (var k = 1u; k < c; k++) {
        m = max(m, logits[base + k]);
    }
    var z = 0.0;
    for (var k = 0u; k < c; k++) {
        z += exp(logits[base + k] - m);
    }
    let lse = m + log(z);
    let off = params.smoothing / f32(c);
    var l = 0.0;
    for (var k = 0u; k < c; k++) {
        let t = select(off, 1.0 - params.smoothing + off, k == y);
        let logp = logits[base + k] - lse;
        l -= t * logp;
        dlogits[base + k] = params.scale * (exp(logp) - t);
    }
    loss[r] = l;
}
