// layernorm_backward: gradient through a LayerNorm without affine parameters (y = (x − μ)/σ over the last dim,
// σ = sqrt(biased var + eps), as layernorm.wgsl with weight 1 and bias 0):
//   dx = (dy − mean(dy) − ŷ·mean(dy·ŷ)) / σ,  ŷ = (x − μ)/σ,
// recomputing μ and σ from X. An affine LayerNorm's own weight folds into the layer that follows it, so the
// segmentation head uses this form. One thread per row (short rows, no barriers), as the forward kernel.

// Kept in sync with kernels/src/gpu/params.rs `LayernormBackwardParams`.
struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [R, D] the forward input
@group(0) @binding(2) var<storage, read> dy: array<f32>;         // [R, D] gradient of the forward output
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;   // [R, D]

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
    let d = params.d;
    let base = r * d;
    let inv_d = 1.0 / f32(d);
    var mean = 0.0;
    for (var j = 0u; j < d; j++) {
        mean += x[base + j];
    }
    mean *= inv_d;
    var var_ = 0.0;
    for (var j = 0u; j < d; j++) {
        let c = x[base + j] - mean;
        var_ += c * c;
    }
    let rstd = inverseSqrt(var_ * inv_d + params.eps);
    var mdy = 0.0;
    var mdyy = 0.0;
    for (var j = 0u; j < d; j++) {
        let g = dy[base + j];
        mdy += g;
        mdyy += g * (x[base + j] - mean) * rstd;
    }
    mdy *= inv_d;
    mdyy *= inv_d;
    for (var j = 0u; j < d; j++) {
        let yh = (x[base + j] - mean) * rstd;
        dx[base + j] = (dy[base + j] - mdy - yh * mdyy) * rstd;
    }
}
