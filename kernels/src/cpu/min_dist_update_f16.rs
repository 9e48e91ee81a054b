//! CPU twin of `shaders/min_dist_update_f16.wgsl`: [`super::min_dist_update`] on features stored as f16, two to a
//! u32 word (the low half first; an odd D's last word has a zero high half). Each row is widened to f32 (exact:
//! every f16 is an f32) and measured by the f32 store's distance ([`sqdist_f64`]: f64 sums over eight lanes), so
//! the value is bit for bit the f32 kernel's on the f16-rounded features.

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

use super::min_dist_update::sqdist_f64;
use super::par;

/// Words per row of D features.
pub fn words_per_row(d: usize) -> usize {
    d.div_ceil(2)
}

/// Round rows of f32 features to f16 (nearest, ties to even) and pack them: `n · ⌈d/2⌉` words.
pub fn pack_f16_rows(x: &[f32], n: usize, d: usize) -> Vec<u32> {
    let w = words_per_row(d);
    let mut out = vec![0u32; n * w];
    for (row, words) in x[..n * d].chunks_exact(d.max(1)).zip(out.chunks_exact_mut(w.max(1))) {
        for (k, word) in words.iter_mut().enumerate() {
            let lo = f16::from_f32(row[2 * k]).to_bits() as u32;
            let hi = row.get(2 * k + 1).map_or(0, |&v| f16::from_f32(v).to_bits() as u32);
            *word = lo | (hi << 16);
        }
    }
    out
}

/// Widen one packed row (`⌈d/2⌉` words) into `out` (`d` values).
pub fn unpack_f16_row(words: &[u32], out: &mut [f32]) {
    let d = out.len();
    let halves: &[u16] = bytemuck::cast_slice(words);
    // Little-endian: a word's low half is the lower-addressed u16 (every medpick target is little-endian).
    let halves: &[f16] = halves[..d].reinterpret_cast();
    halves.convert_to_f32_slice(out);
}

pub fn min_dist_update_f16(x: &[u32], mind: &mut [f32], n: usize, d: usize, center: usize, init: bool) {
    let w = words_per_row(d);
    let mut c = vec![0f32; d];
    unpack_f16_row(&x[center * w..(center + 1) * w], &mut c);
    let rows = par::rows_per_task(n, d, 1 << 16);
    par::for_chunks(&mut mind[..n], rows, |task, out| {
        let mut row = vec![0f32; d];
        for (r, m) in out.iter_mut().enumerate() {
            let i = task * rows + r;
            unpack_f16_row(&x[i * w..(i + 1) * w], &mut row);
            let dist = sqdist_f64(&row, &c) as f32;
            *m = if init { dist } else { m.min(dist) };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_the_f16_values_and_the_distance_is_the_f32_kernels_on_rounded_features() {
        let (n, d) = (37, 7);
        let x: Vec<f32> = (0..n * d).map(|i| ((i * 7919) % 1013) as f32 / 97.0 - 5.0).collect();
        let rounded: Vec<f32> = x.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        assert!(rounded.iter().zip(&x).any(|(a, b)| a != b), "the test needs values f16 cannot hold");
        let packed = pack_f16_rows(&x, n, d);
        assert_eq!(packed.len(), n * 4);
        let mut row = vec![0f32; d];
        for i in 0..n {
            unpack_f16_row(&packed[i * 4..(i + 1) * 4], &mut row);
            assert_eq!(row, rounded[i * d..(i + 1) * d]);
            assert_eq!(packed[i * 4 + 3] >> 16, 0, "an odd D's pad half is zero");
        }
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        for (s, c) in [3usize, 30, 11].into_iter().enumerate() {
            super::super::min_dist_update(&rounded, &mut a, n, d, c, s == 0);
            min_dist_update_f16(&packed, &mut b, n, d, c, s == 0);
        }
        assert_eq!(a, b);
    }
}
