#!/usr/bin/env bash
# Runs Confab: builds and starts the server on embedded SQLite (./data, created on first
# start), listening on http://127.0.0.1:8080. Extra arguments go to confab-server
# (see `confab-server --help`). The desktop app is not part of the tree yet.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_ensure
cargo build --release --locked -p signal-server
target_dir=${CARGO_TARGET_DIR:-target}
echo "==> Confab server on http://127.0.0.1:8080 (API docs: /api/docs); Ctrl-C stops it"
exec "$target_dir/release/confab-server" "$@"
