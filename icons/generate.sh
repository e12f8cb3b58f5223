#!/usr/bin/env bash
# Renders the icons from the SVG sources in src/ (needs rsvg-convert from
# librsvg2-bin, ImageMagick and png2icns from icnsutils). The outputs are
# committed; run this after changing the artwork.
set -euo pipefail
cd "$(dirname "$0")"
png() { rsvg-convert -w "$2" -h "$2" "$1" -o "$3"; }

# Application icon, in the sizes the bundlers ask for.
for s in 32 64 128 256 512; do png src/app.svg $s "app-$s.png"; done
cp app-32.png 32x32.png
cp app-128.png 128x128.png
cp app-256.png 128x128@2x.png
cp app-512.png icon.png
png src/app.svg 16 app-16.png
convert app-16.png app-32.png app-64.png app-256.png icon.ico
png src/app.svg 1024 app-1024.png
png2icns icon.icns app-16.png app-32.png app-128.png app-256.png app-512.png app-1024.png >/dev/null
rm -f app-*.png

# Tray: one icon per health state, 32 px and 64 px (@2x, HiDPI), plus a
# monochrome template of each for the macOS menu bar (black on transparent:
# macOS tints it for light and dark bars).
for state in ok degraded down running paused; do
    png "src/tray-$state.svg" 32 "tray/$state.png"
    png "src/tray-$state.svg" 64 "tray/$state@2x.png"
    sed -e 's/<circle cx="32" cy="32" r="29" fill="[^"]*" stroke="[^"]*" stroke-opacity="[^"]*" stroke-width="2"\/>/<circle cx="32" cy="32" r="27" fill="none" stroke="#000000" stroke-width="6"\/>/' \
        -e 's/#ffffff/#000000/g' "src/tray-$state.svg" > "/tmp/tray-template-$state.svg"
    png "/tmp/tray-template-$state.svg" 32 "tray/$state-template.png"
    png "/tmp/tray-template-$state.svg" 64 "tray/$state-template@2x.png"
    rm -f "/tmp/tray-template-$state.svg"
done
