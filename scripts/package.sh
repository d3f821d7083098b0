#!/usr/bin/env bash
# Builds the desktop installer: a .deb of the app with the icons from icons/, built with the
# workspace's `dist` profile (release plus link-time optimization), into
# $CARGO_TARGET_DIR/dist/bundle/deb/ (default target/). Extra arguments go to `tauri build`,
# e.g. `./scripts/package.sh --bundles rpm`.
#
# The Tauri CLI comes from npm and is installed beside the build, not into the UI's
# packages: the npm registry this project is built against lacks the CLI's other
# platforms' binaries, which a lock file would have to name.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_ensure
client_deps_ensure
desktop_deps_ensure
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cli_dir="${CONFAB_TAURI_CLI_DIR:-$CARGO_TARGET_DIR/tauri-cli}"
if [ ! -x "$cli_dir/node_modules/.bin/tauri" ]; then
    echo "==> installing the Tauri CLI into $cli_dir"
    mkdir -p "$cli_dir"
    npm install --prefix "$cli_dir" --no-save --no-audit --no-fund --loglevel=error @tauri-apps/cli@2.12.4
fi
(cd client-tauri/ui && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; })
if [ "$#" -eq 0 ]; then
    set -- --bundles deb
fi
# The cargo profile goes after `--` (cargo's arguments); the Tauri CLI reads it there to
# find the binary under $CARGO_TARGET_DIR/dist/.
case " $* " in
    *" -- "*) ;;
    *) set -- "$@" -- --profile dist ;;
esac
(cd client-tauri && "$cli_dir/node_modules/.bin/tauri" build "$@")
