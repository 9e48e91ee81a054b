#!/usr/bin/env bash
# Run every medpick test: installs what is missing (scripts/setup.sh), then
#   0. the generated WGSL files equal their generators' output (scripts/gen-*.py --check),
#   1. cargo test (unit + integration: naga shader contract, GPU-vs-CPU for every kernel on the default adapter),
#      the job-array pipeline on a one-machine Slurm (scripts/slurm/test-local.sh),
#      then every fuzz target for a few seconds each (its corpus first, then mutants; scripts/fuzz.sh: longer),
#   2. the wasm build and the browser tests: every kernel on WebGPU in headless Chromium and the CPU fallback,
#      encoder parity on WebGPU, and the app served by `medpick web` giving the native CLI's picks on
#      MEDPICK_APP_IMAGES (default 3) DSB2018 images, on WebGPU and on the CPU path, and the annotation loop in the
#      tab (boxes with the mouse, brush, export/import, training, next batch; the head equals the CLI's) on
#      MEDPICK_ANNOTATE_IMAGES (default 8) DSB2018 images, on the CPU path and on WebGPU (then a lost device); the
#      reload, a NIfTI volume and a DICOM series on the CPU path.
# Set REQUIRE_GPU=1 to make GPU tests fail instead of skip when no adapter exists (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
phase() { echo "== [$(date +%T), ${SECONDS}s in] $*"; }
phase "generated WGSL equals its generators' output"
python3 scripts/gen-regs-kernels.py --check
python3 scripts/gen-attention-unrolled.py --check
phase "cargo build (every target of the workspace at once)"
# One build of all targets, so the binary, the libraries and the test harnesses share one feature resolution:
# building `-p medpick` alone resolves features differently and made `cargo test` compile wgpu & co. again.
cargo build --locked --workspace --all-targets
phase "cargo test"
cargo test --workspace --locked
phase "Slurm on this machine: embed in parts as a job array, then select; every strategy picks what one process picks"
scripts/slurm/test-local.sh target/debug/medpick
phase "fuzz: every input parser and selection, ${MEDPICK_FUZZ_SECONDS:-6} s per target (scripts/fuzz.sh runs 1M executions each)"
# A debug build on a busy CI machine: an execution counts as slow only past 30 s (scripts/fuzz.sh, release: 2 s).
# At most the first million executions of seed 1 (what scripts/fuzz.sh ran clean before a commit): a faster machine
# does not wander past them into inputs nobody has seen; longer and other seeds are scripts/fuzz.sh's job.
target/debug/medpick-fuzz all --seconds "${MEDPICK_FUZZ_SECONDS:-6}" --execs 1000000 --seed 1 --max-exec-s 30 \
  --artifacts target/fuzz-artifacts
phase "medpick selftest (every kernel on this machine's adapter)"
target/debug/medpick selftest --quick | tail -n 3
phase "wasm build"
scripts/build-wasm.sh
phase "browser test (Chromium, WebGPU on SwiftShader, then without WebGPU)"
(cd web && node tests/selftest.mjs)
phase "browser test: LiteMedSAM and DINOv2 parity on WebGPU (a few minutes on SwiftShader)"
(cd web && node tests/models.mjs)
phase "browser test: the app (medpick web), picks equal the native CLI on WebGPU and on the CPU path"
(cd web && MEDPICK_APP_IMAGES="${MEDPICK_APP_IMAGES:-3}" node tests/app.mjs)
phase "browser test: the annotation loop in the tab (label, reload, export, train, next batch) on the CPU path and on WebGPU"
(cd web && MEDPICK_ANNOTATE_IMAGES="${MEDPICK_ANNOTATE_IMAGES:-8}" MEDPICK_APP_PROFILES=nogpu,webgpu node tests/annotate.mjs)
phase "browser test: OHIF (MONAI Label's build, from its wheel) against medpick serve: DICOMweb, the viewer, Next Sample"
(cd web && node tests/ohif.mjs)
phase "all tests passed"
