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

#[derive(Clone, Debug)]
enum Spec {
    Matmul {
        m: usize,
        n: usize,
        k: usize,
        trans_b: bool,
        bias: bool,
    },
    /// A GEMM with the GELU fused into its store (`matmul_regs4` only).
    MatmulGelu {
        m: usize,
        n: usize,
        k: usize,
        trans_b: bool,
        bias: bool,
    },
    Pairwise {
        n: usize,
        m: usize,
        d: usize,
        same: bool,
    },
    MinDist {
        n: usize,
        d: usize,
        steps: usize,
    },
    Argmax {
        rows: usize,
        cols: usize,
        ties: bool,
    },
    Topk {
        rows: usize,
        cols: usize,
        k: usize,
        tiles: usize,
        ties: bool,
    },
    Softmax {
        rows: usize,
        cols: usize,
    },
    Layernorm {
        rows: usize,
        d: usize,
    },
    Gelu {
        n: usize,
    },
    Swiglu {
        rows: usize,
        hidden: usize,
    },
    Reduce {
        rows: usize,
        cols: usize,
        op: ops::Reduce,
    },
    Entropy {
        images: usize,
        classes: usize,
        pixels: usize,
    },
    Dwconv {
        g: ops::ConvGeom,
    },
    Im2col {
        g: ops::ConvGeom,
    },
    Pad {
        h: usize,
        w: usize,
        c: usize,
        hp: usize,
        wp: usize,
    },
    CropAdd {
        h: usize,
        w: usize,
        c: usize,
        hp: usize,
        wp: usize,
    },
    Attention {
        g: ops::AttnGeom,
        bias: bool,
    },
    CrossAttention {
        g: ops::CrossAttnGeom,
    },
    Relu {
        n: usize,
    },
    DepthToSpace {
        h: usize,
        w: usize,
        c: usize,
        r: usize,
    },
    SoftmaxXent {
        rows: usize,
        classes: usize,
        smoothing: f32,
    },
    Adamw {
        n: usize,
        steps: usize,
    },
    Sgd {
        n: usize,
        steps: usize,
    },
    Transpose {
        rows: usize,
        cols: usize,
    },
    SegmentMean {
        n: usize,
        k: usize,
        d: usize,
    },
    FacilityGain {
        rows: usize,
        cols: usize,
        potential: bool,
    },
    /// An n×n distance matrix visited in `tiles`×`tiles` blocks, `classes` labels.
    OtherLabelMin {
        n: usize,
        classes: usize,
        tiles: usize,
    },
    RadiusEdges {
        n: usize,
        tiles: usize,
    },
    GeluBackward {
        n: usize,
    },
    LayernormBackward {
        rows: usize,
        d: usize,
    },
    DiceLoss {
        rows: usize,
        robust: bool,
    },
    Ema {
        n: usize,
    },
    SoftmaxMse {
        rows: usize,
        classes: usize,
    },
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
        Spec::Matmul { m, n, k, trans_b, bias } | Spec::MatmulGelu { m, n, k, trans_b, bias } => {
            format!(
                "{m}x{k}·{}{}{}{}",
                if *trans_b { "T" } else { "" },
                if *trans_b { format!("{n}x{k}") } else { format!("{k}x{n}") },
                if *bias { "+bias" } else { "" },
                if matches!(spec, Spec::MatmulGelu { .. }) { " gelu" } else { "" }
            )
        }
        Spec::Pairwise { n, m, d, same } => {
            format!("{n}x{m} d{d}{}", if *same { " self" } else { "" })
        }
        Spec::MinDist { n, d, steps } => format!("n{n} d{d} {steps} steps"),
        Spec::Argmax { rows, cols, ties } => {
            format!("{rows}x{cols}{}", if *ties { " ties" } else { "" })
        }
        Spec::Topk { rows, cols, k, tiles, ties } => {
            format!("{rows}x{cols} k{k} {tiles} tile(s){}", if *ties { " ties" } else { "" })
        }
        Spec::Softmax { rows, cols } => format!("{rows}x{cols}"),
        Spec::Layernorm { rows, d } => format!("{rows}x{d}"),
        Spec::Gelu { n } => format!("n{n}"),
        Spec::Swiglu { rows, hidden } => format!("{rows}x{hidden}"),
        Spec::Reduce { rows, cols, op } => format!("{rows}x{cols} {op:?}"),
        Spec::Entropy { images, classes, pixels } => format!("{images}x{classes}x{pixels}"),
        Spec::Dwconv { g } | Spec::Im2col { g } => format!("{}x{}x{} k{} s{} p{}", g.h, g.w, g.c, g.k, g.stride, g.pad),
        Spec::Pad { h, w, c, hp, wp } | Spec::CropAdd { h, w, c, hp, wp } => format!("{h}x{w}x{c} in {hp}x{wp}"),
        Spec::Attention { g, bias } => format!(
            "grid {}x{} win {}x{} {}h x{}{}",
            g.grid_h,
            g.grid_w,
            g.ws_h,
            g.ws_w,
            g.heads,
            g.hd,
            if *bias { " +bias" } else { "" }
        ),
        Spec::CrossAttention { g } => format!("{}q x {}k {}h x{}", g.nq, g.nk, g.heads, g.hd),
        Spec::Relu { n } => format!("n{n}"),
        Spec::DepthToSpace { h, w, c, r } => format!("{h}x{w}x{c} r{r}"),
        Spec::SoftmaxXent { rows, classes, smoothing } => format!("{rows}x{classes} eps {smoothing}"),
        Spec::Adamw { n, steps } | Spec::Sgd { n, steps } => format!("n{n} {steps} steps"),
        Spec::Transpose { rows, cols } => format!("{rows}x{cols}"),
        Spec::SegmentMean { n, k, d } => format!("n{n} k{k} d{d}"),
        Spec::FacilityGain { rows, cols, potential } => {
            format!("{rows}x{cols}{}", if *potential { " potential" } else { "" })
        }
        Spec::OtherLabelMin { n, classes, tiles } => format!("n{n} {classes} labels {tiles}x{tiles} tiles"),
        Spec::RadiusEdges { n, tiles } => format!("n{n} {tiles}x{tiles} tiles"),
        Spec::GeluBackward { n } => format!("n{n}"),
        Spec::LayernormBackward { rows, d } => format!("{rows}x{d}"),
        Spec::DiceLoss { rows, robust } => format!("{rows}x2 {}", if *robust { "noise-robust γ 1.5" } else { "soft" }),
        Spec::Ema { n } => format!("n{n}"),
        Spec::SoftmaxMse { rows, classes } => format!("{rows}x{classes}"),
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
mod cases;
mod conv;
mod gemm;
mod loss;
mod norm;
mod optim;
mod pairwise;
mod select;

pub use cases::cases;

/// A case handed to the wrong family's runner: a bug in the dispatch below, reported as a failed case.
fn misrouted(c: &Case, spec: &Spec) -> crate::Error {
    crate::Error::Invalid(format!("selftest: case {} {} ({spec:?}) reached the wrong family", c.kernel, c.label))
}

async fn run_inner(ctx: Option<&GpuContext>, c: &Case) -> Result<Outcome> {
    let mut rng = Rng::new(seed_of(&c.label, c.kernel));
    let rng = &mut rng;
    match &c.spec {
        Spec::Matmul { .. } | Spec::MatmulGelu { .. } => gemm::run(ctx, c, rng).await,
        Spec::Pairwise { .. } => pairwise::run(ctx, c, rng).await,
        Spec::MinDist { .. }
        | Spec::Argmax { .. }
        | Spec::Topk { .. }
        | Spec::SegmentMean { .. }
        | Spec::FacilityGain { .. }
        | Spec::OtherLabelMin { .. }
        | Spec::RadiusEdges { .. } => select::run(ctx, c, rng).await,
        Spec::Softmax { .. } | Spec::Layernorm { .. } | Spec::LayernormBackward { .. } | Spec::Reduce { .. } => {
            norm::run(ctx, c, rng).await
        }
        Spec::Gelu { .. } | Spec::GeluBackward { .. } | Spec::Swiglu { .. } | Spec::Relu { .. } => {
            activation::run(ctx, c, rng).await
        }
        Spec::DiceLoss { .. } | Spec::Entropy { .. } | Spec::SoftmaxXent { .. } | Spec::SoftmaxMse { .. } => {
            loss::run(ctx, c, rng).await
        }
        Spec::Dwconv { .. }
        | Spec::Im2col { .. }
        | Spec::Pad { .. }
        | Spec::CropAdd { .. }
        | Spec::DepthToSpace { .. }
        | Spec::Transpose { .. } => conv::run(ctx, c, rng).await,
        Spec::Attention { .. } | Spec::CrossAttention { .. } => attention::run(ctx, c, rng).await,
        Spec::Adamw { .. } | Spec::Sgd { .. } | Spec::Ema { .. } => optim::run(ctx, c, rng).await,
    }
}
