#!/usr/bin/env bash
# Runs Confab: builds and starts the server on embedded SQLite (./data, created on first
# start) at http://127.0.0.1:8080 and, when there is a display, the desktop app pointed
# at it; closing the app stops the server. Without a display only the server runs, in the
# foreground. Extra arguments go to confab-server (see `confab-server --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_ensure
target_dir=${CARGO_TARGET_DIR:-target}

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    cargo build --release --locked -p signal-server
    echo "==> no display: running the server only"
    echo "==> Confab server on http://127.0.0.1:8080 (API docs: /api/docs); Ctrl-C stops it"
    exec "$target_dir/release/confab-server" "$@"
fi

apt_ensure curl
client_deps_ensure
desktop_deps_ensure
ui_build
cargo build --release --locked -p signal-server -p confab-app --features confab-app/custom-protocol
"$target_dir/release/confab-server" "$@" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { echo "the server did not start" >&2; exit 1; }
    sleep 0.1
done
echo "==> Confab server on http://127.0.0.1:8080; starting the desktop app (closing it stops the server)"
"$target_dir/release/confab"
