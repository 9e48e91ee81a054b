//! Intensity windows that map scanner values (CT Hounsfield units, MR intensities) to [0, 1].

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How to map raw intensities to display range.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Window {
    /// Fixed window (center, width), e.g. soft tissue 40/400.
    Fixed { center: f64, width: f64 },
    /// The file's own VOI window (DICOM Window Center/Width); percentile auto when the file has none.
    File,
    /// Between the given low and high percentiles of the image or volume (default 0.5 / 99.5).
    Percentile { low: f64, high: f64 },
}

impl Window {
    pub const SOFT_TISSUE: Window = Window::Fixed { center: 40.0, width: 400.0 };
    pub const LUNG: Window = Window::Fixed { center: -600.0, width: 1500.0 };
    pub const BONE: Window = Window::Fixed { center: 400.0, width: 1800.0 };
    pub const AUTO: Window = Window::Percentile { low: 0.5, high: 99.5 };

    /// Parse `soft-tissue`, `lung`, `bone`, `file`, `auto`, `C/W` (e.g. `40/400`) or `p0.5-99.5`.
    pub fn parse(s: &str) -> Result<Window> {
        let s = s.trim();
        Ok(match s.to_ascii_lowercase().as_str() {
            "soft-tissue" | "soft" | "abdomen" => Window::SOFT_TISSUE,
            "lung" => Window::LUNG,
            "bone" => Window::BONE,
            "file" | "voi" => Window::File,
            "auto" | "percentile" => Window::AUTO,
            other => {
                if let Some(p) = other.strip_prefix('p') {
                    let (a, b) = p.split_once('-').ok_or_else(|| bad(s))?;
                    let (low, high) = (a.parse().map_err(|_| bad(s))?, b.parse().map_err(|_| bad(s))?);
                    // Written so that a NaN bound fails too (`low >= high` would let a NaN `high` through).
                    #[allow(clippy::nonminimal_bool)]
                    if !(0.0..100.0).contains(&low) || !(low < high && high <= 100.0) {
                        return Err(bad(s));
                    }
                    Window::Percentile { low, high }
                } else {
                    let (c, w) = other.split_once('/').ok_or_else(|| bad(s))?;
                    let (center, width): (f64, f64) = (c.parse().map_err(|_| bad(s))?, w.parse().map_err(|_| bad(s))?);
                    if width <= 0.0 {
                        return Err(bad(s));
                    }
                    Window::Fixed { center, width }
                }
            }
        })
    }
}

fn bad(s: &str) -> Error {
    Error::Invalid(format!(
        "window '{s}': use soft-tissue (40/400), lung (-600/1500), bone (400/1800), file, auto, CENTER/WIDTH or pLOW-HIGH"
    ))
}

/// Map values into [0, 1] linearly between `lo` and `hi` (clamped).
pub fn apply_linear(values: &[f32], lo: f64, hi: f64) -> Vec<f32> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    values.iter().map(|&v| (((v as f64 - lo) / span).clamp(0.0, 1.0)) as f32).collect()
}

/// The (lo, hi) range of a fixed window, as DICOM's linear VOI function defines it (C.11.2.1.2, without the
/// half-pixel offsets that only matter for integer display).
pub fn fixed_range(center: f64, width: f64) -> (f64, f64) {
    (center - width / 2.0, center + width / 2.0)
}

/// The (lo, hi) percentiles of `values` (NaNs ignored), by sorting a copy.
pub fn percentile_range(values: &[f32], low: f64, high: f64) -> (f64, f64) {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| -> f64 {
        // Linear interpolation between closest ranks (numpy's default).
        let pos = p / 100.0 * (v.len() - 1) as f64;
        let i = pos.floor() as usize;
        let j = (i + 1).min(v.len() - 1);
        v[i] as f64 + (v[j] as f64 - v[i] as f64) * (pos - i as f64)
    };
    let (lo, hi) = (at(low), at(high));
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_presets_and_custom() {
        assert_eq!(Window::parse("lung").unwrap(), Window::Fixed { center: -600.0, width: 1500.0 });
        assert_eq!(Window::parse("40/400").unwrap(), Window::SOFT_TISSUE);
        assert_eq!(Window::parse("p1-99").unwrap(), Window::Percentile { low: 1.0, high: 99.0 });
        assert!(Window::parse("40/0").is_err());
        assert!(Window::parse("nonsense").is_err());
    }

    #[test]
    fn percentiles_interpolate() {
        let v: Vec<f32> = (0..=100).map(|x| x as f32).collect();
        assert_eq!(percentile_range(&v, 0.5, 99.5), (0.5, 99.5));
        let w = apply_linear(&[-10.0, 0.0, 50.0, 100.0, 200.0], 0.0, 100.0);
        assert_eq!(w, vec![0.0, 0.0, 0.5, 1.0, 1.0]);
    }
}
