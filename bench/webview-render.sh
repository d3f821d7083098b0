#!/usr/bin/env bash
# What drawing decoded video costs in WebKitGTK, by way of drawing, outside the app:
# bench/webview-render/index.html in WebKitGTK's MiniBrowser under Xvfb, two 396x297 tiles
# of a 640x480 VP8 stream at 30 fps each, decoded with WebCodecs, then drawn with a 2D
# canvas's drawImage (the app's way, and variants), as a WebGL texture, as I420 planes converted in a
# WebGL shader, or not drawn. Prints, per way, the frames drawn per second and the CPU of
# the web process and of the UI process (MiniBrowser, where the app's own main thread
# would be) over the measured window.
#
#   bench/webview-render.sh [--seconds N] [--tiles N] [--modes "2d webgl ..."]
#
# Ways (`mode=` of the page): 2d (the app's), 2d-low (imageSmoothingQuality low),
# 2d-nearest (no smoothing), 2d-native (the canvas at the frame's 640x480, scaled by CSS),
# webgl, i420, none (decoded, not drawn).
#
# The window renders as the app's does: without GPU compositing (the app sets WebKit's
# hardware-acceleration policy to `never`; MiniBrowser gets WEBKIT_DISABLE_COMPOSITING_MODE),
# unless --composited.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
seconds=20
tiles=2
modes="2d 2d-low 2d-nearest 2d-native webgl i420 none"
composited=""
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --tiles) tiles="$2"; shift 2 ;;
        --modes) modes="$2"; shift 2 ;;
        --composited) composited=1; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
apt_ensure xvfb xdotool libwebkit2gtk-4.1-0 gstreamer1.0-plugins-good python3
browser=$(ls /usr/lib/*/webkit2gtk-4.1/MiniBrowser | head -n 1)
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

for n in $(seq 150 199); do
    [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || { display=":$n"; break; }
done
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory bench/webview-render >/dev/null 2>&1 &
pids+=($!)
sleep 1

# utime + stime of a process, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

printf '%-10s %8s %12s %12s %10s\n' way "frames/s" "web process" "UI process" "load"
for mode in $modes; do
    env=(DISPLAY="$display" HOME="$work")
    [ -n "$composited" ] || env+=(WEBKIT_DISABLE_COMPOSITING_MODE=1)
    env "${env[@]}" "$browser" "http://127.0.0.1:$port/index.html?mode=$mode&tiles=$tiles" \
        >"$work/$mode.log" 2>&1 &
    ui=$!
    title=""
    for _ in $(seq 1 120); do
        title=$(DISPLAY="$display" xdotool search --name '^(running|error)' getwindowname %@ 2>/dev/null | head -n 1 || true)
        [ -n "$title" ] && break
        sleep 0.5
    done
    web=$(pgrep -P "$ui" -f WebKitWebProcess | head -n 1 || true)
    if [[ "$title" != running* ]] || [ -z "$web" ]; then
        printf '%-10s did not run: %s\n' "$mode" "${title:-no title}"
        tail -n 5 "$work/$mode.log" | sed 's/^/    /'
        kill "$ui" 2>/dev/null || true
        wait "$ui" 2>/dev/null || true
        continue
    fi
    sleep 5 # past the start
    w0=$(ticks "$web"); u0=$(ticks "$ui"); t0=$(date +%s.%N)
    frames=0
    for _ in $(seq 1 "$seconds"); do
        sleep 1
        title=$(DISPLAY="$display" xdotool search --name '^(running|error)' getwindowname %@ 2>/dev/null | head -n 1 || true)
        frames=$((frames + ${title#running }))
    done
    w1=$(ticks "$web"); u1=$(ticks "$ui"); t1=$(date +%s.%N)
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v m="$mode" -v f="$frames" -v s="$seconds" -v w="$((w1 - w0))" -v u="$((u1 - u0))" \
        -v t0="$t0" -v t1="$t1" -v hz="$hz" -v l="$load" \
        'BEGIN { t = t1 - t0; printf "%-10s %8.1f %11.1f%% %11.1f%% %10s\n", m, f / s, 100 * w / hz / t, 100 * u / hz / t, l }'
    kill "$ui" 2>/dev/null || true
    wait "$ui" 2>/dev/null || true
    sleep 1
done
