//! GPU-vs-CPU tests for every kernel: `<kernel>_gpu_matches_cpu_<group>` runs the shared self-test cases
//! (`medpick_core::selftest`) of that kernel and group on the GPU and compares with the CPU twin.

use medpick_core::gpu::shaders;
use medpick_core::selftest::{self, Group};

use crate::common::gpu;

fn check(kernel: &str, group: Group) {
    let cases: Vec<_> = selftest::cases().into_iter().filter(|c| c.kernel == kernel && c.group == group).collect();
    assert!(!cases.is_empty(), "no {group:?} self-test cases for kernel {kernel}");
    let Some(ctx) = gpu() else { return };
    let mut failures = Vec::new();
    for c in &cases {
        let r = pollster::block_on(selftest::run(Some(ctx), c));
        if r.skipped {
            // Only optional-feature kernels skip (matmul_f16w without shader-f16). CI's lavapipe has the feature.
            assert!(
                std::env::var_os("REQUIRE_F16").is_none(),
                "REQUIRE_F16 is set: {kernel} [{}] {}",
                r.case,
                r.detail
            );
            eprintln!("{kernel} [{}]: {}", r.case, r.detail);
            continue;
        }
        eprintln!(
            "{kernel} [{}]: {} (max abs err {:.2e}, gpu {:.1} ms, cpu {:.1} ms)",
            r.case,
            if r.passed == Some(true) { "ok" } else { "FAIL" },
            r.max_abs_err,
            r.gpu_ms,
            r.cpu_ms
        );
        if r.passed != Some(true) {
            failures.push(format!("{} [{}]: {}", kernel, r.case, r.detail));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

macro_rules! kernel_tests {
    ($($kernel:ident),* $(,)?) => {
        $(
            mod $kernel {
                #[test]
                fn gpu_matches_cpu_small_sizes() {
                    super::check(stringify!($kernel), super::Group::Small);
                }
                #[test]
                fn gpu_matches_cpu_model_shapes() {
                    super::check(stringify!($kernel), super::Group::Model);
                }
            }
        )*
        /// The list above must name every kernel in the shader table.
        const TESTED: &[&str] = &[$(stringify!($kernel)),*];
    };
}

kernel_tests!(
    adamw,
    argmax_rows,
    attention,
    crop_add2d,
    cross_attention,
    depth_to_space,
    dice_loss,
    dwconv2d,
    ema_update,
    entropy_map,
    facility_gain,
    gather_rows,
    gelu,
    gelu_backward,
    im2col,
    im2col_k3c4,
    kcenter_update,
    kcenter_update_f16,
    kmeanspp_gain,
    layernorm,
    layernorm_backward,
    matmul,
    matmul_f16w,
    matmul_regs,
    matmul_regs4,
    min_dist_update,
    min_dist_update_f16,
    other_label_min,
    pad2d,
    pairwise_sqdist,
    pairwise_sqdist_regs,
    pairwise_sqdist_regs4,
    radius_edges,
    reduce_rows,
    relu,
    segment_mean,
    sgd_momentum,
    softmax_mse,
    softmax_rows,
    softmax_xent,
    swiglu,
    topk_rows,
    transpose,
);

#[test]
fn every_kernel_has_gpu_vs_cpu_tests_and_cases() {
    for s in shaders::ALL {
        assert!(TESTED.contains(&s.name), "kernel {} has no GPU-vs-CPU test in tests/tests/kernels.rs", s.name);
        for g in [Group::Small, Group::Model] {
            assert!(
                selftest::cases().iter().any(|c| c.kernel == s.name && c.group == g),
                "kernel {} has no {g:?} self-test cases",
                s.name
            );
        }
    }
    assert_eq!(TESTED.len(), shaders::ALL.len());
}

/// Broken WGSL must come back as `Error::Shader`, not a panic.
#[test]
fn invalid_shader_is_an_error_not_a_panic() {
    let Some(ctx) = gpu() else { return };
    static BAD: shaders::Shader = shaders::Shader {
        name: "bad_kernel",
        source: "@compute @workgroup_size(1) fn main() { let x: f32 = undefined_thing; }",
        workgroup_size: [1, 1, 1],
        f16: false,
    };
    match pollster::block_on(ctx.compile(&BAD)) {
        Err(medpick_core::Error::Shader { name, message }) => {
            assert_eq!(name, "bad_kernel");
            assert!(!message.is_empty());
        }
        Err(e) => panic!("expected Error::Shader, got {e}"),
        Ok(_) => panic!("a broken shader compiled"),
    }
}

/// Shape mistakes are errors naming the op.
#[test]
fn op_shape_mismatch_is_an_error() {
    let Some(ctx) = gpu() else { return };
    let a = ctx.upload("t", &[1f32; 6]).unwrap();
    let c = ctx.storage("t", 16).unwrap();
    let mut enc = ctx.encoder();
    let err = pollster::block_on(medpick_core::gpu::ops::matmul(ctx, &mut enc, &a, &a, None, &c, 3, 3, 3, false))
        .expect_err("a 6-element buffer cannot hold a 3x3 matrix");
    assert!(err.to_string().contains("matmul"), "{err}");
}

/// Models and training run `matmul_regs4` on CPU adapters (lavapipe: CI) and `matmul` on GPUs, unless
/// MEDPICK_GEMM names one; a shape `matmul_regs4` does not take runs `matmul_regs`, and a wrong shape given to
/// `matmul_regs4` directly is an error that says why.
#[test]
fn gemm_kernel_follows_the_adapter_type() {
    use medpick_core::gpu::GemmKernel;
    let Some(ctx) = gpu() else { return };
    let want = match std::env::var("MEDPICK_GEMM").ok().as_deref() {
        Some("matmul") => GemmKernel::Matmul,
        Some("matmul_regs") => GemmKernel::MatmulRegs,
        Some("matmul_regs4") => GemmKernel::MatmulRegs4,
        _ if ctx.report().device_type == "Cpu" => GemmKernel::MatmulRegs4,
        _ => GemmKernel::Matmul,
    };
    assert_eq!(ctx.gemm_kernel(), want, "adapter {} ({:?})", ctx.info.name, ctx.info.device_type);
    assert_eq!(ctx.report().gemm_kernel, want.name());

    let r4 = GemmKernel::MatmulRegs4;
    assert_eq!(r4.for_shape(64, 384, true), r4);
    assert_eq!(r4.for_shape(63, 384, true), r4, "N is free when B is transposed");
    assert_eq!(r4.for_shape(63, 384, false), GemmKernel::MatmulRegs);
    assert_eq!(r4.for_shape(64, 27, true), GemmKernel::MatmulRegs, "K = 27: the 3×3 conv of an RGB image");
    assert_eq!(GemmKernel::Matmul.for_shape(63, 27, false), GemmKernel::Matmul);
    let a = ctx.upload("t", &[0f32; 27 * 8]).unwrap();
    let c = ctx.storage("t", 64 * 4).unwrap();
    let mut enc = ctx.encoder();
    let err = pollster::block_on(medpick_core::gpu::ops::matmul_regs4(ctx, &mut enc, &a, &a, None, &c, 8, 8, 27, true))
        .expect_err("K = 27 is not a multiple of 4");
    assert!(err.to_string().contains("matmul_regs4") && err.to_string().contains("K = 27"), "{err}");
}
