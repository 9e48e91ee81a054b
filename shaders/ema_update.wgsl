// ema_update: the mean teacher's exponential moving average, in place: t ← α·t + (1 − α)·s over n parameters
// (α_t = min(1 − 1/(t + 1), 0.99) in FM-ABS, chosen by the caller).

// Kept in sync with kernels/src/gpu/params.rs `EmaUpdateParams`.
struct Params {
    n: u32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> t: array<f32>;   // [N] teacher
@group(0) @binding(2) var<storage, read> s: array<f32>;         // [N] student

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
    t[i] = params.alpha * t[i] + (1.0 - params.alpha) * s[i];
}
