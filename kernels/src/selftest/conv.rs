//! Self-test cases of convolution and layout: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

/// The cases of this family's kernels.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    Dwconv { g: ops::ConvGeom },
    Im2col { g: ops::ConvGeom },
    Pad { h: usize, w: usize, c: usize, hp: usize, wp: usize },
    CropAdd { h: usize, w: usize, c: usize, hp: usize, wp: usize },
    DepthToSpace { h: usize, w: usize, c: usize, r: usize },
    Transpose { rows: usize, cols: usize },
}

impl Spec {
    pub(super) fn label(&self) -> String {
        match self {
            Spec::Dwconv { g } | Spec::Im2col { g } => {
                format!("{}x{}x{} k{} s{} p{}", g.h, g.w, g.c, g.k, g.stride, g.pad)
            }
            Spec::Pad { h, w, c, hp, wp } | Spec::CropAdd { h, w, c, hp, wp } => format!("{h}x{w}x{c} in {hp}x{wp}"),
            Spec::DepthToSpace { h, w, c, r } => format!("{h}x{w}x{c} r{r}"),
            Spec::Transpose { rows, cols } => format!("{rows}x{cols}"),
        }
    }
}

fn case(kernel: &'static str, group: Group, spec: Spec) -> Case {
    super::case(kernel, group, super::Spec::Conv(spec))
}

