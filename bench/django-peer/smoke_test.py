"""Self-check of a running reference peer (starts nothing itself).

    python smoke_test.py [--url ws://127.0.0.1:8765/ws] [--secret SECRET]

Exit 0 when every check passes; non-zero with a message otherwise.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request
import uuid

import jwt
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

DEFAULT_SECRET = "bench-secret-0123456789abcdef0123456789"
TIMEOUT = 5.0


class Failed(Exception):
    pass


def mint(secret, user_id, ttl=300):
    now = int(time.time())
    claims = {"iss": "confab", "aud": "confab-api", "sub": user_id, "iat": now, "nbf": now,
              "exp": now + ttl, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, secret, algorithm="HS256")


async def recv(ws, what):
    try:
        text = await asyncio.wait_for(ws.recv(), TIMEOUT)
    except asyncio.TimeoutError:
        raise Failed(f"timed out waiting for {what}") from None
    msg = json.loads(text)
    if msg.get("type") != what:
        raise Failed(f"expected {what}, got {text}")
    return msg


def check(cond, message):
    if not cond:
        raise Failed(message)


async def expect_error(ws, code, in_reply_to):
    msg = await recv(ws, "error")
    check(msg["error"]["code"] == code, f"expected error {code}, got {msg}")
    check(msg.get("in_reply_to") == in_reply_to, f"expected in_reply_to {in_reply_to}, got {msg}")


async def auth(ws, token, user):
    await ws.send(json.dumps({"type": "auth", "token": token, "protocol_version": 1}))
    welcome = await recv(ws, "welcome")
    check(welcome["user_id"] == user, f"welcome for the wrong user: {welcome}")
    check(welcome["protocol_version"] == 1 and welcome["max_message_bytes"] == 65536, str(welcome))
    uuid.UUID(welcome["participant_id"])
    snap = await recv(ws, "presence_snapshot")
    check(snap["online"] == [], str(snap))
    return welcome["participant_id"]


async def run(url, secret):
    """The relay consumer at URL (.../ws), then the chat consumer beside it."""
    u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
    room = str(uuid.uuid4())
    candidate = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.10 54321 typ host",
                 "sdp_mid": "0", "sdp_mline_index": 0, "username_fragment": "abcd"}

    # A bad token: error, then close code 4001.
    async with connect(url, open_timeout=TIMEOUT) as bad:
        await bad.send(json.dumps({"type": "auth", "token": mint("wrong-secret-" * 3, u1),
                                   "protocol_version": 1}))
        await expect_error(bad, "unauthorized", "auth")
        try:
            await asyncio.wait_for(bad.recv(), TIMEOUT)
            raise Failed("bad token: connection not closed")
        except ConnectionClosed as e:
            check(e.rcvd is not None and e.rcvd.code == 4001, f"bad token: close code {e.rcvd}")
    print("ok  bad token -> unauthorized, close 4001")

    async with connect(url, open_timeout=TIMEOUT) as c1, connect(url, open_timeout=TIMEOUT) as c2:
        await c1.send(json.dumps({"type": "join_call", "room_id": room}))
        await expect_error(c1, "auth_state", "join_call")
        print("ok  before auth -> auth_state")

        p1 = await auth(c1, mint(secret, u1), u1)
        p2 = await auth(c2, mint(secret, u2), u2)
        print(f"ok  auth: p1={p1} p2={p2}")

        await c1.send("{not json")
        await expect_error(c1, "invalid_message", None)
        await c1.send(json.dumps({"type": "no_such_type"}))
        await expect_error(c1, "invalid_message", "no_such_type")
        await c1.send(json.dumps({"type": "ping", "nonce": 42}))
        check((await recv(c1, "pong"))["nonce"] == 42, "pong nonce")
        print("ok  malformed / unknown -> invalid_message; ping -> pong")

        await c1.send(json.dumps({"type": "join_call", "room_id": room}))
        j1 = await recv(c1, "call_joined")
        check(j1["room_id"] == room and j1["participants"] == [] and j1["participant_count"] == 1,
              f"first call_joined: {j1}")
        await c2.send(json.dumps({"type": "join_call", "room_id": room}))
        j2 = await recv(c2, "call_joined")
        check(j2["participant_count"] == 2 and [p["participant_id"] for p in j2["participants"]] == [p1],
              f"second call_joined: {j2}")
        check(j2["participants"][0]["user_id"] == u1, f"second call_joined: {j2}")
        pj = await recv(c1, "participant_joined")
        check(pj["participant"]["participant_id"] == p2 and pj["participant"]["user_id"] == u2
              and pj["participant_count"] == 2 and pj["room_id"] == room, f"participant_joined: {pj}")
        print("ok  join_call: call_joined + participant_joined")

        await c1.send(json.dumps({"type": "ice_candidate", "room_id": room, "to": p2,
                                  "candidate": candidate}))
        got = await recv(c2, "ice_candidate")
        check(got["from"] == p1 and got["from_user"] == u1 and got["room_id"] == room
              and got["candidate"] == candidate, f"relayed ice_candidate: {got}")
        await c2.send(json.dumps({"type": "answer", "room_id": room, "to": p1, "sdp": "v=0\r\n"}))
        got = await recv(c1, "answer")
        check(got["from"] == p2 and got["sdp"] == "v=0\r\n", f"relayed answer: {got}")
        print("ok  ice_candidate p1 -> p2, answer p2 -> p1")

        await c1.send(json.dumps({"type": "ice_candidate", "room_id": room, "to": str(uuid.uuid4()),
                                  "candidate": candidate}))
        await expect_error(c1, "unknown_participant", "ice_candidate")
        await c1.send(json.dumps({"type": "ice_candidate", "room_id": str(uuid.uuid4()), "to": p2,
                                  "candidate": candidate}))
        await expect_error(c1, "not_in_call", "ice_candidate")
        print("ok  to a participant not in the call -> unknown_participant; other room -> not_in_call")

        await c2.close()
        left = await recv(c1, "participant_left")
        check(left["participant_id"] == p2 and left["user_id"] == u2 and left["participant_count"] == 1,
              f"participant_left: {left}")
        print("ok  disconnect -> participant_left")

    await run_chat(url.rsplit("/", 1)[0], secret)


async def run_chat(base, secret):
    """The chat consumer at BASE/chat/<room>, and the history endpoint beside it."""
    u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
    room = str(uuid.uuid4())
    url = f"{base}/chat/{room}"
    async with connect(url, open_timeout=TIMEOUT) as c1, connect(url, open_timeout=TIMEOUT) as c2:
        await c1.send(json.dumps({"type": "auth", "token": mint(secret, u1), "protocol_version": 2}))
        await recv(c1, "welcome")
        await recv(c1, "presence_snapshot")
        await auth(c2, mint(secret, u2), u2)
        send = {"type": "send_message", "room_id": room, "client_id": "k1", "body": "hello"}
        await c1.send(json.dumps(send))
        ack = await recv(c1, "message_ack")
        created = await recv(c2, "message_created")
        m = ack["message"]
        check(ack["client_id"] == "k1" and m["body"] == "hello" and m["author"] == u1
              and m["room_id"] == room and created["message"] == m, f"ack {ack}, created {created}")
        print(f"ok  chat: send_message -> message_ack (seq {m['seq']}) and message_created")
        await c1.send(json.dumps({**send, "room_id": str(uuid.uuid4()), "client_id": "k2"}))
        err = await recv(c1, "error")
        check(err["error"]["code"] == "not_found" and err["client_id"] == "k2", str(err))
        await c1.send(json.dumps({**send, "body": "  ", "client_id": "k3"}))
        err = await recv(c1, "error")
        check(err["error"]["code"] == "validation" and err["client_id"] == "k3", str(err))
        print("ok  chat: another room -> not_found; blank body -> validation")
    http = base.replace("ws://", "http://", 1)
    request = urllib.request.Request(
        f"{http}/api/rooms/{room}/messages?after=0&limit=100",
        headers={"Authorization": "Bearer " + mint(secret, u2)},
    )
    # No proxy from the environment: the peer is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    page = json.loads(await asyncio.to_thread(lambda: opener.open(request, timeout=TIMEOUT).read()))
    check([x["seq"] for x in page["messages"]] == [m["seq"]] and not page["has_more_after"], str(page))
    print("ok  history: GET /api/rooms/<id>/messages?after=0 pages the stored message")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default="ws://127.0.0.1:8765/ws")
    ap.add_argument("--secret", default=os.environ.get("PEER_JWT_SECRET") or DEFAULT_SECRET)
    args = ap.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(args.url, args.secret), 60))
    except (Failed, OSError, ConnectionClosed, asyncio.TimeoutError, KeyError, ValueError) as e:
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print("smoke test passed")


if __name__ == "__main__":
    main()
