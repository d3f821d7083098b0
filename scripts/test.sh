#!/usr/bin/env bash
# Runs every test: the UI's linter and unit tests (Vitest), then the Rust tests: unit
# tests, the server's black-box suite (each story against SQLite and against PostgreSQL),
# the client engine's suites (API client, keyring, signaling, calls, media) and the
# desktop app's end-to-end test in a real window under Xvfb, all inside a private D-Bus
# session with a real gnome-keyring. Uses the PostgreSQL at 127.0.0.1:5432 (trust
# auth, user postgres, database test) when there is one; otherwise installs PostgreSQL
# and runs a throwaway instance for the duration of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_ensure

pg_started=""
redis_started=""
cleanup() {
    if [ -n "$redis_started" ]; then
        redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
    fi
    if [ -n "$pg_started" ]; then
        as_root runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir" -m fast stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

postgres_ensure() {
    apt_ensure postgresql-client
    local shared="postgres://postgres@127.0.0.1:5432/test"
    if psql "$shared" -qAtc 'select 1' >/dev/null 2>&1; then
        export CONFAB_TEST_POSTGRES_URL="${CONFAB_TEST_POSTGRES_URL:-$shared}"
        return
    fi
    echo "==> no PostgreSQL at 127.0.0.1:5432: starting a throwaway one on port 55432"
    apt_ensure postgresql
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    pg_dir=$(mktemp -d /tmp/confab-pg.XXXXXX)
    as_root chown postgres "$pg_dir"
    as_root runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir" -A trust -U postgres >/dev/null
    as_root runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/log" -w \
        -o "-p 55432 -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null
    pg_started=1
    psql "postgres://postgres@127.0.0.1:55432/postgres" -qc 'create database test'
    export CONFAB_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:55432/test"
}
postgres_ensure
# Real servers the server's suites start: an SMTP server (password reset), nginx and Caddy
# (reverse proxies); and what the call tests build their lossy links with (network
# namespaces, veth pairs, nftables loss, tc's bandwidth cap).
apt_ensure python3-aiosmtpd nginx caddy iproute2 nftables
# Speech for the echo-cancellation test (client-tauri/media/tests/aec.rs).
apt_ensure espeak-ng
# A real notification service on the desktop tests' display, whose notifications the
# messenger story clicks (dunstctl action) to open the room, and gdbus, with which it reads
# and clicks the tray icon's menu on the session bus (client-tauri/src-tauri/tests/e2e.rs).
apt_ensure dunst libglib2.0-bin
# Redis for the several-nodes suite (signal-server/tests/cluster.rs): the machine's on 6379
# when it answers, else a throwaway one for the duration of the tests; the suite starts one
# of its own for its Redis-restart fault.
apt_ensure redis-server
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "==> no Redis at 127.0.0.1:6379: starting a throwaway one"
    redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes >/dev/null
    redis_started=1
fi
# Schemathesis, for the OpenAPI document's check (signal-server/tests/openapi.rs): pinned, in
# a virtualenv beside the build, made once; the test finds it through CONFAB_SCHEMATHESIS.
schemathesis_ensure() {
    apt_ensure python3-venv
    local reqs=scripts/schemathesis-requirements.txt
    local venv="${CARGO_TARGET_DIR:-$PWD/target}/schemathesis-venv"
    if ! cmp -s "$reqs" "$venv/requirements.txt" 2>/dev/null; then
        echo "==> installing Schemathesis in $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs"
        cp "$reqs" "$venv/requirements.txt"
    fi
    export CONFAB_SCHEMATHESIS="$venv/bin/schemathesis"
}
schemathesis_ensure

client_deps_ensure
desktop_deps_ensure
desktop_test_tools_ensure
# The app embeds the built UI, so the UI is built before cargo compiles the app.
ui_build

log=$(mktemp /tmp/confab-test.XXXXXX)
status=0
echo "==> UI: lint and unit tests"
(cd client-tauri/ui && npm run --silent lint && npx vitest run) 2>&1 | tee "$log" || status=$?
echo "==> cargo test"
# --no-fail-fast: every test binary runs, so one failure does not hide the others.
scripts/with-keyring.sh cargo test --workspace --locked --no-fail-fast 2>&1 | tee -a "$log" || status=$?
# One closing line for the whole run: cargo prints one per test binary (the last of which
# is often a crate's empty doc-test run), Vitest one "Tests" line.
sed 's/\x1b\[[0-9;]*m//g' "$log" | awk '
    /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    /^ *Tests +[0-9]/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    END { printf "tests: %d passed, %d failed\n", p, f }'
rm -f "$log"
exit "$status"
