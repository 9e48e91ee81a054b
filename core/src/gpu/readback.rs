//! Reading GPU buffers back to the host. This is the one place where native and web differ: natively we block
//! in `device.poll` until the map callback has run; in the browser the callback is driven by the event loop,
//! so we only await it.

use super::GpuContext;
use crate::{Error, Result};

async fn read_bytes(ctx: &GpuContext, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("medpick readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
    enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
    ctx.queue.submit(Some(enc.finish()));

    let (tx, rx) = futures_channel::oneshot::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Readback { message: e.to_string() })?;
    let mapped = rx.await.map_err(|_| Error::Readback { message: "map callback dropped".into() })?;
    mapped.map_err(|e| Error::Readback { message: e.to_string() })?;
    let out = {
        let view = staging.get_mapped_range(..).map_err(|e| Error::Readback { message: e.to_string() })?;
        view.to_vec()
    };
    staging.unmap();
    ctx.take_error("readback")?;
    Ok(out)
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
