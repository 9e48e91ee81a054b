#!/usr/bin/env bash
# The main job, end to end on this machine: install what is missing, build medpick, show the GPU it uses, check
# every kernel against its CPU twin, and print the kernel benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
cargo build --release --locked -p medpick
./target/release/medpick gpu-info
./target/release/medpick selftest
./target/release/medpick bench kernels
