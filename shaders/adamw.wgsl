// adamw: one AdamW step in place, exactly as torch.optim.AdamW (decoupled weight decay, bias-corrected moments):
//   p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
//   p ← p − (lr / bc1) · m / (√v / √bc2 + eps),   bc1 = 1 − β1^t, bc2 = 1 − β2^t (given by the host).
// One thread per parameter.

// Kept in sync with kernels/src/gpu/params.rs `AdamwParams`.
struct Params {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    wd: f32,
    bc1: f32,
    bc2: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

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
    let gi = g[i];
    var pi = p[i] * (1.0 - params.lr * params.wd);
    let mi = params.beta1 * m[i] + (1.0 - params.beta1) * gi;
    let vi = params.beta2 * v[i] + (1.0 - params.beta2) * gi * gi;
    let denom = sqrt(vi) / sqrt(params.bc2) + params.eps;
    pi -= (params.lr / params.bc1) * mi / denom;
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
}
