//! The GPU context: picks an adapter (honouring `WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`),
//! checks and requests the limits medpick needs, caches compute pipelines, and turns GPU validation errors into
//! [`Error`]s instead of panics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::ops::GemmKernel;
use super::shaders::{self, Shader};
use crate::{Error, Result};

/// How to choose an adapter. `from_env` reads the standard wgpu variables.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Backends to consider (`WGPU_BACKEND`, e.g. "vulkan", "gl", "metal", "dx12"); all when `None`.
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter name (`WGPU_ADAPTER_NAME`).
    pub adapter_name: Option<String>,
    /// `WGPU_POWER_PREF` = low | high | none; high performance when unset.
    pub power_preference: Option<wgpu::PowerPreference>,
}

impl GpuOptions {
    pub fn from_env() -> Self {
        GpuOptions {
            backends: wgpu::Backends::from_env(),
            adapter_name: std::env::var("WGPU_ADAPTER_NAME").ok().filter(|s| !s.is_empty()),
            power_preference: wgpu::PowerPreference::from_env(),
        }
    }
}

/// A compiled kernel: pipeline plus its (automatic) bind-group layout.
pub struct Pipeline {
    pub shader: &'static Shader,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// What the adapter is and what medpick got from it.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub vendor: u32,
    pub device: u32,
    /// (limit name, value granted to medpick's device, adapter maximum)
    pub limits: Vec<(String, u64, u64)>,
    pub features: Vec<String>,
    /// The f32 GEMM kernel models and training run on this adapter ([`GpuContext::gemm_kernel`]).
    pub gemm_kernel: String,
}

/// The device and queue every op runs on, with the pipeline cache.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// Limits granted to the device (what ops must respect).
    pub limits: wgpu::Limits,
    adapter_limits: wgpu::Limits,
    adapter_features: wgpu::Features,
    /// Optional features granted to the device: `SHADER_F16` when the adapter has it, nothing else.
    device_features: wgpu::Features,
    pipelines: Mutex<HashMap<&'static str, Arc<Pipeline>>>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Largest live buffer memory seen at an allocation (wgpu-hal's counter; 0 where a backend keeps none).
    peak_buffer_bytes: std::sync::atomic::AtomicU64,
    /// Per-kernel wall time while profiling is on (`None` when off); see [`GpuContext::set_profiling`].
    profile: Mutex<Option<HashMap<&'static str, KernelTime>>>,
    /// The f32 GEMM kernel for this adapter: see [`GpuContext::gemm_kernel`].
    gemm: GemmKernel,
}

/// `MEDPICK_GEMM` (matmul | matmul_regs | matmul_regs4) names the f32 GEMM kernel; otherwise CPU adapters (Mesa
/// lavapipe, llvmpipe, SwiftShader where the backend reports it) get `matmul_regs4` (with `matmul_regs` for the
/// shapes it does not take) and every other adapter `matmul`. On lavapipe `matmul_regs` ran the GEMMs of
/// LiteMedSAM's encoder 1.6–1.9× faster than `matmul`, and `matmul_regs4` another 1.7–2× (docs/encoders.md); on a
/// GPU their uncoalesced loads would be slow.
fn choose_gemm(info: &wgpu::AdapterInfo) -> Result<GemmKernel> {
    match std::env::var("MEDPICK_GEMM").ok().filter(|s| !s.is_empty()).as_deref() {
        None => {
            Ok(if info.device_type == wgpu::DeviceType::Cpu { GemmKernel::MatmulRegs4 } else { GemmKernel::Matmul })
        }
        Some("matmul") => Ok(GemmKernel::Matmul),
        Some("matmul_regs") => Ok(GemmKernel::MatmulRegs),
        Some("matmul_regs4") => Ok(GemmKernel::MatmulRegs4),
        Some(other) => Err(Error::Unknown {
            kind: "GEMM kernel (MEDPICK_GEMM)",
            name: other.to_string(),
            known: "matmul, matmul_regs, matmul_regs4".into(),
        }),
    }
}

/// Accumulated time of one kernel while profiling.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KernelTime {
    pub kernel: &'static str,
    pub calls: u64,
    pub seconds: f64,
}

