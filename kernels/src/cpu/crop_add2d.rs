//! CPU twin of `shaders/crop_add2d.wgsl`: Y [H,W,C] += the top-left crop of X [Hp,Wp,C].

pub fn crop_add2d(x: &[f32], y: &mut [f32], h: usize, w: usize, c: usize, wp: usize) {
    for r in 0..h {
        for i in 0..w * c {
            y[r * w * c + i] += x[r * wp * c + i];
        }
    }
}
