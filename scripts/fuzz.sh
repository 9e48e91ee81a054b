#!/usr/bin/env bash
# Fuzz every medpick input parser and selection for longer than CI does (CI: a few seconds per target in
# scripts/test.sh). Usage: scripts/fuzz.sh [EXECS_PER_TARGET (default 1000000)] [TARGET (default all)] [SEED]
# Prints a line per target (executions, rate, accepted inputs, peak allocation, findings) and writes
# target/fuzz/results.json; findings are saved under target/fuzz/artifacts/<target>/ and fail the run.
# The corpus (fuzz/corpus/) is regenerated from ../shared/data with:
#   target/release/medpick-fuzz --make-corpus ../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
EXECS="${1:-1000000}"
TARGET="${2:-all}"
SEED="${3:-1}"
cargo build --release --locked -p medpick-fuzz
mkdir -p target/fuzz
exec target/release/medpick-fuzz "$TARGET" --execs "$EXECS" --seed "$SEED" \
  --artifacts target/fuzz/artifacts --json target/fuzz/results.json
