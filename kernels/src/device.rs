//! Which backend a run computes on: the WGSL kernels on a GPU adapter, or the CPU backend ([`crate::cpu`]).
//! `auto` takes the GPU when the best adapter is a real one and the CPU backend when it is a CPU rasteriser
//! (llvmpipe/lavapipe, SwiftShader, WARP: wgpu's device type `Cpu`, where the native CPU kernels are several times
//! faster than the same work emulated) or when there is no adapter at all.

use crate::gpu::GpuContext;
use crate::{cpu, Error, Result};

/// The `--device` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Gpu,
    Cpu,
}

impl DeviceChoice {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(DeviceChoice::Auto),
            "gpu" => Ok(DeviceChoice::Gpu),
            "cpu" => Ok(DeviceChoice::Cpu),
            _ => Err(Error::setting("device", s, "expected auto, gpu or cpu")),
        }
    }

    /// The `MEDPICK_DEVICE` environment variable, `auto` when it is unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("MEDPICK_DEVICE") {
            Ok(v) => {
                Self::parse(&v).map_err(|_| Error::Invalid(format!("MEDPICK_DEVICE={v:?}: expected auto, gpu or cpu")))
            }
            Err(_) => Ok(DeviceChoice::Auto),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Gpu => "gpu",
            DeviceChoice::Cpu => "cpu",
        }
    }
}

/// The backend a run got, and why.
pub struct Device {
    /// The GPU context when the WGSL kernels run; `None` for the CPU backend.
    pub gpu: Option<GpuContext>,
    /// One line saying which backend and why.
    pub reason: String,
    /// The adapter `auto` looked at and passed over (a CPU rasteriser), or `None` when it found none; unset
    /// when no adapter was looked at (`--device cpu`).
    probed: Option<Option<crate::gpu::AdapterReport>>,
}

impl Device {
    /// Open the backend `choice` asks for. `Gpu` fails when no adapter opens; `Auto` never fails for want of one.
    pub async fn open(choice: DeviceChoice) -> Result<Device> {
        let cpu_line = || format!("{} threads, {}", cpu::par::threads(), cpu::math::simd_level());
        match choice {
            DeviceChoice::Cpu => {
                Ok(Device { gpu: None, reason: format!("cpu ({}): asked for", cpu_line()), probed: None })
            }
            DeviceChoice::Gpu => {
                let ctx = GpuContext::new().await?;
                let reason =
                    format!("gpu: {} ({:?}, {:?}): asked for", ctx.info.name, ctx.info.backend, ctx.info.device_type);
                Ok(Device { gpu: Some(ctx), reason, probed: None })
            }
            DeviceChoice::Auto => match GpuContext::new().await {
                Ok(ctx) if ctx.info.device_type == wgpu::DeviceType::Cpu => Ok(Device {
                    reason: format!(
                        "cpu ({}): auto, the best adapter ({}, {:?}) is a CPU rasteriser; --device gpu runs the WGSL \
                         kernels on it",
                        cpu_line(),
                        ctx.info.name,
                        ctx.info.backend
                    ),
                    gpu: None,
                    probed: Some(Some(ctx.report())),
                }),
                Ok(ctx) => {
                    let reason = format!(
                        "gpu: {} ({:?}, {:?}): auto, a real GPU",
                        ctx.info.name, ctx.info.backend, ctx.info.device_type
                    );
                    Ok(Device { gpu: Some(ctx), reason, probed: None })
                }
                Err(e) => Ok(Device {
                    gpu: None,
                    reason: format!("cpu ({}): auto, no GPU adapter ({e})", cpu_line()),
                    probed: Some(None),
                }),
            },
        }
    }

    /// `medpick device-info`: this run's backend and why, the CPU backend's threads and SIMD level, and the GPU
    /// adapter (the one `auto` passed over, or opened here under `--device cpu` to say what it is), as JSON and
    /// as a table.
    pub async fn info(&self) -> (serde_json::Value, String) {
        let adapter = match (&self.gpu, &self.probed) {
            (Some(ctx), _) => Some(ctx.report()),
            (None, Some(seen)) => seen.clone(),
            (None, None) => GpuContext::new().await.ok().map(|c| c.report()),
        };
        let (threads, cores, simd) = (cpu::par::threads(), cpu::par::cores(), cpu::math::simd_level());
        let doc = serde_json::json!({
            "backend": self.kind(),
            "reason": self.reason,
            "cpu": { "threads": threads, "cores": cores, "simd": simd },
            "adapter": adapter.as_ref().map(|a| serde_json::json!({
                "name": a.name, "backend": a.backend, "device_type": a.device_type, "driver": a.driver })),
        });
        let gpu =
            adapter.map_or("none".into(), |a| format!("{} ({}, {}, {})", a.name, a.backend, a.device_type, a.driver));
        let table = format!(
            "backend      {}\ncpu threads  {threads} (of {cores} cores)\ncpu simd     {simd}\ngpu adapter  {gpu}\n",
            self.reason
        );
        (doc, table)
    }

    /// `"gpu"` or `"cpu"`.
    pub fn kind(&self) -> &'static str {
        if self.gpu.is_some() {
            "gpu"
        } else {
            "cpu"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choice_parses_and_names_the_setting_when_wrong() {
        assert_eq!(DeviceChoice::parse("CPU").unwrap(), DeviceChoice::Cpu);
        assert_eq!(DeviceChoice::parse("gpu").unwrap(), DeviceChoice::Gpu);
        assert_eq!(DeviceChoice::parse("auto").unwrap(), DeviceChoice::Auto);
        let e = DeviceChoice::parse("cuda").unwrap_err().to_string();
        assert!(e.contains("device") && e.contains("cuda"), "{e}");
    }
}
