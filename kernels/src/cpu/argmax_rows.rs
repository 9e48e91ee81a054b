//! CPU twin of `shaders/argmax_rows.wgsl`: per row, the maximum and its lowest index; NaN never wins and a row
//! without comparable values gets index u32::MAX (value 0).

pub fn argmax_rows(x: &[f32], rows: usize, cols: usize) -> (Vec<f32>, Vec<u32>) {
    let mut vals = vec![0f32; rows];
    let mut idxs = vec![u32::MAX; rows];
    for r in 0..rows {
        for (c, &v) in x[r * cols..(r + 1) * cols].iter().enumerate() {
            if !v.is_nan() && (idxs[r] == u32::MAX || v > vals[r]) {
                vals[r] = v;
                idxs[r] = c as u32;
            }
        }
    }
    (vals, idxs)
}
