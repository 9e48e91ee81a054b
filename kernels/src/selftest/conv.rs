//! Self-test cases of convolution and layout: each runs the CPU implementation and, when a device is given, the kernel,
//! and compares them.

use super::*;

pub(super) async fn run(ctx: Option<&GpuContext>, c: &Case, rng: &mut Rng) -> Result<Outcome> {
    match c.spec.clone() {
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
        other => Err(misrouted(c, &other)),
    }
}
