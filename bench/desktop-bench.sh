#!/usr/bin/env bash
# The desktop app's figures: the size of its .deb, the idle memory of its whole process
# tree, and what rendering remote video costs, decoded in the webview and as RGBA
# (client-tauri/src-tauri/benches/desktop.rs).
# Builds the .deb first (scripts/package.sh, the `dist` profile), then the release app.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/confab-target}"
# Also installs what the app builds against.
scripts/package.sh --bundles deb
rust_ensure
desktop_test_tools_ensure
deb=$(ls -t "$CARGO_TARGET_DIR"/dist/bundle/deb/*.deb | head -n 1)
echo "==> $(basename "$deb"): $(stat -c %s "$deb") bytes ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | grep -E 'Installed-Size|Depends'
cargo build --release --locked -p signal-server -p confab-core --bins
scripts/with-keyring.sh cargo bench --locked -p confab-app --features custom-protocol --bench desktop
# The same call with the encoded frames through a Tauri Channel instead of the video
# socket, then with both tiles drawn the old way (decoded or converted in Rust, RGBA
# through IPC), back to back, for the comparison.
echo "==> the call again, VP8 frames through a Channel (CONFAB_VIDEO_SOCKET=0)"
CONFAB_BENCH_PART=render CONFAB_VIDEO_SOCKET=0 scripts/with-keyring.sh \
    cargo bench --locked -p confab-app --features custom-protocol --bench desktop
echo "==> the call again, video as RGBA (CONFAB_WEBVIEW_DECODE=0)"
CONFAB_BENCH_PART=render CONFAB_WEBVIEW_DECODE=0 scripts/with-keyring.sh \
    cargo bench --locked -p confab-app --features custom-protocol --bench desktop
