//! CPU twin of `shaders/crop_add2d.wgsl`: Y [H,W,C] += the top-left crop of X [Hp,Wp,C] (a residual add when
//! the widths are equal). Split over blocks of values or rows across the CPU backend's threads.

use super::par;

pub fn crop_add2d(x: &[f32], y: &mut [f32], h: usize, w: usize, c: usize, wp: usize) {
    let row = w * c;
    let add = |ys: &mut [f32], xs: &[f32]| {
        let n = ys.len();
        for (a, &b) in ys.iter_mut().zip(&xs[..n]) {
            *a += b;
        }
    };
    if w == wp {
        // Equal widths: one contiguous add (the rows may be a single value each).
        let n = h * row;
        let per = par::rows_per_task(n, 1, 1 << 15);
        par::for_chunks(&mut y[..n], per, |t, ys| add(ys, &x[t * per..]));
        return;
    }
    if row == 0 {
        return;
    }
    let per = par::rows_per_task(h, row, 1 << 15);
    par::for_chunks(&mut y[..h * row], per * row, |t, blk| {
        for (i, ys) in blk.chunks_mut(row).enumerate() {
            add(ys, &x[(t * per + i) * wp * c..]);
        }
    });
}
