//! GPU-vs-CPU self-test cases for every kernel, one file per kernel family, shared by the integration tests (`cargo test`), the CLI
//! (`medpick selftest`) and the browser page (`web/selftest.html`), so all three check the same thing.
//! Sizes are deliberately not multiples of the workgroup sizes (1, 7, 63, 64, 65, 1000) plus real model shapes.

use serde::Serialize;

use crate::cpu;
use crate::gpu::{ops, read_f32, read_u32, GpuContext};
use crate::rng::Rng;
use crate::testing::{compare, compare_exact_u32, merge, Comparison, Tolerance};
use crate::{Instant, Result};

/// Small shapes (odd sizes around the workgroup sizes) or real model shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Group {
    Small,
    Model,
}

/// A case's shapes, by family (each family's own `Spec` lists its kernels' cases).
#[derive(Clone, Debug)]
enum Spec {
    Gemm(gemm::Spec),
    Pairwise(pairwise::Spec),
    Select(select::Spec),
    Norm(norm::Spec),
    Activation(activation::Spec),
    Loss(loss::Spec),
    Conv(conv::Spec),
    Attention(attention::Spec),
    Optim(optim::Spec),
}

/// One self-test case.
#[derive(Clone, Debug)]
pub struct Case {
    pub kernel: &'static str,
    pub label: String,
    pub group: Group,
    spec: Spec,
}

/// What one case found.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    pub kernel: &'static str,
    pub case: String,
    pub group: Group,
    /// `None` when only the CPU twin ran (no GPU) or the case was skipped.
    pub passed: Option<bool>,
    /// The device lacks an optional feature the kernel needs (`matmul_f16w` without `shader-f16`).
    pub skipped: bool,
    pub detail: String,
    pub max_abs_err: f32,
    pub elements: usize,
    pub gpu_ms: f64,
    pub cpu_ms: f64,
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    let label = match &spec {
        Spec::Gemm(s) => s.label(),
        Spec::Pairwise(s) => s.label(),
        Spec::Select(s) => s.label(),
        Spec::Norm(s) => s.label(),
        Spec::Activation(s) => s.label(),
        Spec::Loss(s) => s.label(),
        Spec::Conv(s) => s.label(),
        Spec::Attention(s) => s.label(),
        Spec::Optim(s) => s.label(),
    };
    Case { kernel, label, group, spec }
}

fn seed_of(label: &str, kernel: &str) -> u64 {
    // FNV-1a: a stable seed per case on every platform.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kernel.bytes().chain(label.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// `tiles` contiguous blocks covering 0..n.
fn tile_blocks(n: usize, tiles: usize) -> Vec<(usize, usize)> {
    let t = n.div_ceil(tiles.max(1));
    (0..tiles).map(|i| (i * t, ((i + 1) * t).min(n))).filter(|(a, b)| a < b).collect()
}

/// Rows r0..r1 and columns c0..c1 of an n×n matrix, row-major.
fn sub_tile(m: &[f32], n: usize, r0: usize, r1: usize, c0: usize, c1: usize) -> Vec<f32> {
    (r0..r1).flat_map(|r| m[r * n + c0..r * n + c1].iter().copied()).collect()
}

fn ties_vec(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.below(4) as f32).collect()
}

struct Outcome {
    cmp: Option<Comparison>,
    elements: usize,
    gpu_ms: f64,
    cpu_ms: f64,
}

/// Run one case: the CPU twin, and the kernel on `ctx` when given, then compare.
pub async fn run(ctx: Option<&GpuContext>, c: &Case) -> CaseReport {
    let base = CaseReport {
        kernel: c.kernel,
        case: c.label.clone(),
        group: c.group,
        passed: None,
        skipped: false,
        detail: String::new(),
        max_abs_err: 0.0,
        elements: 0,
        gpu_ms: 0.0,
        cpu_ms: 0.0,
    };
    match run_inner(ctx, c).await {
        Ok(o) => {
            let (passed, detail, err) = match &o.cmp {
                Some(cmp) => (Some(cmp.passed()), cmp.to_string(), cmp.max_abs_err),
                None => (None, "CPU twin only (no GPU)".to_string(), 0.0),
            };
            CaseReport {
                passed,
                detail,
                max_abs_err: err,
                elements: o.elements,
                gpu_ms: o.gpu_ms,
                cpu_ms: o.cpu_ms,
                ..base
            }
        }
        Err(e @ crate::Error::MissingFeature { .. }) => {
            CaseReport { skipped: true, detail: format!("skipped: {e}"), ..base }
        }
        Err(e) => CaseReport { passed: Some(false), detail: format!("error: {e}"), ..base },
    }
}

/// Run every case accepted by `filter`.
pub async fn run_all(ctx: Option<&GpuContext>, filter: impl Fn(&Case) -> bool) -> Vec<CaseReport> {
    let mut out = Vec::new();
    for c in cases().iter().filter(|c| filter(c)) {
        out.push(run(ctx, c).await);
    }
    out
}