/// One limit medpick needs: name, accessor, minimum.
struct Need {
    name: &'static str,
    get: fn(&wgpu::Limits) -> u64,
    set: fn(&mut wgpu::Limits, u64),
    min: u64,
    /// Ask for the adapter's maximum rather than the minimum (buffer sizes: bigger batches).
    take_max: bool,
}

macro_rules! need {
    ($field:ident, $min:expr, $take_max:expr) => {
        Need {
            name: stringify!($field),
            get: |l| l.$field as u64,
            set: |l, v| l.$field = v as _,
            min: $min,
            take_max: $take_max,
        }
    };
}

/// The limits medpick's kernels rely on. The minima are the WebGPU defaults, so every browser with WebGPU
/// qualifies; on larger devices the buffer limits are raised to the adapter's maximum.
fn needs() -> Vec<Need> {
    vec![
        need!(max_storage_buffers_per_shader_stage, 8, false),
        need!(max_storage_buffer_binding_size, 128 << 20, true),
        need!(max_buffer_size, 256 << 20, true),
        need!(max_uniform_buffer_binding_size, 16 << 10, false),
        need!(max_compute_workgroup_storage_size, 16 << 10, false),
        need!(max_compute_invocations_per_workgroup, 256, false),
        need!(max_compute_workgroup_size_x, 256, false),
        need!(max_compute_workgroup_size_y, 256, false),
        need!(max_compute_workgroup_size_z, 64, false),
        need!(max_compute_workgroups_per_dimension, 65535, false),
        need!(max_bind_groups, 4, false),
        need!(max_bindings_per_bind_group, 1000, false),
    ]
}

impl GpuContext {
    /// Open the default adapter chosen by the `WGPU_*` environment variables.
    pub async fn new() -> Result<Self> {
        Self::with_options(&GpuOptions::from_env()).await
    }

