// pad2d: zero-pad a channels-last image at the bottom and right. Y[y,x,c] = X[y,x,c] if y < H and x < W, else 0.
// X [H,W,C], Y [Hp,Wp,C] with Hp ≥ H, Wp ≥ W. One thread per output value.

// Kept in sync with kernels/src/gpu/params.rs `Pad2dParams`.
struct Params {
    h: u32,
    w: u32,
    c: u32,
    hp: u32,
    wp: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [H, W, C]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // [Hp, Wp, C]

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i >= params.hp * params.wp * params.c) {
        return;
    }
    let ch = i % params.c;
    let p = i / params.c;
    let px = p % params.wp;
    let py = p / params.wp;
    var v = 0.0;
    if (py < params.h && px < params.w) {
        v = x[(py * params.w + px) * params.c + ch];
    }
    y[i] = v;
}
