// dwconv2d: depthwise convolution, channels-last. Y[oy,ox,c] = b[c] + Σ_{ky,kx} X[oy·s − p + ky, ox·s − p + kx, c]
// · W[c, ky, kx] (zero padding). X [H,W,C], W [C,k,k] (PyTorch's [C,1,k,k]), Y [Ho,Wo,C]. One thread per output.

// Kept in sync with core/src/gpu/params.rs `Dwconv2dParams`.
struct Params {
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    stride: u32,
    pad: u32,
    ho: u32,
    wo: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [H, W, C]
@group(0) @binding(2) var<storage, read> wt: array<f32>;         // [C, k, k]
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [C]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [Ho, Wo, C]

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i >= params.ho * params.wo * params.c) {
        return;
    }
    let ch = i % params.c;
    let p = i / params.c;
    let ox = p % params.wo;
    let oy = p / params.wo;
    var acc = bias[ch];
    for (var ky = 0u; ky < params.k; ky++) {
        let iy = i32(oy * params.stride + ky) - i32(params.pad);
        if (iy < 0 || iy >= i32(params.h)) {
            continue;
        }
        for (var kx = 0u; kx < params.k; kx++) {
            let ix = i32(ox * params.stride + kx) - i32(params.pad);
            if (ix < 0 || ix >= i32(params.w)) {
                continue;
            }
            acc += x[(u32(iy) * params.w + u32(ix)) * params.c + ch] * wt[(ch * params.k + ky) * params.k + kx];
        }
    }
    y[i] = acc;
}
