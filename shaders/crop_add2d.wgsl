// crop_add2d: residual add of the top-left H×W crop of a padded channels-last image. Y[y,x,c] += X[y,x,c] for
// y < H, x < W, with X [Hp,Wp,C] (Hp ≥ H, Wp ≥ W) and Y [H,W,C]; Hp = H, Wp = W is a plain elementwise add.

// Kept in sync with kernels/src/gpu/params.rs `CropAdd2dParams`.
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
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [Hp, Wp, C]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // [H, W, C]

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i >= params.h * params.w * params.c) {
        return;
    }
    let ch = i % params.c;
    let p = i / params.c;
    let px = p % params.w;
    let py = p / params.w;
    y[i] += x[(py * params.wp + px) * params.c + ch];
}
