//! Self-test cases of the pairwise-distance kernels: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    Pairwise { n: usize, m: usize, d: usize, same: bool },
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
            Spec::Pairwise { n, m, d, same } => {
                format!("{n}x{m} d{d}{}", if *same { " self" } else { "" })
            }
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Pairwise(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
    let mut v = Vec::new();
    for (n, m, d, same) in [
        (1, 1, 1, false),
        (7, 7, 7, true),
        (63, 65, 64, false),
        (64, 64, 3, true),
        (65, 1000, 7, false),
        (1000, 63, 256, false),
    ] {
        v.push(case("pairwise_sqdist", Small, Pairwise { n, m, d, same }));
        v.push(case("pairwise_sqdist_regs", Small, Pairwise { n, m, d, same }));
    }
    for kernel in ["pairwise_sqdist", "pairwise_sqdist_regs"] {
        v.push(case(kernel, Model, Pairwise { n: 1000, m: 1000, d: 384, same: true }));
        v.push(case(kernel, Model, Pairwise { n: 65, m: 1000, d: 1536, same: false }));
    }
    // k-means++ trials against a pool: a few rows, many columns.
    v.push(case("pairwise_sqdist_regs", Model, Pairwise { n: 8, m: 10_000, d: 256, same: false }));
    // pairwise_sqdist_regs4 takes D % 4 == 0.
    for (n, m, d, same) in
        [(1, 1, 4, false), (7, 7, 8, true), (63, 65, 64, false), (64, 64, 4, true), (1000, 63, 256, false)]
    {
        v.push(case("pairwise_sqdist_regs4", Small, Pairwise { n, m, d, same }));
    }
    v.push(case("pairwise_sqdist_regs4", Model, Pairwise { n: 1000, m: 1000, d: 384, same: true }));
    v.push(case("pairwise_sqdist_regs4", Model, Pairwise { n: 65, m: 1000, d: 1536, same: false }));
    v.push(case("pairwise_sqdist_regs4", Model, Pairwise { n: 8, m: 10_000, d: 256, same: false }));
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    match spec.clone() {
        Spec::Pairwise { n, m, d, same } => {
            let a = rng.uniform_vec(n * d, -1.0, 1.0);
            let b = if same { a[..m * d].to_vec() } else { rng.uniform_vec(m * d, -1.0, 1.0) };
            let (want, cpu_ms) = timed!(match c.kernel {
                "pairwise_sqdist_regs" => cpu::pairwise_sqdist_regs(&a, &b, n, m, d),
                "pairwise_sqdist_regs4" => cpu::pairwise_sqdist_regs4(&a, &b, n, m, d),
                _ => cpu::pairwise_sqdist(&a, &b, n, m, d),
            });
            let Some(ctx) = ctx else {
                return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms });
            };
            let (got, gpu_ms) = timed!({
                let (ba, bb) = (ctx.upload("selftest", &a)?, ctx.upload("selftest", &b)?);
                let out = ctx.storage("selftest", (n * m * 4) as u64)?;
                let mut enc = ctx.encoder();
                match c.kernel {
                    "pairwise_sqdist_regs" => ops::pairwise_sqdist_regs(ctx, &mut enc, &ba, &bb, &out, n, m, d).await?,
                    "pairwise_sqdist_regs4" => {
                        ops::pairwise_sqdist_regs4(ctx, &mut enc, &ba, &bb, &out, n, m, d).await?
                    }
                    _ => ops::pairwise_sqdist(ctx, &mut enc, &ba, &bb, &out, n, m, d).await?,
                }
                ctx.submit(enc);
                read_f32(ctx, &out, n * m).await?
            });
            // The norm expansion loses precision relative to the norms, not to the distance: the absolute
            // tolerance scales with ‖a‖² + ‖b‖² (≤ 2d/3 on average here).
            let tol = Tolerance::new(1e-4, 1e-5 * d as f32);
            Ok(Outcome { cmp: Some(compare(&got, &want, tol)), elements: want.len(), gpu_ms, cpu_ms })
        }
    }
}
