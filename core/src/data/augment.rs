//! Intensity augmentation before encoding (`--intensity-variants K`): each labelled image is encoded K more
//! times, each copy with its own seeded brightness, contrast and gamma, and the grids are cached like any other
//! features; training then draws, per sample and epoch, the original grid or one of its variants.
//!
//! The ranges are MedCAL's (METHODS §4.1, its nnU-Net-style pipeline): multiplicative brightness U(0.75, 1.25),
//! contrast U(0.75, 1.25) around the image mean, gamma U(0.7, 1.5). Order and arithmetic, on intensities mapped
//! to [0, 1] by the pixel type's range (8-bit /255, 16-bit /65535; windowed DICOM/NIfTI are already in [0, 1]):
//! x ← x·brightness; x ← (x − mean)·contrast + mean (mean over all pixels and channels, after the brightness);
//! x ← clamp(x, 0, 1); x ← x^gamma; back to the pixel type (rounded for integers).
//!
//! Deviations, named: MedCAL draws fresh transforms every iteration, each with a probability (brightness 0.15,
//! contrast 0.15, gamma 0.3, plus an inverted gamma 0.1); here a frozen encoder makes every new intensity a new
//! encoder pass, so each image has K fixed variants, each with all three transforms drawn; the original stays
//! one of the K + 1 choices. batchgenerators' contrast clips to the image's own range (`preserve_range`); here
//! values are clipped to the pixel type's range.

use serde::{Deserialize, Serialize};

use crate::data::io::{Image2d, Pixels};
use crate::rng::Rng;

/// Which variant of an image to encode: `index` ≥ 1 of the run's `seed`. Together with the sample id it fixes
/// the transform ([`IntensityAug::draw`]), and it is part of the feature cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntensityVariant {
    pub seed: u64,
    pub index: usize,
}

impl IntensityVariant {
    /// Recorded in the feature file's `preprocess` metadata and in the cache key.
    pub fn tag(&self) -> String {
        format!("intensity-v1 variant {} seed {}", self.index, self.seed)
    }
}

/// One draw of the three intensity transforms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct IntensityAug {
    pub brightness: f32,
    pub contrast: f32,
    pub gamma: f32,
}

/// FNV-1a of the id, so every sample gets its own stream under one seed.
fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

impl IntensityAug {
    /// The transforms of `variant` for sample `id` (deterministic; independent of the order samples come in).
    pub fn draw(variant: IntensityVariant, id: &str) -> IntensityAug {
        let mut rng =
            Rng::new(variant.seed ^ id_hash(id).rotate_left(17) ^ (variant.index as u64).wrapping_mul(0x9E37_79B9));
        let mut u = |lo: f32, hi: f32| lo + (hi - lo) * rng.next_f32();
        IntensityAug { brightness: u(0.75, 1.25), contrast: u(0.75, 1.25), gamma: u(0.7, 1.5) }
    }

    /// The transformed image (same size, channels and pixel type).
    pub fn apply(&self, img: &Image2d) -> Image2d {
        let (scale, vals): (f32, Vec<f32>) = match &img.pixels {
            Pixels::U8(v) => (255.0, v.iter().map(|&x| x as f32 / 255.0).collect()),
            Pixels::U16(v) => (65535.0, v.iter().map(|&x| x as f32 / 65535.0).collect()),
            Pixels::F32(v) => (1.0, v.clone()),
        };
        let bright: Vec<f32> = vals.iter().map(|&x| x * self.brightness).collect();
        let mean = (bright.iter().map(|&x| x as f64).sum::<f64>() / bright.len().max(1) as f64) as f32;
        let out = bright
            .into_iter()
            .map(|x| (((x - mean) * self.contrast + mean).clamp(0.0, 1.0)).powf(self.gamma) * scale)
            .collect::<Vec<f32>>();
        let pixels = match img.pixels {
            Pixels::U8(_) => Pixels::U8(out.iter().map(|&x| x.round().clamp(0.0, 255.0) as u8).collect()),
            Pixels::U16(_) => Pixels::U16(out.iter().map(|&x| x.round().clamp(0.0, 65535.0) as u16).collect()),
            Pixels::F32(_) => Pixels::F32(out),
        };
        Image2d { pixels, ..img.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_in_medcal_ranges_and_fixed_by_seed_id_and_index() {
        let v = |seed, index| IntensityVariant { seed, index };
        let a = IntensityAug::draw(v(0, 1), "images/a.png");
        assert_eq!(a, IntensityAug::draw(v(0, 1), "images/a.png"));
        assert_ne!(a, IntensityAug::draw(v(0, 2), "images/a.png"));
        assert_ne!(a, IntensityAug::draw(v(1, 1), "images/a.png"));
        assert_ne!(a, IntensityAug::draw(v(0, 1), "images/b.png"));
        for k in 0..200 {
            let d = IntensityAug::draw(v(3, k), &format!("id{k}"));
            assert!((0.75..1.25).contains(&d.brightness) && (0.75..1.25).contains(&d.contrast), "{d:?}");
            assert!((0.7..1.5).contains(&d.gamma), "{d:?}");
        }
    }

    #[test]
    fn apply_by_hand_for_each_pixel_type() {
        let aug = IntensityAug { brightness: 1.2, contrast: 0.8, gamma: 2.0 };
        // 8-bit: x = v/255 → ×1.2 → (x − mean)·0.8 + mean → clamp → x² → ×255, rounded.
        let img = Image2d { width: 2, height: 2, channels: 1, pixels: Pixels::U8(vec![0, 51, 204, 255]) };
        let b: Vec<f32> = [0.0f32, 0.2, 0.8, 1.0].iter().map(|x| x * 1.2).collect();
        let m = b.iter().sum::<f32>() / 4.0;
        let want: Vec<u8> =
            b.iter().map(|&x| ((((x - m) * 0.8 + m).clamp(0.0, 1.0)).powf(2.0) * 255.0).round() as u8).collect();
        let Pixels::U8(got) = aug.apply(&img).pixels else { panic!("pixel type changed") };
        assert_eq!(got, want);
        assert_eq!(got[3], 255, "the brightest pixel saturates");
        // Windowed intensities stay in [0, 1]; 16-bit keeps its type; identity parameters change nothing.
        let f = Image2d { width: 3, height: 1, channels: 1, pixels: Pixels::F32(vec![0.0, 0.5, 1.0]) };
        let Pixels::F32(g) = aug.apply(&f).pixels else { panic!() };
        assert!(g.iter().all(|x| (0.0..=1.0).contains(x)) && g[0] < g[1] && g[1] < g[2], "{g:?}");
        let id = IntensityAug { brightness: 1.0, contrast: 1.0, gamma: 1.0 };
        let w = Image2d { width: 2, height: 1, channels: 1, pixels: Pixels::U16(vec![1000, 60000]) };
        assert_eq!(id.apply(&w), w);
        assert_eq!(id.apply(&img), img);
    }
}
