// gather_rows: dst[dst_row0 + r, t] = src[idx[idx_offset + r] − src_row0, t] for r < rows, t < D (rows whose
// index falls outside the source are left as they were): the rows a pruned scan still has to measure, packed.
// One thread per (row, feature): neighbouring threads copy neighbouring features of the same row.

// Kept in sync with kernels/src/gpu/params.rs `GatherRowsParams`.
struct Params {
    rows: u32,
    d: u32,
    idx_offset: u32,
    src_row0: u32,
    src_rows: u32,
    dst_row0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;         // [src_rows, D] (rows src_row0 ..)
@group(0) @binding(2) var<storage, read> idx: array<u32>;         // [idx_offset + rows] row numbers
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;   // [dst_row0 + rows, D]

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let g = (wid.y * nwg.x + wid.x) * WG + li;
    if (g >= params.rows * params.d) {
        return;
    }
    let r = g / params.d;
    let t = g % params.d;
    let i = idx[params.idx_offset + r];
    if (i < params.src_row0 || i - params.src_row0 >= params.src_rows) {
        return;
    }
    dst[(params.dst_row0 + r) * params.d + t] = src[(i - params.src_row0) * params.d + t];
}
