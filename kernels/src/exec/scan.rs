//! The selection scans behind the seam: the same calls record WGSL dispatches on a `GpuContext` or run the CPU
//! implementations at once. The strategies (in core) hold their pools, tiles and per-row state in [`Buf`]s and
//! never see which backend computes.
//!
//! A [`Buf`] is what a storage buffer is to a kernel: 32-bit words, read as f32 or u32 by the op. On the CPU it
//! is a vector of words behind a `RefCell` (scans write into buffers they only hold shared references to, as on
//! the GPU), or the caller's own feature rows, borrowed read-only so a pool is never copied on the CPU.
//!
//! Order: on the GPU, `Backend::write` lands before the next submitted commands (wgpu's queue order); on the
//! CPU everything happens in program order. The strategies flush before every write, so both agree.

use std::cell::{Ref, RefCell, RefMut};

use super::Exec;
use crate::cpu::{self, GainMode};
use crate::gpu::ops::{self, Tile};
use crate::gpu::{read_f32, read_u32, GpuContext};
use crate::{Error, Result};

/// Where the scans of one strategy run.
#[derive(Clone, Copy)]
pub enum Backend<'a> {
    Gpu(&'a GpuContext),
    Cpu,
}

/// A scan's storage: a GPU buffer, host words, or borrowed host rows (read-only).
pub enum Buf<'a> {
    Gpu(wgpu::Buffer),
    Cpu(RefCell<Vec<u32>>),
    Host(&'a [f32]),
}

impl<'a> Backend<'a> {
    /// The GPU backend when a context is given, the CPU backend otherwise.
    pub fn on(ctx: Option<&'a GpuContext>) -> Self {
        ctx.map_or(Backend::Cpu, Backend::Gpu)
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Backend::Gpu(_))
    }

    /// A pass of scans recording into one encoder on the GPU (submitted at `flush` or before a read).
    pub fn exec(&self) -> Exec<'a> {
        match *self {
            Backend::Gpu(ctx) => Exec::gpu(ctx),
            Backend::Cpu => Exec::cpu(),
        }
    }

    /// The 32-bit values one buffer may hold: the device's storage-binding limit on the GPU, unbounded on the CPU.
    pub fn max_words(&self) -> usize {
        match self {
            Backend::Gpu(ctx) => {
                (ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size) / 4) as usize
            }
            Backend::Cpu => usize::MAX / 8,
        }
    }

    /// A zeroed buffer of `len` words.
    pub fn storage(&self, label: &'static str, len: usize) -> Result<Buf<'a>> {
        Ok(match self {
            Backend::Gpu(ctx) => Buf::Gpu(ctx.storage(label, (len * 4) as u64)?),
            Backend::Cpu => Buf::Cpu(RefCell::new(vec![0u32; len.max(1)])),
        })
    }

    /// A buffer holding `data` (f32 or u32 words).
    pub fn upload<T: bytemuck::Pod>(&self, label: &'static str, data: &[T]) -> Result<Buf<'a>> {
        words_of::<T>(label)?;
        Ok(match self {
            Backend::Gpu(ctx) => Buf::Gpu(ctx.upload(label, data)?),
            Backend::Cpu => {
                let mut v: Vec<u32> = bytemuck::cast_slice(data).to_vec();
                if v.is_empty() {
                    v.push(0);
                }
                Buf::Cpu(RefCell::new(v))
            }
        })
    }

    /// Rows the scans only read: uploaded on the GPU, borrowed on the CPU.
    pub fn rows(&self, label: &'static str, data: &'a [f32]) -> Result<Buf<'a>> {
        Ok(match self {
            Backend::Gpu(ctx) => Buf::Gpu(ctx.upload(label, data)?),
            Backend::Cpu => Buf::Host(data),
        })
    }

    /// Overwrite words `offset..offset + data.len()` of `dst`.
    pub fn write<T: bytemuck::Pod>(&self, dst: &Buf, offset: usize, data: &[T]) -> Result<()> {
        const OP: &str = "write";
        words_of::<T>(OP)?;
        let src: &[u32] = bytemuck::cast_slice(data);
        match (self, dst) {
            (Backend::Gpu(ctx), Buf::Gpu(b)) => {
                check_words(OP, "destination", dst, offset + src.len())?;
                ctx.queue.write_buffer(b, (offset * 4) as u64, bytemuck::cast_slice(src));
                Ok(())
            }
            (Backend::Cpu, Buf::Cpu(_)) => {
                let mut w = words_mut(OP, "destination", dst, offset + src.len())?;
                w[offset..offset + src.len()].copy_from_slice(src);
                Ok(())
            }
            (_, Buf::Host(_)) => Err(read_only(OP)),
            _ => Err(elsewhere(OP)),
        }
    }
}

