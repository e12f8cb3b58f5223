#!/usr/bin/env bash
# Builds WaddlePerf's desktop installers for this machine's platform with the
# Tauri bundler: each holds the agent (waddleperf-tray), the window
# (waddleperf-desktop) and the CLI (waddleperf). On Linux: deb, rpm.
#
#   bash scripts/bundle.sh [--debug] [--bundles deb,rpm] [--no-build] [--config JSON]
#
# --debug bundles debug builds (what CI installs and tests: quicker to build);
# --no-build takes the binaries already in the target directory; --config
# merges more Tauri configuration (a file or JSON text: signing). Output:
# $CARGO_TARGET_DIR/installers/<debug|release>/bundle/<kind>/. Needs the web UI built
# (ui/dist) and its npm packages (the Tauri CLI comes with them).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
bundles=deb,rpm
build=1
configs=(--config tauri.bundle.conf.json)
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) profile=debug ;;
        --bundles) bundles="${2:?--bundles needs a list, e.g. deb,rpm}"; shift ;;
        --bundles=*) bundles="${1#--bundles=}" ;;
        --no-build) build=0 ;;
        --config) configs+=(--config "${2:?--config needs a file or JSON}"); shift ;;
        *) echo "scripts/bundle.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/waddleperf-target}"
tauri=ui/node_modules/.bin/tauri
if [ ! -x "$tauri" ]; then
    echo "scripts/bundle.sh: the Tauri CLI is missing: run (cd ui && npm ci) first" >&2
    exit 1
fi
if [ ! -f ui/dist/index.html ]; then
    echo "scripts/bundle.sh: the web UI is not built: run (cd ui && npm run build) first" >&2
    exit 1
fi

release_flag=()
debug_flag=()
if [ "$profile" = release ]; then release_flag=(--release); else debug_flag=(--debug); fi
if [ "$build" = 1 ]; then
    cargo build --locked "${release_flag[@]}" -p waddleperf -p waddleperf-tray -p waddleperf-desktop
fi

# The bundler takes the window from <target>/<profile>/ and the agent and
# the CLI as its external binaries, named by their target triple. They are
# staged in a target directory of the bundler's own, so the build's own
# files are never changed; debug builds lose their debug information there
# (1 GB of it, which no package needs).
triple=$(rustc -vV | sed -n 's/^host: //p')
exe=""
case "$triple" in *windows*) exe=.exe ;; esac
stage="$CARGO_TARGET_DIR/installers"
rm -rf "$stage/$profile/bundle"
mkdir -p "$stage/$profile" src-tauri/binaries
place() { # place SOURCE DEST
    if [ "$profile" = debug ] && command -v objcopy >/dev/null && [ -z "$exe" ]; then
        objcopy --strip-debug "$1" "$2"
    else
        cp "$1" "$2"
    fi
}
for bin in waddleperf-desktop waddleperf-tray waddleperf; do
    src="$CARGO_TARGET_DIR/$profile/$bin$exe"
    if [ ! -f "$src" ]; then
        echo "scripts/bundle.sh: $src is not built (run without --no-build)" >&2
        exit 1
    fi
    if [ "$bin" = waddleperf-desktop ]; then
        place "$src" "$stage/$profile/$bin$exe"
    else
        place "$src" "src-tauri/binaries/$bin-$triple$exe"
    fi
done

(
    cd src-tauri
    CARGO_TARGET_DIR="$stage" "../$tauri" bundle --ci "${debug_flag[@]}" --bundles "$bundles" "${configs[@]}"
)
echo "Bundles in $stage/$profile/bundle/:"
ls -l "$stage/$profile/bundle"/*/ 2>/dev/null || true
