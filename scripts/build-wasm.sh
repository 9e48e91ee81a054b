#!/usr/bin/env bash
# Build the wasm32 core + bindings into web/pkg with Debian's rustc-web and -Zbuild-std (rustup cannot add the
# wasm32 target offline), wasm-bindgen at the exact version in Cargo.lock, and wasm-opt from npm binaryen.
# Prerequisites are installed by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
B=(-Zbuild-std=std,panic_abort --target wasm32-unknown-unknown)
# wgpu's WebGPU backend needs web_sys_unstable_apis.
# simd128 (every browser with WebGPU has wasm SIMD) speeds up the CPU path.
export RUSTFLAGS="--cfg=web_sys_unstable_apis -C target-feature=+simd128"
/usr/bin/cargo fetch --locked "${B[@]}" >/dev/null
/usr/bin/cargo build --locked --offline --profile wasm-release "${B[@]}" --target-dir target/wasm -p medpick-wasm
wasm=target/wasm/wasm32-unknown-unknown/wasm-release/medpick_wasm.wasm
.tools/bin/wasm-bindgen --target web --no-typescript --out-dir web/pkg "$wasm"
if [ -x web/node_modules/.bin/wasm-opt ]; then
  web/node_modules/.bin/wasm-opt -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-reference-types --enable-sign-ext web/pkg/medpick_wasm_bg.wasm -o web/pkg/medpick_wasm_bg.wasm
fi
ls -l web/pkg/