/// Per kernel: (kernel, cases passed, cases run, cases skipped). A kernel passes when all the cases it ran
/// pass; a kernel whose cases were all skipped (a feature the device lacks) neither passes nor fails.
pub fn summarize(reports: &[CaseReport]) -> Vec<(&'static str, usize, usize, usize)> {
    let mut out: Vec<(&'static str, usize, usize, usize)> = Vec::new();
    for r in reports {
        let ok = r.passed == Some(true);
        let (ran, skipped) = if r.skipped { (0, 1) } else { (1, 0) };
        match out.iter_mut().find(|e| e.0 == r.kernel) {
            Some(e) => {
                e.1 += ok as usize;
                e.2 += ran;
                e.3 += skipped;
            }
            None => out.push((r.kernel, ok as usize, ran, skipped)),
        }
    }
    out
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The table `medpick selftest` prints: one row per case.
pub fn table(reports: &[CaseReport]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<21} {:<30} {:>6} {:>11} {:>10} {:>10}",
        "kernel", "case", "result", "max |err|", "gpu ms", "cpu ms"
    );
    for r in reports {
        let res = match r.passed {
            Some(true) => "ok",
            Some(false) => "FAIL",
            None if r.skipped => "skip",
            None => "cpu",
        };
        let _ = writeln!(
            out,
            "{:<21} {:<30} {:>6} {:>11.2e} {:>10.2} {:>10.2}",
            r.kernel, r.case, res, r.max_abs_err, r.gpu_ms, r.cpu_ms
        );
        if r.passed == Some(false) {
            let _ = writeln!(out, "    {}", r.detail);
        }
    }
    out
}

/// The closing line (`kernels: N passed, M failed[, K skipped (...)]`) and whether no kernel failed.
pub fn verdict(reports: &[CaseReport]) -> (String, bool) {
    let summary = summarize(reports);
    // Kernels only timed (`--device cpu`: no GPU result to compare with) neither pass nor fail.
    let timed_only = |k: &str| reports.iter().filter(|r| r.kernel == k && !r.skipped).all(|r| r.passed.is_none());
    let timed = summary.iter().filter(|(k, _, n, _)| *n > 0 && timed_only(k)).count();
    if timed > 0 && timed == summary.len() {
        let line = format!(
            "kernels: {timed} timed on the CPU backend alone (nothing compared: run without --device cpu to test them against the GPU)"
        );
        return (line, true);
    }
    let skipped: Vec<&str> = summary.iter().filter(|(_, _, n, s)| *n == 0 && *s > 0).map(|e| e.0).collect();
    let passed = summary.iter().filter(|(_, p, n, _)| p == n && *n > 0).count();
    let failed = summary.len() - passed - skipped.len();
    let line = if skipped.is_empty() {
        format!("kernels: {passed} passed, {failed} failed")
    } else {
        format!(
            "kernels: {passed} passed, {failed} failed, {} skipped ({}: the adapter lacks a feature they need)",
            skipped.len(),
            skipped.join(", ")
        )
    };
    (line, failed == 0)
}

macro_rules! timed {
    ($e:expr) => {{
        let t = Instant::now();
        let r = $e;
        (r, ms_since(t))
    }};
}

mod activation;
mod attention;
mod conv;
mod gemm;
mod loss;
mod norm;
mod optim;
mod pairwise;
mod select;

/// Every case, family by family, for every kernel in `gpu::shaders::ALL`.
pub fn cases() -> Vec<Case> {
    let families = [
        gemm::cases,
        pairwise::cases,
        select::cases,
        norm::cases,
        activation::cases,
        loss::cases,
        conv::cases,
        attention::cases,
        optim::cases,
    ];
    families.iter().flat_map(|f| f()).collect()
}

async fn run_inner(ctx: Option<&GpuContext>, c: &Case) -> Result<Outcome> {
    let mut rng = Rng::new(seed_of(&c.label, c.kernel));
    let rng = &mut rng;
    match &c.spec {
        Spec::Gemm(s) => gemm::run(ctx, c, s, rng).await,
        Spec::Pairwise(s) => pairwise::run(ctx, c, s, rng).await,
        Spec::Select(s) => select::run(ctx, c, s, rng).await,
        Spec::Norm(s) => norm::run(ctx, c, s, rng).await,
        Spec::Activation(s) => activation::run(ctx, c, s, rng).await,
        Spec::Loss(s) => loss::run(ctx, c, s, rng).await,
        Spec::Conv(s) => conv::run(ctx, c, s, rng).await,
        Spec::Attention(s) => attention::run(ctx, c, s, rng).await,
        Spec::Optim(s) => optim::run(ctx, c, s, rng).await,
    }
}
