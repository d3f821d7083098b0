#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with an unlocked gnome-keyring, so code
# that keeps secrets in the Secret Service (confab-core's KeyringStore) can be tested on
# a headless machine:
#
#   scripts/with-keyring.sh cargo test -p confab-core --test keyring
#
# HOME and XDG_RUNTIME_DIR point into a temp dir for the duration (the keyring files land
# there, not in the real home), and the dir is removed afterwards. CARGO_HOME and
# RUSTUP_HOME are pinned to their current values first, because they default to paths
# under HOME. Needs the packages dbus, gnome-keyring and libsecret-tools.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi
for tool in dbus-run-session gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null; then
        echo "$0: $tool not found (apt-get install dbus gnome-keyring libsecret-tools)" >&2
        exit 1
    fi
done

export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/confab-keyring.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/xdg"
chmod 700 "$tmp/xdg"

# Inside the session: start the daemon with a login keyring unlocked by a throwaway
# password, wait until the Secret Service owns its bus name, then run the command.
HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/xdg" dbus-run-session -- bash -c '
    set -euo pipefail
    echo -n confab-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    for _ in $(seq 50); do
        if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
            org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
            | grep -q "boolean true"; then
            break
        fi
        sleep 0.1
    done
    exec "$@"
' with-keyring "$@"
