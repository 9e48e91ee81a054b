#!/usr/bin/env bash
# Run every medpick test: installs what is missing (scripts/setup.sh), then
#   1. cargo test (unit + integration: naga shader contract, GPU-vs-CPU for every kernel on the default adapter),
#   2. the wasm build and the browser test (every kernel on WebGPU in headless Chromium, then the CPU fallback).
# Set REQUIRE_GPU=1 to make GPU tests fail instead of skip when no adapter exists (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
echo "== cargo test"
cargo build --locked -p medpick          # the CLI tests run this binary
cargo test --workspace --locked
echo "== medpick selftest (every kernel on this machine's adapter)"
cargo run -q --locked -p medpick -- selftest --quick | tail -n 3
echo "== wasm build"
scripts/build-wasm.sh
echo "== browser test (Chromium, WebGPU on SwiftShader, then without WebGPU)"
(cd web && node tests/selftest.mjs)
echo "== browser test: LiteMedSAM and DINOv2 parity on WebGPU (a few minutes on SwiftShader)"
(cd web && node tests/models.mjs)
