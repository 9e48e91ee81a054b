//! Tolerances and comparison reports for GPU-vs-CPU checks (llm.c rule: |got − ref| ≤ abs + rel·|ref|).

use serde::Serialize;

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Tolerance {
    pub rel: f32,
    pub abs: f32,
}

impl Tolerance {
    /// matmul, distances.
    pub const BALANCED: Tolerance = Tolerance { rel: 1e-4, abs: 1e-5 };
    /// layernorm, softmax, gelu, elementwise.
    pub const STRICT: Tolerance = Tolerance { rel: 1e-5, abs: 1e-6 };
    /// Long reductions and whole-model outputs.
    pub const PERMISSIVE: Tolerance = Tolerance { rel: 1e-3, abs: 1e-4 };

    pub fn new(rel: f32, abs: f32) -> Self {
        Tolerance { rel, abs }
    }
}

/// Outcome of comparing two tensors element by element.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub len: usize,
    pub failures: usize,
    pub max_abs_err: f32,
    /// Index of the largest absolute error.
    pub max_abs_index: usize,
    /// Up to five failing (index, got, want) triples.
    pub first_failures: Vec<(usize, f32, f32)>,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} values out of tolerance; max abs err {:.3e} at index {}",
            self.failures, self.len, self.max_abs_err, self.max_abs_index
        )?;
        for (i, g, w) in &self.first_failures {
            write!(f, "; [{i}] got {g} want {w}")?;
        }
        Ok(())
    }
}

/// Compare `got` against the reference `want`. Non-finite reference values must be matched exactly
/// (same infinity, or NaN for NaN). A length mismatch counts every missing element as a failure.
pub fn compare(got: &[f32], want: &[f32], tol: Tolerance) -> Comparison {
    let mut c = Comparison {
        len: want.len(),
        failures: want.len().abs_diff(got.len()),
        max_abs_err: 0.0,
        max_abs_index: 0,
        first_failures: Vec::new(),
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_finite() {
            let err = (g - w).abs();
            if err > c.max_abs_err || err.is_nan() {
                c.max_abs_err = if err.is_nan() { f32::INFINITY } else { err };
                c.max_abs_index = i;
            }
            err <= tol.abs + tol.rel * w.abs()
        } else {
            (w.is_nan() && g.is_nan()) || g == w
        };
        if !ok {
            c.failures += 1;
            if c.first_failures.len() < 5 {
                c.first_failures.push((i, g, w));
            }
        }
    }
    c
}

/// Compare index outputs exactly.
pub fn compare_exact_u32(got: &[u32], want: &[u32]) -> Comparison {
    let mut c = Comparison {
        len: want.len(),
        failures: want.len().abs_diff(got.len()),
        max_abs_err: 0.0,
        max_abs_index: 0,
        first_failures: Vec::new(),
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g != w {
            c.failures += 1;
            let err = (g as f64 - w as f64).abs() as f32;
            if err > c.max_abs_err {
                c.max_abs_err = err;
                c.max_abs_index = i;
            }
            if c.first_failures.len() < 5 {
                c.first_failures.push((i, g as f32, w as f32));
            }
        }
    }
    c
}

/// Merge two comparisons (for kernels with several outputs).
pub fn merge(a: Comparison, b: Comparison) -> Comparison {
    let (max_abs_err, max_abs_index) = if b.max_abs_err > a.max_abs_err {
        (b.max_abs_err, a.len + b.max_abs_index)
    } else {
        (a.max_abs_err, a.max_abs_index)
    };
    let mut first = a.first_failures;
    first.extend(b.first_failures.into_iter().map(|(i, g, w)| (i + a.len, g, w)));
    first.truncate(5);
    Comparison {
        len: a.len + b.len,
        failures: a.failures + b.failures,
        max_abs_err,
        max_abs_index,
        first_failures: first,
    }
}
