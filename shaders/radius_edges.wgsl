// radius_edges: the sparse δ-graph N(i) = {j : D_ij ≤ δ²} in two passes without atomics. For a tile of squared
// distances (rows row_offset.., columns col_offset..): mode 0 adds each row's count of entries ≤ radius2 to
// cursor[i]; the host turns the counts into exclusive prefix sums and uploads them as cursor; mode 1 then writes
// each row's neighbours (pool indices) at edges[cursor[i]..] and advances cursor[i]. Column tiles are visited
// in increasing order, so every row's list comes out sorted. A graph larger than one buffer is written in
// chunks: mode 1 keeps only the entries at positions base..base+capacity, stored at edges[position − base].

// Kept in sync with kernels/src/gpu/params.rs `RadiusEdgesParams`.
struct Params {
    rows: u32,
    cols: u32,
    row_offset: u32,
    col_offset: u32,
    mode: u32,
    radius2: f32,
    capacity: u32,
    base: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dist: array<f32>;           // [R, C] squared distances
@group(0) @binding(2) var<storage, read_write> cursor: array<u32>;   // [N] counts (mode 0) / write positions (1)
@group(0) @binding(3) var<storage, read_write> edges: array<u32>;    // [capacity], positions base..base+capacity

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
    let i = params.row_offset + r;
    let base = r * params.cols;
    var at = cursor[i];
    for (var c = 0u; c < params.cols; c++) {
        if (dist[base + c] <= params.radius2) {
            if (params.mode == 1u && at >= params.base && at - params.base < params.capacity) {
                edges[at - params.base] = params.col_offset + c;
            }
            at += 1u;
        }
    }
    cursor[i] = at;
}
