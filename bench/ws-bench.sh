#!/usr/bin/env bash
# Runs the WebSocket benchmarks of the README in one go: confab-server (idle connections and
# the room relay) and, for comparison, the Django Channels + Daphne peer doing the same.
# Figures are printed; each scenario's last line is `RESULT {json}`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/confab-target}"
bench() { cargo bench -q -p signal-server --bench ws_load -- "$@" 2>&1 | grep -v '^\s*$'; }

echo "### confab-server: idle";  bench idle
echo "### confab-server: relay"; bench relay
echo "### confab-server: relay --rate 160"; bench relay --rate 160

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PEER_JWT_SECRET="bench-secret-0123456789abcdef0123456789"
bash bench/django-peer/run.sh "$port" > /tmp/django-peer.log 2>&1 &
peer=$!
trap 'kill $peer 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && break
    sleep 0.2
done
daphne=$(pgrep -f "daphne .* -p $port" | head -n 1)
echo "### Django Channels + Daphne: idle"
bench idle --peer-ws-url "ws://127.0.0.1:$port/ws" --peer-pid "$daphne"
# Daphne takes a while to finish closing 10,000 connections.
sleep 30
echo "### Django Channels + Daphne: relay at 2 msg/s per client"
bench relay --rate 2 --peer-ws-url "ws://127.0.0.1:$port/ws" --peer-pid "$daphne"
