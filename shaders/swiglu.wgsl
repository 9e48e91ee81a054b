// swiglu: y[r, j] = silu(x[r, j]) · x[r, H + j] with silu(a) = a · sigmoid(a), for rows r and j < H (the gated FFN
// of dinov2-giant: `x1, x2 = weights_in(h).chunk(2, -1)`, `silu(x1) * x2`). The sigmoid is evaluated in the
// stable form (exp of a non-positive argument only) so large |a| neither overflows nor loses the tail.

// Kept in sync with kernels/src/gpu/params.rs `SwigluParams`.
struct Params {
    rows: u32,
    hidden: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [rows, 2·hidden]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // [rows, hidden]

const WG: u32 = 256u;

fn sigmoid(a: f32) -> f32 {
    let e = exp(-abs(a));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), a >= 0.0);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    let h = params.hidden;
    if (i >= params.rows * h) {
        return;
    }
    let r = i / h;
    let j = i - r * h;
    let a = x[r * 2u * h + j];
    y[i] = a * sigmoid(a) * x[r * 2u * h + h + j];
}
