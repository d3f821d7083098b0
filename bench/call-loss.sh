#!/usr/bin/env bash
# Calls under packet loss: two confab-cli (test pattern 640x480 at 30 fps and a tone) in one
# call across a veth pair into a network namespace, random loss each way with nftables
# (numgen random; this kernel has no netem), and with --rate a tc tbf cap. The measuring
# code is client-tauri/core/tests/loss.rs (loss_figures, rate_figures, #[ignore]d there).
# Then, in the same run, two headless Chromium peers on the same kind of link
# (bench/chromium-peer/loss.py; skip with --no-chromium).
#
#   sudo bench/call-loss.sh                  # loss 0 1 3 5 10 %, 30 s each
#   sudo bench/call-loss.sh --levels "3 5" --seconds 60
#   sudo bench/call-loss.sh --rate           # 500 kbit/s cap, then 3 Mbit/s
#   sudo bench/call-loss.sh --debug          # a debug build (faster to build, more CPU)
#   sudo bench/call-loss.sh --no-chromium
#   sudo bench/call-loss.sh --trace          # per second: rates, estimate, target; and
#                                            # the estimator's cuts and probes
#
# Needs root; installs iproute2, nftables and Chromium when they are missing. Prints one
# JSON line per loss level and direction (LOSS-FIGURES ...), and with --rate one per second
# (RATE-TRACE ...) and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/confab-target}"

levels="0 1 3 5 10"
seconds=30
test_name=loss_figures
profile=(--release)
chromium=1
while [ $# -gt 0 ]; do
    case "$1" in
        --levels) levels="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --rate) test_name=rate_figures; shift ;;
        --debug) profile=(); shift ;;
        --no-chromium) chromium=0; shift ;;
        --trace) export CONFAB_LOSS_TRACE=1 CONFAB_TEST_LOG="${CONFAB_TEST_LOG:-confab_core::call::bwe=debug,warn}"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "call-loss.sh needs root (network namespaces, nftables, tc)" >&2
    exit 1
fi
. scripts/lib.sh
rust_ensure
client_deps_ensure
apt_ensure iproute2 nftables
if [ "$chromium" = 1 ] && [ "$test_name" = loss_figures ]; then
    apt_ensure chromium
fi

# The first line a test prints shares libtest's "test loss_figures ... ": hence -o, not ^.
# Build first, then run the test binary directly (no cargo lock held while it runs). With
# --workspace, so that features resolve as for the test suite and its build is reused.
bin=$(cargo test "${profile[@]}" --locked --workspace --test loss --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "loss" and m.get("executable"):
        print(m["executable"])')
[ -n "$bin" ] || { echo "building the loss test failed" >&2; exit 1; }

CONFAB_LOSS_LEVELS="$levels" CONFAB_LOSS_SECONDS="$seconds" CONFAB_RATE_SECONDS="$seconds" \
    "$bin" --ignored --exact "$test_name" --nocapture --test-threads 1 |
    grep -oE '(LOSS-FIGURES|LOSS-LOG|TRACE|RATE-TRACE|RATE-FIGURES|RATE-LOG|SKIPPED).*' || true

if [ "$chromium" = 1 ] && [ "$test_name" = loss_figures ]; then
    python3 bench/chromium-peer/loss.py --levels "$levels" --seconds "$seconds" | grep -E '^LOSS-FIGURES' || true
fi
