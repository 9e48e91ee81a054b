// im2col_k3c4: `im2col` for 3×3 kernels (any stride and padding) on C % 4 == 0 channels, with vec4 loads and
// stores: Y[oy·Wo + ox, (c·3 + ky)·3 + kx] = X[oy·s − p + ky, ox·s − p + kx, c] (0 outside). One thread per
// (output position, group of 4 channels) reads the 9 taps as vec4s of 4 channels and writes the 4·9 consecutive
// values of Y as 9 vec4s, transposed in registers. For CPU adapters (llvmpipe loads and stores storage buffers lane
// by lane, a vec4 per trip): core runs it where it runs `matmul_regs4`, and `im2col` elsewhere.
// Written out for k = 3 (the tap and channel of every output are constants; llvmpipe keeps loop-indexed arrays
// in memory): regenerate with scripts/gen-regs-kernels.py.

// Kept in sync with kernels/src/gpu/params.rs `Im2colK3c4Params`.
struct Params {
    h: u32,
    w: u32,
    c: u32,
    k: u32,       // always 3 (checked by core)
    stride: u32,
    pad: u32,
    ho: u32,
    wo: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;        // [H, W, C], C % 4 == 0
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;  // [Ho·Wo, C·9]

const WG: u32 = 256u;

// The 4 channels at (iy, ix), or 0 outside the image (the load is clamped inside, so it never branches).
fn tap(iy: i32, ix: i32, cq: u32, g: u32) -> vec4<f32> {
    let inside = iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w);
    let cy = u32(clamp(iy, 0, i32(params.h) - 1));
    let cx = u32(clamp(ix, 0, i32(params.w) - 1));
    return select(vec4<f32>(0.0), x[(cy * params.w + cx) * cq + g], inside);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    let cq = params.c / 4u;
    if (i >= params.ho * params.wo * cq) {
        return;
    }
    let g = i % cq;
    let p = i / cq;
    let y0 = i32((p / params.wo) * params.stride) - i32(params.pad);
    let x0 = i32((p % params.wo) * params.stride) - i32(params.pad);
    let t0 = tap(y0 + 0, x0 + 0, cq, g);
    let t1 = tap(y0 + 0, x0 + 1, cq, g);
    let t2 = tap(y0 + 0, x0 + 2, cq, g);
    let t3 = tap(y0 + 1, x0 + 0, cq, g);
    let t4 = tap(y0 + 1, x0 + 1, cq, g);
    let t5 = tap(y0 + 1, x0 + 2, cq, g);
    let t6 = tap(y0 + 2, x0 + 0, cq, g);
    let t7 = tap(y0 + 2, x0 + 1, cq, g);
    let t8 = tap(y0 + 2, x0 + 2, cq, g);
    // Channels 4g .. 4g + 3 of position p fill 36 consecutive values: channel-major, then the 9 taps.
    let base = (p * cq + g) * 9u;
    y[base + 0u] = vec4<f32>(t0.x, t1.x, t2.x, t3.x);
    y[base + 1u] = vec4<f32>(t4.x, t5.x, t6.x, t7.x);
    y[base + 2u] = vec4<f32>(t8.x, t0.y, t1.y, t2.y);
    y[base + 3u] = vec4<f32>(t3.y, t4.y, t5.y, t6.y);
    y[base + 4u] = vec4<f32>(t7.y, t8.y, t0.z, t1.z);
    y[base + 5u] = vec4<f32>(t2.z, t3.z, t4.z, t5.z);
    y[base + 6u] = vec4<f32>(t6.z, t7.z, t8.z, t0.w);
    y[base + 7u] = vec4<f32>(t1.w, t2.w, t3.w, t4.w);
    y[base + 8u] = vec4<f32>(t5.w, t6.w, t7.w, t8.w);
}