/// Every case of this family: small odd sizes around the workgroup sizes, and the model shapes that use each kernel.
pub(super) fn cases() -> Vec<Case> {
    use self::Spec::*;
    use Group::*;
    let mut v = Vec::new();
    let geom = |h, w, c, k, stride, pad| ops::ConvGeom { h, w, c, k, stride, pad };
    for (h, w, c, k, s, p) in [
        (1, 1, 1, 1, 1, 0),
        (7, 7, 3, 3, 1, 1),
        (63, 65, 5, 3, 2, 1),
        (64, 64, 7, 3, 1, 1),
        (65, 63, 64, 3, 2, 1),
        (9, 6, 3, 3, 1, 0),
        (10, 11, 4, 5, 1, 2),
        (13, 10, 2, 5, 3, 2),
    ] {
        v.push(case("dwconv2d", Small, Dwconv { g: geom(h, w, c, k, s, p) }));
    }
    // TinyViT: PatchMerging 128→64 (stride 2), local conv at 64×64×320.
    v.push(case("dwconv2d", Model, Dwconv { g: geom(128, 128, 160, 3, 2, 1) }));
    v.push(case("dwconv2d", Model, Dwconv { g: geom(64, 64, 320, 3, 1, 1) }));
    for (h, w, c, k, s, p) in [(1, 1, 1, 1, 1, 0), (7, 7, 3, 3, 1, 1), (65, 63, 2, 3, 2, 1), (28, 28, 3, 14, 14, 0)] {
        v.push(case("im2col", Small, Im2col { g: geom(h, w, c, k, s, p) }));
    }
    // The LiteMedSAM neck's 3×3 conv and DINOv2's 14×14 patch embedding.
    v.push(case("im2col", Model, Im2col { g: geom(64, 64, 256, 3, 1, 1) }));
    v.push(case("im2col", Model, Im2col { g: geom(224, 224, 3, 14, 14, 0) }));
    // im2col_k3c4: 3×3 only, C % 4 == 0; strides 1 and 2, padding 0 and 1; the neck and the seg head's conv.
    for (h, w, c, s, p) in [(1, 1, 4, 1, 1), (7, 7, 4, 1, 1), (65, 63, 8, 2, 1), (9, 10, 12, 1, 0), (3, 3, 4, 1, 0)] {
        v.push(case("im2col_k3c4", Small, Im2col { g: geom(h, w, c, 3, s, p) }));
    }
    v.push(case("im2col_k3c4", Model, Im2col { g: geom(64, 64, 256, 3, 1, 1) }));
    for (h, w, c, hp, wp) in [(1, 1, 1, 7, 7), (7, 7, 3, 7, 7), (63, 65, 3, 70, 70), (64, 64, 5, 65, 70)] {
        v.push(case("pad2d", Small, Pad { h, w, c, hp, wp }));
        v.push(case("crop_add2d", Small, CropAdd { h, w, c, hp, wp }));
    }
    v.push(case("pad2d", Model, Pad { h: 128, w: 128, c: 128, hp: 133, wp: 133 }));
    v.push(case("crop_add2d", Model, CropAdd { h: 64, w: 64, c: 160, hp: 70, wp: 70 }));
    for (h, w, c, r) in [(1, 1, 1, 1), (1, 1, 3, 2), (7, 5, 3, 2), (8, 9, 65, 2), (3, 4, 5, 3)] {
        v.push(case("depth_to_space", Small, DepthToSpace { h, w, c, r }));
    }
    // The decoder's two transposed convolutions: 64×64×256 → 128×128×64 and → 256×256×32.
    v.push(case("depth_to_space", Model, DepthToSpace { h: 64, w: 64, c: 64, r: 2 }));
    v.push(case("depth_to_space", Model, DepthToSpace { h: 128, w: 128, c: 32, r: 2 }));
    for (rows, cols) in [(1, 1), (7, 7), (63, 64), (64, 65), (65, 1000), (1000, 3)] {
        v.push(case("transpose", Small, Transpose { rows, cols }));
    }
    v.push(case("transpose", Model, Transpose { rows: 4096, cols: 256 }));
    v
}

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, spec: &Spec, rng: &mut Rng) -> Result<Outcome> {
    match spec.clone() {
        Spec::Dwconv { g } => {
            let (ho, wo) = g.out_hw();
            let x = rng.uniform_vec(g.h * g.w * g.c, -1.0, 1.0);
            let wt = rng.uniform_vec(g.c * g.k * g.k, -1.0, 1.0);
            let b = rng.uniform_vec(g.c, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::dwconv2d(&x, &wt, &b, g));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bx, bw, bb) =
                    (ctx.upload("selftest", &x)?, ctx.upload("selftest", &wt)?, ctx.upload("selftest", &b)?);
                let y = ctx.storage("selftest", (ho * wo * g.c * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::dwconv2d(ctx, &mut enc, &bx, &bw, &bb, &y, g).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, ho * wo * g.c).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::BALANCED)), elements: want.len(), gpu_ms, cpu_ms })
        }
        Spec::Im2col { g } => {
            let (ho, wo) = g.out_hw();
            let n = ho * wo * g.c * g.k * g.k;
            let x = rng.uniform_vec(g.h * g.w * g.c, -1.0, 1.0);
            let k3c4 = c.kernel == "im2col_k3c4";
            let (want, cpu_ms) = timed!(if k3c4 { cpu::im2col_k3c4(&x, g) } else { cpu::im2col(&x, g) });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                if k3c4 {
                    ops::im2col_k3c4(ctx, &mut enc, &bx, &y, g).await?;
                } else {
                    ops::im2col(ctx, &mut enc, &bx, &y, g).await?;
                }
                ctx.submit(enc);
                read_f32(ctx, &y, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::new(0.0, 0.0))), elements: n, gpu_ms, cpu_ms })
        }
        Spec::Pad { h, w, c, hp, wp } => {
            let x = rng.uniform_vec(h * w * c, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::pad2d(&x, h, w, c, hp, wp));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.upload("selftest", &vec![7f32; hp * wp * c])?; // padding must overwrite, not keep
                let mut enc = ctx.encoder();
                ops::pad2d(ctx, &mut enc, &bx, &y, h, w, c, hp, wp).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, hp * wp * c).await?
            });
            Ok(Outcome {
                cmp: Some(compare(&got, &want, Tolerance::new(0.0, 0.0))),
                elements: want.len(),
                gpu_ms,
                cpu_ms,
            })
        }
        Spec::CropAdd { h, w, c, hp, wp } => {
            let x = rng.uniform_vec(hp * wp * c, -1.0, 1.0);
            let y0 = rng.uniform_vec(h * w * c, -1.0, 1.0);
            let (want, cpu_ms) = timed!({
                let mut y = y0.clone();
                cpu::crop_add2d(&x, &mut y, h, w, c, wp);
                y
            });
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: want.len(), gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bx, by) = (ctx.upload("selftest", &x)?, ctx.upload("selftest", &y0)?);
                let mut enc = ctx.encoder();
                ops::crop_add2d(ctx, &mut enc, &bx, &by, h, w, c, hp, wp).await?;
                ctx.submit(enc);
                read_f32(ctx, &by, h * w * c).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: want.len(), gpu_ms, cpu_ms })
        }
        Spec::Transpose { rows, cols } => {
            let x = rng.uniform_vec(rows * cols, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::transpose(&x, rows, cols));
            let n = rows * cols;
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let bx = ctx.upload("selftest", &x)?;
                let y = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::transpose(ctx, &mut enc, &bx, &y, rows, cols).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: n, gpu_ms, cpu_ms })
        }
        Spec::DepthToSpace { h, w, c, r } => {
            let n = h * w * r * r * c;
            let x = rng.uniform_vec(n, -1.0, 1.0);
            let bias = rng.uniform_vec(c, -1.0, 1.0);
            let (want, cpu_ms) = timed!(cpu::depth_to_space(&x, &bias, h, w, c, r));
            let Some(ctx) = ctx else { return Ok(Outcome { cmp: None, elements: n, gpu_ms: 0.0, cpu_ms }) };
            let (got, gpu_ms) = timed!({
                let (bx, bb) = (ctx.upload("selftest", &x)?, ctx.upload("selftest", &bias)?);
                let y = ctx.storage("selftest", (n * 4) as u64)?;
                let mut enc = ctx.encoder();
                ops::depth_to_space(ctx, &mut enc, &bx, &bb, &y, h, w, c, r).await?;
                ctx.submit(enc);
                read_f32(ctx, &y, n).await?
            });
            Ok(Outcome { cmp: Some(compare(&got, &want, Tolerance::STRICT)), elements: n, gpu_ms, cpu_ms })
        }
    }
}
