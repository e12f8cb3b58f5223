#!/bin/sh
# An offline stand-in for linuxdeploy with its AppImage output plugin, for
# building WaddlePerf's AppImage where GitHub (and so linuxdeploy) cannot be
# reached: CI here. It does what the Tauri bundler asks of linuxdeploy for
# this app: the AppDir's AppRun, desktop entry and icon at its top, then a
# squashfs of it behind the AppImage type-2 runtime (runtime-<arch>, beside
# this script). It bundles no libraries: the AppImage uses the system's
# WebKitGTK and GTK, which is why releases build theirs with linuxdeploy
# itself (.github/workflows/release.yml). scripts/appimage-tools.sh puts it
# in the bundler's tool cache.
set -eu
here=$(dirname "$0")
appdir=""
output=""
while [ $# -gt 0 ]; do
    case "$1" in
        --appdir) appdir="$2"; shift ;;
        --appdir=*) appdir="${1#--appdir=}" ;;
        --output) output="$2"; shift ;;
        --output=*) output="${1#--output=}" ;;
        --plugin-api-version) echo 0; exit 0 ;;
        *) ;;
    esac
    shift
done
[ -n "$appdir" ] || { echo "linuxdeploy stand-in: no --appdir" >&2; exit 2; }
[ "$output" = appimage ] || [ -z "$output" ] || { echo "linuxdeploy stand-in: only --output appimage" >&2; exit 2; }

entry=$(find "$appdir/usr/share/applications" -name '*.desktop' | head -n 1)
[ -n "$entry" ] || { echo "linuxdeploy stand-in: no desktop entry in $appdir" >&2; exit 1; }
# The bundler may have linked the entry and the icon to the top already.
[ -e "$appdir/$(basename "$entry")" ] || cp "$entry" "$appdir/"
# AppRun starts the entry's program with the AppImage's arguments.
program=$(sed -n 's/^Exec=\([^ ]*\).*/\1/p' "$entry" | head -n 1)
[ -x "$appdir/usr/bin/$program" ] || { echo "linuxdeploy stand-in: usr/bin/$program is missing" >&2; exit 1; }
rm -f "$appdir/AppRun"
install -m 755 "$here/AppRun-$(uname -m)" "$appdir/AppRun"
icon=$(sed -n 's/^Icon=//p' "$entry" | head -n 1)
png=$(find "$appdir/usr/share/icons" -name "$icon.png" | sort | tail -n 1)
if [ -n "$png" ]; then
    [ -e "$appdir/$icon.png" ] || cp "$png" "$appdir/$icon.png"
    ln -sf "$icon.png" "$appdir/.DirIcon"
fi

arch=${ARCH:-$(uname -m)}
name=$(sed -n 's/^Name=//p' "$entry" | head -n 1 | tr ' ' '_')
target="${LDAI_OUTPUT:-${OUTPUT:-$name-$arch.AppImage}}"
squash=$(mktemp)
trap 'rm -f "$squash"' EXIT
mksquashfs "$appdir" "$squash" -root-owned -noappend -quiet -comp gzip >/dev/null
cat "$here/runtime-$arch" "$squash" > "$target"
chmod 755 "$target"
echo "linuxdeploy stand-in: wrote $target"
