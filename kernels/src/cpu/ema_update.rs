//! CPU twin of `shaders/ema_update.wgsl`: t ← α·t + (1 − α)·s in place, in f64.

pub fn ema_update(t: &mut [f32], s: &[f32], alpha: f32) {
    let a = alpha as f64;
    for (ti, &si) in t.iter_mut().zip(s) {
        *ti = (a * *ti as f64 + (1.0 - a) * si as f64) as f32;
    }
}
