//! CPU twin of `shaders/depth_to_space.wgsl`: X [H·W, r·r·C] → Y [r·H·r·W, C] plus bias.

pub fn depth_to_space(x: &[f32], bias: &[f32], h: usize, w: usize, c: usize, r: usize) -> Vec<f32> {
    let wo = w * r;
    let mut y = vec![0f32; h * r * wo * c];
    for i in 0..h {
        for j in 0..w {
            for di in 0..r {
                for dj in 0..r {
                    for o in 0..c {
                        y[((r * i + di) * wo + r * j + dj) * c + o] =
                            x[(i * w + j) * (r * r * c) + (di * r + dj) * c + o] + bias[o];
                    }
                }
            }
        }
    }
    y
}
