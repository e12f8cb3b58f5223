#!/usr/bin/env bash
# Fills the Tauri bundler's tool cache with an offline stand-in for
# linuxdeploy (installers/linux/appimage/), so `scripts/bundle.sh --bundles
# appimage` works without reaching GitHub: CI here. The AppImage type-2
# runtime comes from the Rust crate registry (the crate `appimage` carries
# it). Releases build their AppImage with linuxdeploy itself.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$(uname -m)
if [ "$arch" != x86_64 ]; then
    echo "scripts/appimage-tools.sh: the stand-in has an x86_64 runtime only" >&2
    exit 1
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tauri"
mkdir -p "$cache"
manifest=installers/linux/appimage/runtime/Cargo.toml
cargo fetch --locked --quiet --manifest-path "$manifest"
runtime=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*/appimage-0.4.0/assets/runtime-x86_64' -print -quit)
if [ -z "$runtime" ]; then
    echo "scripts/appimage-tools.sh: the runtime is not in the crate registry's cache" >&2
    exit 1
fi
install -m 755 "$runtime" "$cache/runtime-$arch"
# The bundler (Tauri CLI 2.12) looks for linuxdeploy under the name of the
# build it would download.
linuxdeploy="$cache/linuxdeploy-07333c6-$arch.AppImage"
gcc -O2 -Wall -o "$linuxdeploy" installers/linux/appimage/linuxdeploy.c
install -m 755 installers/linux/appimage/linuxdeploy.sh "$linuxdeploy.sh"
# The bundler wants an AppRun in the cache (it would download one); the
# stand-in puts that one in the image.
install -m 755 installers/linux/appimage/AppRun "$cache/AppRun-$arch"
echo "linuxdeploy stand-in ready in $cache"
