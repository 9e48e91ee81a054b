// im2col: unfold a channels-last image for a k×k convolution as a matmul. Y[oy·Wo + ox, (c·k + ky)·k + kx] =
// X[oy·s − p + ky, ox·s − p + kx, c] (0 outside), so Y · Wᵀ with PyTorch's weight [Cout, Cin, k, k] viewed as
// [Cout, Cin·k·k] is the convolution. X [H,W,C], Y [Ho·Wo, C·k·k]. One thread per (output position, channel)
// writes that channel's k·k values; neighbouring threads read neighbouring channels of one pixel.

// Kept in sync with kernels/src/gpu/params.rs `Im2colParams`.
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
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // [Ho·Wo, C·k·k]

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
    let kk = params.k * params.k;
    let base = p * params.c * kk + ch * kk;
    let y0 = i32((p / params.wo) * params.stride) - i32(params.pad);
    let x0 = i32((p % params.wo) * params.stride) - i32(params.pad);
    for (var ky = 0u; ky < params.k; ky++) {
        let iy = y0 + i32(ky);
        let row_in = iy >= 0 && iy < i32(params.h);
        for (var kx = 0u; kx < params.k; kx++) {
            let ix = x0 + i32(kx);
            var v = 0.0;
            if (row_in && ix >= 0 && ix < i32(params.w)) {
                v = x[(u32(iy) * params.w + u32(ix)) * params.c + ch];
            }
            y[base + ky * params.k + kx] = v;
        }
    }
}
