# Sourced by the scripts: environment for wgpu on lavapipe and headless Chromium.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/medpick-xdg-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
