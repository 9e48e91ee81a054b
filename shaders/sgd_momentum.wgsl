// sgd_momentum: one SGD step with momentum in place, as torch.optim.SGD (dampening 0, not Nesterov; the
// buffer starts at 0, so the first step stores g as PyTorch does): g' = g + wd·p; b ← μ·b + g'; p ← p − lr·b.

// Kept in sync with kernels/src/gpu/params.rs `SgdMomentumParams`.
struct Params {
    n: u32,
    lr: f32,
    momentum: f32,
    wd: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i >= params.n) {
        return;
    }
    let gi = g[i] + params.wd * p[i];
    let bi = params.momentum * b[i] + gi;
    b[i] = bi;
    p[i] = p[i] - params.lr * bi;
}