    pub async fn with_options(opts: &GpuOptions) -> Result<Self> {
        // Without WGPU_BACKEND, try the primary backends (Vulkan, Metal, DX12, WebGPU) first and fall back to all
        // (GL) only when they offer no adapter: probing GL/EGL is slow and noisy on headless machines.
        let tries: Vec<wgpu::Backends> = match opts.backends {
            Some(b) => vec![b],
            None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::all()],
        };
        let mut last = None;
        for backends in tries {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            desc.backends = backends;
            let instance = wgpu::Instance::new(desc);
            match Self::pick_adapter(&instance, backends, opts).await {
                Ok(adapter) => return Self::from_adapter(adapter).await,
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::NoAdapter { reason: "no backend to try".into() }))
    }

    async fn pick_adapter(
        instance: &wgpu::Instance,
        backends: wgpu::Backends,
        opts: &GpuOptions,
    ) -> Result<wgpu::Adapter> {
        if let Some(want) = &opts.adapter_name {
            let want_lc = want.to_lowercase();
            let adapters = instance.enumerate_adapters(backends).await;
            let names: Vec<String> =
                adapters.iter().map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend)).collect();
            return adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&want_lc)).ok_or_else(
                || Error::NoAdapter {
                    reason: format!(
                        "WGPU_ADAPTER_NAME={want} matches none of the adapters found: [{}]",
                        names.join(", ")
                    ),
                },
            );
        }
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: opts.power_preference.unwrap_or(wgpu::PowerPreference::HighPerformance),
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoAdapter {
                reason: format!(
                    "{e} (backends {backends:?}; in a browser WebGPU must be enabled; on a machine without a GPU \
                     install Mesa's lavapipe: apt-get install mesa-vulkan-drivers libvulkan1)"
                ),
            })
    }

    /// Check the adapter against [`needs`] and open a device with exactly the limits medpick asks for.
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let gemm = choose_gemm(&info)?;
        let have = adapter.limits();
        let mut required = wgpu::Limits::downlevel_defaults();
        for n in needs() {
            let h = (n.get)(&have);
            if h < n.min {
                return Err(Error::MissingLimit { adapter: info.name.clone(), limit: n.name, have: h, need: n.min });
            }
            let value = if n.take_max { h } else { n.min.max((n.get)(&required)).min(h) };
            (n.set)(&mut required, value);
        }
        // A storage binding can never be larger than a buffer.
        required.max_storage_buffer_binding_size =
            required.max_storage_buffer_binding_size.min(required.max_buffer_size);
        // shader-f16 is requested wherever it exists (f16 weight storage is opt-in per run); nothing else is.
        let device_features = adapter.features() & wgpu::Features::SHADER_F16;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("medpick"),
                required_features: device_features,
                required_limits: required.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Device { adapter: info.name.clone(), message: e.to_string() })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        // A lost device (out of memory, a driver reset, the browser's GPU watchdog, or destroyed under us) fails
        // every later call with a generic message; this one says what happened. (When medpick drops the device
        // itself nothing reads the message.)
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut v) = lost.lock() {
                v.push(if reason == wgpu::DeviceLostReason::Destroyed {
                    format!("the GPU device was lost: destroyed ({message})")
                } else {
                    format!("the GPU device was lost ({message}); out of GPU memory, or the driver or browser reset it")
                });
            }
        });
        Ok(GpuContext {
            device,
            queue,
            info,
            limits: required,
            adapter_limits: have,
            adapter_features: adapter.features(),
            device_features,
            pipelines: Mutex::new(HashMap::new()),
            errors,
            peak_buffer_bytes: std::sync::atomic::AtomicU64::new(0),
            profile: Mutex::new(None),
            gemm,
        })
    }

    /// The f32 GEMM kernel models and training run here ([`crate::gpu::ops::gemm`]); chosen when the context
    /// was opened (see `MEDPICK_GEMM`).
    pub fn gemm_kernel(&self) -> GemmKernel {
        self.gemm
    }

    /// Adapter name, backend, the limits medpick relies on (granted and adapter maximum) and features.
    pub fn report(&self) -> AdapterReport {
        let limits = needs()
            .iter()
            .map(|n| (n.name.to_string(), (n.get)(&self.limits), (n.get)(&self.adapter_limits)))
            .collect();
        let features = self.adapter_features.iter_names().map(|(name, _)| name.to_string()).collect();
        AdapterReport {
            name: self.info.name.clone(),
            backend: format!("{:?}", self.info.backend),
            device_type: format!("{:?}", self.info.device_type),
            driver: self.info.driver.clone(),
            driver_info: self.info.driver_info.clone(),
            vendor: self.info.vendor,
            device: self.info.device,
            limits,
            features,
            gemm_kernel: self.gemm.name().to_string(),
        }
    }

    /// Return (and clear) any GPU error reported since the last call, as an error of `op`.
    pub fn take_error(&self, op: &str) -> Result<()> {
        let mut v = self.errors.lock().map_err(|_| Error::Gpu { op: op.into(), message: "poisoned".into() })?;
        if v.is_empty() {
            return Ok(());
        }
        let message = v.join("; ");
        v.clear();
        Err(Error::Gpu { op: op.to_string(), message })
    }

    /// The compiled pipeline of a kernel, created on first use. Compilation errors come back as
    /// [`Error::Shader`] (validated by wgpu's naga natively, by Tint in Chromium).
    pub async fn pipeline(&self, name: &str) -> Result<Arc<Pipeline>> {
        if let Some(p) = self.pipelines.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(p);
        }
        let shader = shaders::get(name).ok_or_else(|| Error::Unknown {
            kind: "kernel",
            name: name.to_string(),
            known: shaders::ALL.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        })?;
        if shader.f16 && !self.has_f16() {
            return Err(self.missing_f16(format!("kernel {}", shader.name)));
        }
        let p = Arc::new(self.compile(shader).await?);
        if let Ok(mut m) = self.pipelines.lock() {
            m.insert(shader.name, p.clone());
        }
        Ok(p)
    }

    /// Compile a kernel inside an error scope so that a bad shader is an error, not a panic.
    pub async fn compile(&self, shader: &'static Shader) -> Result<Pipeline> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.name),
            source: wgpu::ShaderSource::Wgsl(shader.source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(shader.name),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(err) = scope.pop().await {
            return Err(Error::Shader { name: shader.name.to_string(), message: err.to_string() });
        }
        let layout = pipeline.get_bind_group_layout(0);
        Ok(Pipeline { shader, pipeline, layout })
    }

    /// True when the device has `shader-f16`: f16 storage (model weights in half precision) is available.
    pub fn has_f16(&self) -> bool {
        self.device_features.contains(wgpu::Features::SHADER_F16)
    }

    /// The error for a request that needs `shader-f16` on a device without it.
    pub fn missing_f16(&self, what: String) -> Error {
        Error::MissingFeature { adapter: self.info.name.clone(), feature: "shader-f16", what }
    }

    /// Create a storage buffer holding `data` rounded to f16 (round-to-nearest-even; values beyond ±65504 become
    /// ±inf, so callers check the range first), two values per 32-bit word. Refused without `shader-f16`: no
    /// kernel could read it.
    pub fn upload_f16(&self, op: &'static str, data: &[f32]) -> Result<wgpu::Buffer> {
        if !self.has_f16() {
            return Err(self.missing_f16(format!("f16 storage ({op})")));
        }
        let mut bits = crate::cpu::matmul_f16w::to_f16_bits(data);
        if bits.len() % 2 == 1 {
            bits.push(0);
        }
        self.upload(op, &bits)
    }

    /// Create a storage buffer holding `data`.
    pub fn upload<T: bytemuck::Pod>(&self, op: &'static str, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buf = self.storage(op, bytes.len().max(4) as u64)?;
        if !bytes.is_empty() {
            self.queue.write_buffer(&buf, 0, bytes);
        }
        Ok(buf)
    }

    /// Create a zero-initialised storage buffer of `bytes` (at least 4) bytes, checked against the limits.
    pub fn storage(&self, op: &'static str, bytes: u64) -> Result<wgpu::Buffer> {
        let bytes = bytes.max(4).next_multiple_of(4);
        let limit = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(Error::TooLarge { op, what: "a storage buffer".into(), bytes, limit });
        }
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(op),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.note_memory();
        Ok(buf)
    }

    /// Device buffer memory in use now, in bytes (wgpu-hal's counter; 0 where the backend keeps none).
    pub fn buffer_bytes(&self) -> u64 {
        self.device.get_internal_counters().hal.buffer_memory.read().max(0) as u64
    }

    /// Record the current buffer memory into the peak (called after every allocation medpick makes).
    pub fn note_memory(&self) {
        self.peak_buffer_bytes.fetch_max(self.buffer_bytes(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The largest buffer memory seen at an allocation since the last reset, and reset it to the current use.
    pub fn take_peak_buffer_bytes(&self) -> u64 {
        self.note_memory();
        self.peak_buffer_bytes.swap(self.buffer_bytes(), std::sync::atomic::Ordering::Relaxed)
    }

    /// Turn per-kernel profiling on (clearing what was gathered) or off. While on, every dispatch first submits
    /// and waits for the work recorded before it, then runs alone and is timed on the host clock: kernels are
    /// serialised and launch overhead is counted, so the totals answer "where does a forward pass go", not
    /// "how fast is it" (use the unprofiled timings for that).
    pub fn set_profiling(&self, on: bool) {
        if let Ok(mut p) = self.profile.lock() {
            *p = on.then(HashMap::new);
        }
    }

    /// What profiling gathered so far, slowest kernel first (empty when profiling is off).
    pub fn profile(&self) -> Vec<KernelTime> {
        let mut v: Vec<KernelTime> = self
            .profile
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|m| m.values().cloned().collect()))
            .unwrap_or_default();
        v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(a.kernel.cmp(b.kernel)));
        v
    }

    fn profiling(&self) -> bool {
        self.profile.lock().map(|p| p.is_some()).unwrap_or(false)
    }

    /// A new command encoder; record ops into it, then [`GpuContext::submit`].
    pub fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("medpick") })
    }

    pub fn submit(&self, enc: wgpu::CommandEncoder) {
        self.queue.submit(Some(enc.finish()));
    }

    /// Wait until all submitted work has finished (see [`super::readback::wait`]).
    pub async fn wait(&self) -> Result<()> {
        super::readback::wait(self).await
    }

    /// Record one dispatch of `kernel` with `params` at binding 0 and `buffers` at bindings 1.. in order.
    pub async fn dispatch<P: bytemuck::Pod>(
        &self,
        enc: &mut wgpu::CommandEncoder,
        kernel: &str,
        params: &P,
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Result<()> {
        let p = self.pipeline(kernel).await?;
        let max = self.limits.max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&g| g > max) {
            return Err(Error::shape(
                "dispatch",
                format!("{kernel}: {workgroups:?} workgroups exceed the device limit of {max} per dimension"),
            ));
        }
        if workgroups.contains(&0) {
            return Ok(());
        }
        // Freed after the next readback in the browser too (see `GpuBuffer`).
        let ubuf = super::GpuBuffer::from(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: std::mem::size_of::<P>().next_multiple_of(16) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }));
        self.queue.write_buffer(&ubuf, 0, bytemuck::bytes_of(params));
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: ubuf.as_entire_binding() }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() });
        }
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(p.shader.name),
            layout: &p.layout,
            entries: &entries,
        });
        let profiling = self.profiling();
        if profiling {
            self.submit(std::mem::replace(enc, self.encoder()));
            self.wait().await?;
        }
        let start = crate::Instant::now();
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(p.shader.name),
                timestamp_writes: None,
            });
            pass.set_pipeline(&p.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        }
        if profiling {
            self.submit(std::mem::replace(enc, self.encoder()));
            self.wait().await?;
            let seconds = start.elapsed().as_secs_f64();
            if let Ok(mut guard) = self.profile.lock() {
                if let Some(m) = guard.as_mut() {
                    let e = m
                        .entry(p.shader.name)
                        .or_insert_with(|| KernelTime { kernel: p.shader.name, ..Default::default() });
                    e.calls += 1;
                    e.seconds += seconds;
                }
            }
        }
        Ok(())
    }

    /// Workgroup grid for a 1-D kernel with one invocation per item: the workgroup size is read from the shader
    /// table (`shaders::ALL`, itself checked against the WGSL by naga), never restated at the call.
    pub fn grid_threads(&self, kernel: &str, items: usize) -> Result<[u32; 3]> {
        let s = super::shaders::get(kernel)
            .ok_or_else(|| Error::shape("dispatch", format!("{kernel}: not in the shader table")))?;
        let per_group = s.workgroup_size.iter().product::<u32>();
        Ok(self.grid_1d(items, per_group))
    }

    /// Workgroup grid for a 1-D kernel over `items` with `per_group` items per workgroup: at most 65535 in x,
    /// the rest in y (kernels linearise `wid.y · num_workgroups.x + wid.x`).
    pub fn grid_1d(&self, items: usize, per_group: u32) -> [u32; 3] {
        let groups = items.div_ceil(per_group as usize).max(1) as u64;
        let max_x = self.limits.max_compute_workgroups_per_dimension as u64;
        let x = groups.min(max_x);
        let y = groups.div_ceil(x);
        [x as u32, y as u32, 1]
    }
}

impl AdapterReport {
    /// The table `medpick gpu-info` prints.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "adapter      {}", self.name);
        let _ = writeln!(out, "backend      {}", self.backend);
        let _ = writeln!(out, "device type  {}", self.device_type);
        let _ = writeln!(out, "driver       {} {}", self.driver, self.driver_info);
        let _ = writeln!(out, "vendor/dev   {:#06x} / {:#06x}", self.vendor, self.device);
        let _ =
            writeln!(out, "f32 GEMM     {} (MEDPICK_GEMM=matmul|matmul_regs|matmul_regs4 to choose)", self.gemm_kernel);
        out.push('\n');
        let _ = writeln!(out, "{:<42} {:>16} {:>16}", "limit (medpick relies on)", "granted", "adapter max");
        for (name, granted, max) in &self.limits {
            let _ = writeln!(out, "{name:<42} {granted:>16} {max:>16}");
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "features     {}",
            if self.features.is_empty() { "(none)".to_string() } else { self.features.join(", ") }
        );
        out
    }
}
