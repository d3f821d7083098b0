#!/usr/bin/env bash
# Runs the Django Channels reference peer on 127.0.0.1:PORT (WebSocket at /ws).
# Usage: bash run.sh PORT        (PEER_JWT_SECRET, PEER_VENV, PEER_DB optional)
set -euo pipefail

PORT="${1:?usage: run.sh PORT}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PEER_VENV:-/var/tmp/django-peer-venv}"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.requirements.sha256"

# Create or update the venv only when requirements.txt changed since the last install.
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
    echo "$want" > "$STAMP"
fi

export PEER_JWT_SECRET="${PEER_JWT_SECRET:-bench-secret-0123456789abcdef0123456789}"
export DJANGO_SETTINGS_MODULE=peer.settings
export PYTHONDONTWRITEBYTECODE=1
export PEER_DB="${PEER_DB:-/tmp/django-peer-chat-$PORT.sqlite3}"
cd "$HERE"
# Every start gets an empty chat database.
rm -f "$PEER_DB" "$PEER_DB-journal" "$PEER_DB-wal" "$PEER_DB-shm"
"$VENV/bin/python" -m django migrate --noinput -v 0
# -v 0: warnings only and no access log.
exec "$VENV/bin/daphne" -v 0 -b 127.0.0.1 -p "$PORT" peer.asgi:application
