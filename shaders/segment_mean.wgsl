// segment_mean: the k-means centre update without float atomics (two passes: the host sorts the rows by
// cluster — a counting sort of the labels — into `order` with CSR `offsets`; this pass reduces each segment).
// centers[c, t] = mean of x[order[m], t] over m in offsets[c] .. offsets[c+1]; an empty cluster keeps its centre.
// One thread per (cluster, feature): neighbouring threads read neighbouring features of the same member row.

// Kept in sync with kernels/src/gpu/params.rs `SegmentMeanParams`.
struct Params {
    k: u32,
    d: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;              // [N, D]
@group(0) @binding(2) var<storage, read> order: array<u32>;          // [N] rows grouped by cluster
@group(0) @binding(3) var<storage, read> offsets: array<u32>;        // [k + 1]
@group(0) @binding(4) var<storage, read_write> centers: array<f32>;  // [k, D]

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let g = (wid.y * nwg.x + wid.x) * WG + li;
    if (g >= params.k * params.d) {
        return;
    }
    let c = g / params.d;
    let t = g % params.d;
    let a = offsets[c];
    let b = offsets[c + 1u];
    if (b <= a) {
        return;
    }
    var acc = 0.0;
    for (var m = a; m < b; m++) {
        acc += x[order[m] * params.d + t];
    }
    centers[g] = acc / f32(b - a);
}
