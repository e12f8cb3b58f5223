#!/usr/bin/env bash
# Runs every benchmark on one commit and writes one report, each table under
# the commit and the time it was measured. Needs root (the probe benchmarks
# build network namespaces and start nginx, dnsmasq and caddy) and the
# packages scripts/test.sh installs. About 30 minutes on 2 cores, most of it
# the release builds.
#
#   sudo bash scripts/bench.sh [REPORT]     # default: $CARGO_TARGET_DIR/bench-report.md
#
# Copy the tables into docs/benchmarks.md as they are: never mix figures of
# different commits there.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/waddleperf-target}"
export PATH="$HOME/.cargo/bin:$PATH"
report="${1:-$CARGO_TARGET_DIR/bench-report.md}"
commit=$(git rev-parse --short=12 HEAD)
dirty=$(git status --porcelain --untracked-files=no | head -1)
[ -n "$dirty" ] && commit="$commit (with uncommitted changes)"

step() { printf '\n==> %s\n' "$*" >&2; }

step "Release builds (the engine and CLI, the desktop app)"
cargo build --locked --release --bins
cargo build --locked --release -p waddleperf-desktop
cargo bench --locked --no-run >/dev/null

{
    echo "# Benchmark report"
    echo
    echo "All tables: commit $commit, $(uname -m), $(nproc) cores."
} >"$report"
for bench in store probe_overhead daemon_idle sync_throughput accuracy bandwidth serve desktop; do
    step "cargo bench --bench $bench"
    {
        echo
        echo "## $bench — commit $commit, measured $(date -u +%Y-%m-%dT%H:%MZ)"
        echo
    } >>"$report"
    cargo bench --locked --bench "$bench" | tee -a "$report"
done
step "Report: $report"