fn words_of<T>(op: &'static str) -> Result<()> {
    if std::mem::size_of::<T>() != 4 {
        return Err(Error::Invalid(format!("{op}: scan buffers hold 32-bit values")));
    }
    Ok(())
}

fn elsewhere(op: &'static str) -> Error {
    Error::Invalid(format!("{op}: a buffer lives on a different device than this scan"))
}

fn read_only(op: &'static str) -> Error {
    Error::Invalid(format!("{op}: the pool's borrowed rows are read-only"))
}

impl Buf<'_> {
    /// Words this buffer holds (0 for host words while an op writes them).
    pub fn len(&self) -> usize {
        match self {
            Buf::Gpu(b) => (b.size() / 4) as usize,
            Buf::Cpu(v) => v.try_borrow().map_or(0, |v| v.len()),
            Buf::Host(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn check_words(op: &'static str, what: &str, b: &Buf, want: usize) -> Result<()> {
    let n = b.len();
    if n < want {
        return Err(Error::shape(op, format!("{what} holds {n} values, needs {want}")));
    }
    Ok(())
}

/// A CPU buffer's words, read-only.
enum Words<'b> {
    Cell(Ref<'b, Vec<u32>>),
    Host(&'b [f32]),
}

impl Words<'_> {
    fn f32s(&self) -> &[f32] {
        match self {
            Words::Cell(r) => bytemuck::cast_slice(r),
            Words::Host(v) => v,
        }
    }

    fn u32s(&self) -> &[u32] {
        match self {
            Words::Cell(r) => r,
            Words::Host(v) => bytemuck::cast_slice(v),
        }
    }
}

fn aliased(op: &'static str, what: &str) -> Error {
    Error::Invalid(format!("{op}: {what} is also another operand of this op"))
}

fn words<'b>(op: &'static str, what: &str, b: &'b Buf, want: usize) -> Result<Words<'b>> {
    let w = match b {
        Buf::Cpu(c) => Words::Cell(c.try_borrow().map_err(|_| aliased(op, what))?),
        Buf::Host(v) => Words::Host(v),
        Buf::Gpu(_) => return Err(elsewhere(op)),
    };
    let n = w.u32s().len();
    if n < want {
        return Err(Error::shape(op, format!("{what} holds {n} values, needs {want}")));
    }
    Ok(w)
}

fn words_mut<'b>(op: &'static str, what: &str, b: &'b Buf, want: usize) -> Result<RefMut<'b, Vec<u32>>> {
    let w = match b {
        Buf::Cpu(c) => c.try_borrow_mut().map_err(|_| aliased(op, what))?,
        Buf::Host(_) => return Err(read_only(op)),
        Buf::Gpu(_) => return Err(elsewhere(op)),
    };
    if w.len() < want {
        return Err(Error::shape(op, format!("{what} holds {} values, needs {want}", w.len())));
    }
    Ok(w)
}

fn f32s_mut(w: &mut [u32]) -> &mut [f32] {
    bytemuck::cast_slice_mut(w)
}

fn gpu_buf<'b>(op: &'static str, b: &'b Buf) -> Result<&'b wgpu::Buffer> {
    match b {
        Buf::Gpu(g) => Ok(g),
        _ => Err(elsewhere(op)),
    }
}

impl Exec<'_> {
    /// Copy `len` words from `src[src_off..]` to `dst[dst_off..]`.
    pub fn copy(&mut self, src: &Buf, src_off: usize, dst: &Buf, dst_off: usize, len: usize) -> Result<()> {
        const OP: &str = "copy";
        if len == 0 {
            return Ok(());
        }
        match &mut self.gpu {
            Some((_, enc)) => {
                check_words(OP, "source", src, src_off + len)?;
                check_words(OP, "destination", dst, dst_off + len)?;
                let (s, d) = (gpu_buf(OP, src)?, gpu_buf(OP, dst)?);
                enc.copy_buffer_to_buffer(s, (src_off * 4) as u64, d, (dst_off * 4) as u64, (len * 4) as u64);
            }
            None => {
                let s = words(OP, "source", src, src_off + len)?;
                let mut d = words_mut(OP, "destination", dst, dst_off + len)?;
                d[dst_off..dst_off + len].copy_from_slice(&s.u32s()[src_off..src_off + len]);
            }
        }
        Ok(())
    }

    /// The first `len` words of `b` as f32, after the pending work.
    pub async fn read_f32(&mut self, b: &Buf<'_>, len: usize) -> Result<Vec<f32>> {
        self.flush();
        match &self.gpu {
            Some((ctx, _)) => read_f32(ctx, gpu_buf("read", b)?, len).await,
            None => Ok(words("read", "buffer", b, len)?.f32s()[..len].to_vec()),
        }
    }

    /// The first `len` words of `b` as u32, after the pending work.
    pub async fn read_u32(&mut self, b: &Buf<'_>, len: usize) -> Result<Vec<u32>> {
        self.flush();
        match &self.gpu {
            Some((ctx, _)) => read_u32(ctx, gpu_buf("read", b)?, len).await,
            None => Ok(words("read", "buffer", b, len)?.u32s()[..len].to_vec()),
        }
    }

    /// Several f32 reads in one round trip on the GPU.
    pub async fn read_many_f32(&mut self, bufs: &[(&Buf<'_>, usize)]) -> Result<Vec<Vec<f32>>> {
        self.flush();
        match &self.gpu {
            Some((ctx, _)) => {
                let srcs = bufs
                    .iter()
                    .map(|&(b, len)| Ok((gpu_buf("read", b)?, (len * 4) as u64)))
                    .collect::<Result<Vec<_>>>()?;
                let parts = crate::gpu::readback::read_many(ctx, &srcs).await?;
                Ok(parts.iter().map(|p| bytemuck::pod_collect_to_vec::<u8, f32>(p)).collect())
            }
            None => bufs.iter().map(|&(b, len)| Ok(words("read", "buffer", b, len)?.f32s()[..len].to_vec())).collect(),
        }
    }

    /// D [n, m] = squared distances between the rows of `a` [n, d] and `b` [m, d] (`pairwise_sqdist`, with the
    /// adapter's kernel on the GPU).
    #[allow(clippy::too_many_arguments)] // operands, output, sizes
    pub async fn sqdist(
        &mut self,
        a: &Buf<'_>,
        b: &Buf<'_>,
        out: &Buf<'_>,
        n: usize,
        m: usize,
        d: usize,
    ) -> Result<()> {
        const OP: &str = "pairwise_sqdist";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::sqdist(ctx, enc, gpu_buf(OP, a)?, gpu_buf(OP, b)?, gpu_buf(OP, out)?, n, m, d).await
            }
            None => {
                let (a, b) = (words(OP, "a", a, n * d)?, words(OP, "b", b, m * d)?);
                let mut o = words_mut(OP, "out", out, n * m)?;
                cpu::pairwise_sqdist::pairwise_sqdist_into(a.f32s(), b.f32s(), f32s_mut(&mut o), n, m, d);
                Ok(())
            }
        }
    }

    /// k-center step: mind[i] = min(mind[i], ‖x_i − x_center‖²), or = when `init`.
    #[allow(clippy::too_many_arguments)] // operands, sizes, the centre and the flag
    pub async fn min_dist_update(
        &mut self,
        x: &Buf<'_>,
        mind: &Buf<'_>,
        n: usize,
        d: usize,
        center: usize,
        init: bool,
    ) -> Result<()> {
        const OP: &str = "min_dist_update";
        if center >= n {
            return Err(Error::shape(OP, format!("centre {center} is outside the {n} rows")));
        }
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::min_dist_update(ctx, enc, gpu_buf(OP, x)?, gpu_buf(OP, mind)?, n, d, center, init).await
            }
            None => {
                let x = words(OP, "x", x, n * d)?;
                let mut m = words_mut(OP, "mind", mind, n)?;
                cpu::min_dist_update(x.f32s(), f32s_mut(&mut m), n, d, center, init);
                Ok(())
            }
        }
    }

    /// Pruned k-center step (`cpu::kcenter_update`): `x` holds this block's rows, `owner`/`mind` the pool's,
    /// `count` [1] grows by the rows read.
    #[allow(clippy::too_many_arguments)] // operands and the step
    pub async fn kcenter_update(
        &mut self,
        x: &Buf<'_>,
        dc2: &Buf<'_>,
        owner: &Buf<'_>,
        mind: &Buf<'_>,
        count: &Buf<'_>,
        s: cpu::kcenter_update::KcenterStep,
    ) -> Result<()> {
        const OP: &str = "kcenter_update";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (x, dc2, c) = (gpu_buf(OP, x)?, gpu_buf(OP, dc2)?, gpu_buf(OP, count)?);
                ops::kcenter_update(ctx, enc, x, dc2, gpu_buf(OP, owner)?, gpu_buf(OP, mind)?, c, s).await
            }
            None => {
                if s.center * s.d + s.d > x.len() {
                    return Err(Error::shape(OP, format!("centre row {} is outside x", s.center)));
                }
                let x = words(OP, "x", x, s.n * s.d)?;
                let dc2 = words(OP, "dc2", dc2, s.k as usize)?;
                let mut o = words_mut(OP, "owner", owner, s.row0 + s.n)?;
                let mut m = words_mut(OP, "mind", mind, s.row0 + s.n)?;
                let mut c = words_mut(OP, "count", count, 1)?;
                cpu::kcenter_update(x.f32s(), dc2.f32s(), &mut o, f32s_mut(&mut m), &mut c, s);
                Ok(())
            }
        }
    }

    /// k-means++'s potential decrease of each trial centre over this block's rows, pruned as `kcenter_update`
    /// (`cpu::kmeanspp_gain`): one partial sum per trial and 32 rows, `count` [1] grows by the pairs read.
    #[allow(clippy::too_many_arguments)] // operands, outputs and the pass
    pub async fn kmeanspp_gain(
        &mut self,
        x: &Buf<'_>,
        cand: &Buf<'_>,
        dcand: &Buf<'_>,
        owner: &Buf<'_>,
        mind: &Buf<'_>,
        partial: &Buf<'_>,
        count: &Buf<'_>,
        s: cpu::kmeanspp_gain::KmeansppGain,
    ) -> Result<()> {
        const OP: &str = "kmeanspp_gain";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (x, c, dc) = (gpu_buf(OP, x)?, gpu_buf(OP, cand)?, gpu_buf(OP, dcand)?);
                let (o, m) = (gpu_buf(OP, owner)?, gpu_buf(OP, mind)?);
                let (p, n) = (gpu_buf(OP, partial)?, gpu_buf(OP, count)?);
                ops::kmeanspp_gain(ctx, enc, x, c, dc, o, m, p, n, s).await
            }
            None => {
                let groups = s.n.div_ceil(cpu::kmeanspp_gain::KMEANSPP_GAIN_ROWS);
                if s.trials > cpu::kmeanspp_gain::KMEANSPP_GAIN_TRIALS || s.t0 + s.trials > s.total {
                    return Err(Error::shape(OP, format!("trials {}..{} of {}", s.t0, s.t0 + s.trials, s.total)));
                }
                let (x, c) = (words(OP, "x", x, s.n * s.d)?, words(OP, "cand", cand, s.total * s.d)?);
                let dc = words(OP, "dcand", dcand, s.total * s.stride)?;
                let (o, m) = (words(OP, "owner", owner, s.row0 + s.n)?, words(OP, "mind", mind, s.row0 + s.n)?);
                let mut p = words_mut(OP, "partial", partial, (s.wg0 + groups) * s.total)?;
                let mut n = words_mut(OP, "count", count, 1)?;
                let (x, c, dc, m) = (x.f32s(), c.f32s(), dc.f32s(), m.f32s());
                cpu::kmeanspp_gain(x, c, dc, o.u32s(), m, f32s_mut(&mut p), &mut n, s);
                Ok(())
            }
        }
    }

    /// [`Self::kcenter_update`] on the f16 store's packed rows (⌈d/2⌉ words a row).
    /// Pruned k-center step (`cpu::kcenter_update`): `x` holds this block's rows, `owner`/`mind` the pool's,
    /// `count` [1] grows by the rows read.
    #[allow(clippy::too_many_arguments)] // operands and the step
    pub async fn kcenter_update_f16(
        &mut self,
        x: &Buf<'_>,
        dc2: &Buf<'_>,
        owner: &Buf<'_>,
        mind: &Buf<'_>,
        count: &Buf<'_>,
        s: cpu::kcenter_update::KcenterStep,
    ) -> Result<()> {
        const OP: &str = "kcenter_update_f16";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (x, dc2, c) = (gpu_buf(OP, x)?, gpu_buf(OP, dc2)?, gpu_buf(OP, count)?);
                ops::kcenter_update_f16(ctx, enc, x, dc2, gpu_buf(OP, owner)?, gpu_buf(OP, mind)?, c, s).await
            }
            None => {
                if (s.center + 1) * s.d.div_ceil(2) > x.len() {
                    return Err(Error::shape(OP, format!("centre row {} is outside x", s.center)));
                }
                let x = words(OP, "x", x, s.n * s.d.div_ceil(2))?;
                let dc2 = words(OP, "dc2", dc2, s.k as usize)?;
                let mut o = words_mut(OP, "owner", owner, s.row0 + s.n)?;
                let mut m = words_mut(OP, "mind", mind, s.row0 + s.n)?;
                let mut c = words_mut(OP, "count", count, 1)?;
                cpu::kcenter_update_f16(x.u32s(), dc2.f32s(), &mut o, f32s_mut(&mut m), &mut c, s);
                Ok(())
            }
        }
    }

    /// [`Self::min_dist_update`] on f16 features, two to a word (`cpu::min_dist_update_f16::pack_f16_rows`):
    /// x holds n · ⌈d/2⌉ words.
    #[allow(clippy::too_many_arguments)] // operands, sizes, the centre and the flag
    pub async fn min_dist_update_f16(
        &mut self,
        x: &Buf<'_>,
        mind: &Buf<'_>,
        n: usize,
        d: usize,
        center: usize,
        init: bool,
    ) -> Result<()> {
        const OP: &str = "min_dist_update_f16";
        if center >= n {
            return Err(Error::shape(OP, format!("centre {center} is outside the {n} rows")));
        }
        match &mut self.gpu {
            Some((ctx, enc)) => {
                ops::min_dist_update_f16(ctx, enc, gpu_buf(OP, x)?, gpu_buf(OP, mind)?, n, d, center, init).await
            }
            None => {
                let x = words(OP, "x", x, n * d.div_ceil(2))?;
                let mut m = words_mut(OP, "mind", mind, n)?;
                cpu::min_dist_update_f16(x.u32s(), f32s_mut(&mut m), n, d, center, init);
                Ok(())
            }
        }
    }

    /// Per row of X [rows, cols]: the maximum and its lowest column (u32::MAX when nothing compares).
    #[allow(clippy::too_many_arguments)] // operands, outputs, sizes
    pub async fn argmax_rows(
        &mut self,
        x: &Buf<'_>,
        out_val: &Buf<'_>,
        out_idx: &Buf<'_>,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        const OP: &str = "argmax_rows";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (x, v, i) = (gpu_buf(OP, x)?, gpu_buf(OP, out_val)?, gpu_buf(OP, out_idx)?);
                ops::argmax_rows(ctx, enc, x, v, i, rows, cols).await
            }
            None => {
                // Every operand borrowed at once, so an aliased one is refused as on the GPU.
                let x = words(OP, "x", x, rows * cols)?;
                let (mut v, mut i) =
                    (words_mut(OP, "out_val", out_val, rows)?, words_mut(OP, "out_idx", out_idx, rows)?);
                let (vals, idxs) = cpu::argmax_rows(&x.f32s()[..rows * cols], rows, cols);
                f32s_mut(&mut v)[..rows].copy_from_slice(&vals);
                i[..rows].copy_from_slice(&idxs);
                Ok(())
            }
        }
    }

    /// Per row of X [rows, cols]: the k smallest values and their columns + `col_offset`, extending the lists in
    /// the outputs when `merge`.
    #[allow(clippy::too_many_arguments)] // operands, sizes, streaming offset and flag
    pub async fn topk_rows(
        &mut self,
        x: &Buf<'_>,
        out_val: &Buf<'_>,
        out_idx: &Buf<'_>,
        rows: usize,
        cols: usize,
        k: usize,
        col_offset: usize,
        merge: bool,
    ) -> Result<()> {
        const OP: &str = "topk_rows";
        if k == 0 || k > 64 {
            return Err(Error::shape(OP, format!("k = {k}; the kernel supports 1 ≤ k ≤ 64")));
        }
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (x, v, i) = (gpu_buf(OP, x)?, gpu_buf(OP, out_val)?, gpu_buf(OP, out_idx)?);
                ops::topk_rows(ctx, enc, x, v, i, rows, cols, k, col_offset, merge).await
            }
            None => {
                let x = words(OP, "x", x, rows * cols)?;
                let mut v = words_mut(OP, "out_val", out_val, rows * k)?;
                let mut i = words_mut(OP, "out_idx", out_idx, rows * k)?;
                let (v, i) = (&mut f32s_mut(&mut v)[..rows * k], &mut i[..rows * k]);
                cpu::topk_rows::topk_rows_into(x.f32s(), rows, cols, k, col_offset, merge, v, i);
                Ok(())
            }
        }
    }

    /// k-means centre update: centers[c] = mean of the rows `order[offsets[c]..offsets[c+1]]` (empty: unchanged).
    #[allow(clippy::too_many_arguments)] // operands, output, sizes
    pub async fn segment_mean(
        &mut self,
        x: &Buf<'_>,
        order: &Buf<'_>,
        offsets: &Buf<'_>,
        centers: &Buf<'_>,
        n: usize,
        k: usize,
        d: usize,
    ) -> Result<()> {
        const OP: &str = "segment_mean";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (x, o, off, c) =
                    (gpu_buf(OP, x)?, gpu_buf(OP, order)?, gpu_buf(OP, offsets)?, gpu_buf(OP, centers)?);
                ops::segment_mean(ctx, enc, x, o, off, c, n, k, d).await
            }
            None => {
                let (x, o, off) =
                    (words(OP, "x", x, n * d)?, words(OP, "order", order, n)?, words(OP, "offsets", offsets, k + 1)?);
                let mut c = words_mut(OP, "centers", centers, k * d)?;
                cpu::segment_mean(x.f32s(), &o.u32s()[..n], off.u32s(), f32s_mut(&mut c), k, d);
                Ok(())
            }
        }
    }

    /// Pack the rows `idx[g.idx_offset..][..g.rows]` of `src` (rows `g.src_row0..` of a pool) into `dst` from row
    /// `g.dst_row0`: the rows a pruned scan still measures.
    pub async fn gather_rows(&mut self, src: &Buf<'_>, idx: &Buf<'_>, dst: &Buf<'_>, g: cpu::GatherRows) -> Result<()> {
        const OP: &str = "gather_rows";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (s, i, o) = (gpu_buf(OP, src)?, gpu_buf(OP, idx)?, gpu_buf(OP, dst)?);
                ops::gather_rows(ctx, enc, s, i, o, g).await
            }
            None => {
                let (s, i) = (words(OP, "src", src, g.src_rows * g.d)?, words(OP, "idx", idx, g.idx_offset + g.rows)?);
                let mut o = words_mut(OP, "dst", dst, (g.dst_row0 + g.rows) * g.d)?;
                cpu::gather_rows(s.f32s(), i.u32s(), f32s_mut(&mut o), g);
                Ok(())
            }
        }
    }

    /// Facility-location gains (or k-means++ potential decreases) of the rows of a distance tile [rows, cols].
    #[allow(clippy::too_many_arguments)] // operands, output, sizes, the mode
    pub async fn facility_gain(
        &mut self,
        dist: &Buf<'_>,
        mind: &Buf<'_>,
        gain: &Buf<'_>,
        rows: usize,
        cols: usize,
        mode: GainMode,
    ) -> Result<()> {
        const OP: &str = "facility_gain";
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (dd, m, g) = (gpu_buf(OP, dist)?, gpu_buf(OP, mind)?, gpu_buf(OP, gain)?);
                ops::facility_gain(ctx, enc, dd, m, g, rows, cols, mode).await
            }
            None => {
                let (dd, m) = (words(OP, "dist", dist, rows * cols)?, words(OP, "mind", mind, cols)?);
                let mut g = words_mut(OP, "gain", gain, rows)?;
                cpu::facility_gain(dd.f32s(), m.f32s(), f32s_mut(&mut g), rows, cols, mode);
                Ok(())
            }
        }
    }

    /// ProbCover's purity scan over one tile (per row: nearest other label, largest distance).
    #[allow(clippy::too_many_arguments)] // the tile, the labels, both outputs and the flag
    pub async fn other_label_min(
        &mut self,
        dist: &Buf<'_>,
        labels: &Buf<'_>,
        other_min: &Buf<'_>,
        row_max: &Buf<'_>,
        n: usize,
        t: Tile,
        merge: bool,
    ) -> Result<()> {
        const OP: &str = "other_label_min";
        if t.row_offset + t.rows > n || t.col_offset + t.cols > n {
            return Err(Error::shape(OP, format!("tile {t:?} reaches outside the {n} rows")));
        }
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (dd, l) = (gpu_buf(OP, dist)?, gpu_buf(OP, labels)?);
                let (mn, mx) = (gpu_buf(OP, other_min)?, gpu_buf(OP, row_max)?);
                ops::other_label_min(ctx, enc, dd, l, mn, mx, n, t, merge).await
            }
            None => {
                let (dd, l) = (words(OP, "dist", dist, t.rows * t.cols)?, words(OP, "labels", labels, n)?);
                let (mut mn, mut mx) =
                    (words_mut(OP, "other_min", other_min, n)?, words_mut(OP, "row_max", row_max, n)?);
                let (dd, l) = (dd.f32s(), l.u32s());
                cpu::other_label_min(
                    dd,
                    t.rows,
                    t.cols,
                    t.row_offset,
                    t.col_offset,
                    l,
                    f32s_mut(&mut mn),
                    f32s_mut(&mut mx),
                    merge,
                );
                Ok(())
            }
        }
    }

    /// The δ-graph of one tile: count (`write` false) or write the edges ≤ `radius2` (see `ops::radius_edges`).
    #[allow(clippy::too_many_arguments)] // the tile, the pass, the threshold and both buffers
    pub async fn radius_edges(
        &mut self,
        dist: &Buf<'_>,
        cursor: &Buf<'_>,
        edges: &Buf<'_>,
        n: usize,
        t: Tile,
        write: bool,
        radius2: f32,
        capacity: usize,
        base: usize,
    ) -> Result<()> {
        const OP: &str = "radius_edges";
        if t.row_offset + t.rows > n || t.col_offset + t.cols > n {
            return Err(Error::shape(OP, format!("tile {t:?} reaches outside the {n} rows")));
        }
        match &mut self.gpu {
            Some((ctx, enc)) => {
                let (dd, c, e) = (gpu_buf(OP, dist)?, gpu_buf(OP, cursor)?, gpu_buf(OP, edges)?);
                ops::radius_edges(ctx, enc, dd, c, e, n, t, write, radius2, capacity, base).await
            }
            None => {
                let dd = words(OP, "dist", dist, t.rows * t.cols)?;
                let mut c = words_mut(OP, "cursor", cursor, n)?;
                let mut e = words_mut(OP, "edges", edges, capacity)?;
                let (rows, cols) = (t.rows, t.cols);
                cpu::radius_edges(
                    dd.f32s(),
                    rows,
                    cols,
                    t.row_offset,
                    t.col_offset,
                    write,
                    radius2,
                    &mut c,
                    &mut e[..capacity],
                    base,
                );
                Ok(())
            }
        }
    }
}
