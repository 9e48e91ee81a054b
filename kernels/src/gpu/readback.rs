//! Reading GPU buffers back to the host. This is the one place where native and web differ: natively we block
//! in `device.poll` until the map callback has run; in the browser the callback is driven by the event loop,
//! so we only await it.

use super::GpuContext;
use crate::{Error, Result};

/// A storage buffer a tensor owns. In the browser, dropping it frees its GPU memory soon: wgpu's WebGPU backend
/// leaves that to the JavaScript garbage collector, which does not see GPU memory, so a browser's GPU process ran
/// out after a few dozen LiteMedSAM passes and lost the device. On wasm32 a dropped buffer is destroyed once the
/// work submitted with the next readback has finished (all work recorded before the drop was submitted by then:
/// every readback submits its pass's pending work first). Natively dropping the handle frees it, as before.
#[derive(Debug)]
pub struct GpuBuffer(wgpu::Buffer);

impl From<wgpu::Buffer> for GpuBuffer {
    fn from(b: wgpu::Buffer) -> Self {
        GpuBuffer(b)
    }
}

impl std::ops::Deref for GpuBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.0
    }
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    static DROPPED: std::cell::RefCell<Vec<wgpu::Buffer>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        #[cfg(target_arch = "wasm32")]
        DROPPED.with(|d| d.borrow_mut().push(self.0.clone()));
    }
}

/// The buffers dropped so far (wasm32; empty natively), to destroy once the work submitted next has finished.
fn take_dropped() -> Vec<wgpu::Buffer> {
    #[cfg(target_arch = "wasm32")]
    return DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    #[cfg(not(target_arch = "wasm32"))]
    Vec::new()
}

async fn read_bytes(ctx: &GpuContext, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let mut parts = read_many(ctx, &[(src, bytes)]).await?;
    Ok(parts.pop().unwrap_or_default())
}

/// Read the first `bytes` of each source through one staging buffer and one mapping (one round trip for all).
pub async fn read_many(ctx: &GpuContext, srcs: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<u8>>> {
    let total: u64 = srcs.iter().map(|s| s.1).sum();
    if total == 0 {
        return Ok(srcs.iter().map(|_| Vec::new()).collect());
    }
    if let Some((_, b)) = srcs.iter().find(|s| s.1 % 4 != 0) {
        return Err(Error::Readback { message: format!("read of {b} bytes: copies go in multiples of 4") });
    }
    let dropped = take_dropped();
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("medpick readback"),
        size: total,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.note_memory();
    let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
    let mut at = 0u64;
    for &(src, bytes) in srcs {
        if bytes > 0 {
            enc.copy_buffer_to_buffer(src, 0, &staging, at, bytes);
        }
        at += bytes;
    }
    ctx.queue.submit(Some(enc.finish()));

    let (tx, rx) = futures_channel::oneshot::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Readback { message: e.to_string() })?;
    let mapped = rx.await.map_err(|_| Error::Readback { message: "map callback dropped".into() })?;
    if let Err(e) = mapped {
        // A validation error or a lost device recorded on the way explains a failed mapping better.
        ctx.take_error("readback")?;
        return Err(Error::Readback { message: e.to_string() });
    }
    let out = {
        let view = staging.get_mapped_range(..).map_err(|e| Error::Readback { message: e.to_string() })?;
        let mut out = Vec::with_capacity(srcs.len());
        let mut at = 0usize;
        for &(_, bytes) in srcs {
            out.push(view[at..at + bytes as usize].to_vec());
            at += bytes as usize;
        }
        out
    };
    staging.unmap();
    staging.destroy();
    for b in dropped {
        b.destroy();
    }
    ctx.take_error("readback")?;
    Ok(out)
}

/// One f32 and one u32 (a value and its index, e.g. from `argmax_rows`) in a single round trip.
pub async fn read_f32_u32(ctx: &GpuContext, val: &wgpu::Buffer, idx: &wgpu::Buffer) -> Result<(f32, u32)> {
    let parts = read_many(ctx, &[(val, 4), (idx, 4)]).await?;
    let v: Vec<f32> = bytemuck::pod_collect_to_vec(&parts[0]);
    let i: Vec<u32> = bytemuck::pod_collect_to_vec(&parts[1]);
    Ok((v[0], i[0]))
}

/// Wait until all submitted work has finished: natively by polling the device; in the browser by reading one
/// value back through a fresh mapping (the event loop drives the GPU there).
pub async fn wait(ctx: &GpuContext) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu { op: "wait".into(), message: e.to_string() })?;
    #[cfg(target_arch = "wasm32")]
    {
        let probe = ctx.storage("wait", 4)?;
        read_bytes(ctx, &probe, 4).await?;
    }
    ctx.take_error("wait")
}

/// Read `len` f32 values from the start of `src`.
pub async fn read_f32(ctx: &GpuContext, src: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
    let bytes = read_bytes(ctx, src, (len * 4) as u64).await?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

/// Read `len` u32 values from the start of `src`.
pub async fn read_u32(ctx: &GpuContext, src: &wgpu::Buffer, len: usize) -> Result<Vec<u32>> {
    let bytes = read_bytes(ctx, src, (len * 4) as u64).await?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}
