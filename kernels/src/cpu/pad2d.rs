//! CPU twin of `shaders/pad2d.wgsl`: zero-pad a channels-last image at the bottom and right.

pub fn pad2d(x: &[f32], h: usize, w: usize, c: usize, hp: usize, wp: usize) -> Vec<f32> {
    if w == wp {
        // Equal widths: the rows are contiguous in both (a copy, then zero rows below).
        let mut y = Vec::with_capacity(hp * wp * c);
        y.extend_from_slice(&x[..h * w * c]);
        y.resize(hp * wp * c, 0.0);
        return y;
    }
    let mut y = vec![0f32; hp * wp * c];
    for r in 0..h {
        y[r * wp * c..(r * wp + w) * c].copy_from_slice(&x[r * w * c..(r + 1) * w * c]);
    }
    y
}
