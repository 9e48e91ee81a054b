//! CPU twin of `shaders/pad2d.wgsl`: zero-pad a channels-last image at the bottom and right.

pub fn pad2d(x: &[f32], h: usize, w: usize, c: usize, hp: usize, wp: usize) -> Vec<f32> {
    let mut y = vec![0f32; hp * wp * c];
    for r in 0..h {
        y[r * wp * c..(r * wp + w) * c].copy_from_slice(&x[r * w * c..(r + 1) * w * c]);
    }
    y
}
