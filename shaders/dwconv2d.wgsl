// dwconv2d: depthwise convolution, channels-last. Y[oy,ox,c] = b[c] + Σ_{ky,kx} X[oy·s − p + ky, ox·s − p + kx, c]
// · W[c, ky, kx] (zero padding). X [H,W,C], W [C,k,k] (PyTorch's [C,1,k,k]), Y [Ho,Wo,C]. One thread per channel
// and run of four outputs along x (consecutive threads: consecutive channels, so every load is coalesced): the
// k×k weights are read once per four outputs and, for the 3×3 stride-1 convolutions of TinyViT, each input row
// is read once as six values shared by the four outputs (18 input loads for 4 outputs instead of 36).

// Kept in sync with kernels/src/gpu/params.rs `Dwconv2dParams`.
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
const OX: u32 = 4u;  // outputs along x per thread

// X[iy, ix, ch], 0 outside the image (iy is known to be inside).
fn ld(row: u32, ix: i32, ch: u32) -> f32 {
    if (ix < 0 || ix >= i32(params.w)) {
        return 0.0;
    }
    return x[(row + u32(ix)) * params.c + ch];
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    let runs = (params.wo + OX - 1u) / OX;
    if (i >= params.ho * runs * params.c) {
        return;
    }
    let ch = i % params.c;
    let p = i / params.c;
    let ox0 = (p % runs) * OX;
    let oy = p / runs;
    let b = bias[ch];
    var acc = vec4<f32>(b, b, b, b);  // outputs ox0 .. ox0 + 3
    let pad = i32(params.pad);
    for (var ky = 0u; ky < params.k; ky++) {
        let iy = i32(oy * params.stride + ky) - pad;
        if (iy < 0 || iy >= i32(params.h)) {
            continue;
        }
        let row = u32(iy) * params.w;
        let wrow = (ch * params.k + ky) * params.k;
        if (params.k == 3u && params.stride == 1u) {
            let ix = i32(ox0) - pad;
            let x0 = ld(row, ix, ch);
            let x1 = ld(row, ix + 1, ch);
            let x2 = ld(row, ix + 2, ch);
            let x3 = ld(row, ix + 3, ch);
            let x4 = ld(row, ix + 4, ch);
            let x5 = ld(row, ix + 5, ch);
            let w0 = wt[wrow];
            let w1 = wt[wrow + 1u];
            let w2 = wt[wrow + 2u];
            acc += vec4<f32>(x0, x1, x2, x3) * w0 + vec4<f32>(x1, x2, x3, x4) * w1 + vec4<f32>(x2, x3, x4, x5) * w2;
        } else {
            for (var kx = 0u; kx < params.k; kx++) {
                let wv = wt[wrow + kx];
                let ix = i32(ox0 * params.stride + kx) - pad;
                let s = i32(params.stride);
                acc += vec4<f32>(ld(row, ix, ch), ld(row, ix + s, ch), ld(row, ix + 2 * s, ch), ld(row, ix + 3 * s, ch)) * wv;
            }
        }
    }
    let o = (oy * params.wo + ox0) * params.c + ch;
    y[o] = acc.x;
    if (ox0 + 1u < params.wo) {
        y[o + params.c] = acc.y;
    }
    if (ox0 + 2u < params.wo) {
        y[o + 2u * params.c] = acc.z;
    }
    if (ox0 + 3u < params.wo) {
        y[o + 3u * params.c] = acc.w;
    }
}
