//! CPU twin of `shaders/kcenter_update_f16.wgsl`: [`super::kcenter_update`] on the f16 store's packed rows
//! ([`super::min_dist_update_f16`]'s layout), each row widened to f32 as it is read, so a row's value is
//! `min_dist_update_f16`'s.

use super::kcenter_update::{prune_step, KcenterStep};
use super::min_dist_update::sqdist_f64;
use super::min_dist_update_f16::unpack_f16_row;

pub fn kcenter_update_f16(
    x: &[u32],
    dc2: &[f32],
    owner: &mut [u32],
    mind: &mut [f32],
    count: &mut [u32],
    s: KcenterStep,
) {
    let (d, w) = (s.d, s.d.div_ceil(2));
    let mut c = vec![0f32; d];
    unpack_f16_row(&x[s.center * w..(s.center + 1) * w], &mut c);
    prune_step(dc2, owner, mind, count, s, d, |i, buf| {
        unpack_f16_row(&x[i * w..(i + 1) * w], buf);
        sqdist_f64(buf, &c)
    });
}
