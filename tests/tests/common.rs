//! Shared test helpers: one GPU context for the whole test binary.
//!
//! Without an adapter, GPU tests print `skipped: no adapter` and return — unless `REQUIRE_GPU=1` (CI sets it,
//! CI has lavapipe), in which case they fail.

use std::sync::OnceLock;

use medpick_core::gpu::GpuContext;

static GPU: OnceLock<Option<GpuContext>> = OnceLock::new();

pub fn require_gpu() -> bool {
    std::env::var("REQUIRE_GPU")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}

/// The shared GPU context, or `None` (after printing why) when there is none and none is required.
pub fn gpu() -> Option<&'static GpuContext> {
    let ctx = GPU.get_or_init(|| match pollster::block_on(GpuContext::new()) {
        Ok(c) => {
            eprintln!("GPU adapter: {} ({:?})", c.info.name, c.info.backend);
            Some(c)
        }
        Err(e) => {
            if require_gpu() {
                panic!("REQUIRE_GPU is set but no GPU context could be created: {e}");
            }
            eprintln!("skipped: no adapter ({e})");
            None
        }
    });
    ctx.as_ref()
}
