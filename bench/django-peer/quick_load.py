"""Rough load check of a running peer (not the official figures: those come from
`cargo bench -p signal-server --bench ws_load`). Bounded in clients, rate and time.

    python quick_load.py [--url ws://127.0.0.1:8765/ws] [--rooms 20] [--per-room 5]
                         [--rate 1000] [--secs 20] [--pid DAPHNE_PID]

Every client sends ice_candidates (~300 bytes of JSON) round-robin to the other
participants of its room; the total send rate is --rate messages/s. Latency is send to
receive as seen by this one Python process, so it includes this client's own event-loop
delay.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import uuid

import jwt
from websockets.asyncio.client import connect

DEFAULT_SECRET = "bench-secret-0123456789abcdef0123456789"
MSG_BYTES = 300


def mint(secret, user_id):
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + 3600}, secret, algorithm="HS256")


def proc_stats(pid):
    """(VmRSS in KiB, CPU seconds) of a process, or (None, None)."""
    if not pid:
        return None, None
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return rss, cpu
    except (OSError, StopIteration, ValueError):
        return None, None


class Client:
    def __init__(self, ws, room):
        self.ws = ws
        self.room = room
        self.pid = None
        self.peers = []
        self.received = 0
        self.sent_bytes = 0
        self.errors = 0
        self.latencies = []
        self.joined = asyncio.Event()


async def open_client(url, secret, room):
    ws = await connect(url, open_timeout=10, max_queue=None)
    c = Client(ws, room)
    await ws.send(json.dumps({"type": "auth", "token": mint(secret, str(uuid.uuid4())),
                              "protocol_version": 1}))
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
    if welcome.get("type") != "welcome":
        raise RuntimeError(f"auth failed: {welcome}")
    c.pid = welcome["participant_id"]
    return c


async def reader(c, expect_peers, measuring):
    async for text in c.ws:
        msg = json.loads(text)
        t = msg["type"]
        if t == "ice_candidate":
            c.received += 1
            if measuring[0]:
                sent_ns = int(msg["candidate"]["candidate"].rsplit(" ts ", 1)[1].split()[0])
                c.latencies.append(time.perf_counter_ns() - sent_ns)
        elif t == "call_joined":
            c.peers.extend(p["participant_id"] for p in msg["participants"])
        elif t == "participant_joined":
            c.peers.append(msg["participant"]["participant_id"])
        elif t == "error":
            c.errors += 1
        if len(c.peers) >= expect_peers:
            c.joined.set()


async def sender(c, rate, secs, seq0, phase):
    interval = 1.0 / rate
    loop = asyncio.get_running_loop()
    start = loop.time() + phase * interval  # spread clients over the interval: no bursts
    end = start + secs
    n = 0
    next_t = start
    while next_t < end:
        delay = next_t - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        to = c.peers[n % len(c.peers)]
        head = f"candidate:{seq0 + n} 1 udp 2122260223 127.0.0.1 {40000 + n % 20000} typ host ts {time.perf_counter_ns()}"
        msg = {"type": "ice_candidate", "room_id": c.room, "to": to,
               "candidate": {"candidate": head, "sdp_mid": "0", "sdp_mline_index": 0,
                             "username_fragment": "abcd"}}
        pad = MSG_BYTES - len(json.dumps(msg, separators=(",", ":"))) - 1
        if pad > 0:
            msg["candidate"]["candidate"] = head + " " + "x" * pad
        text = json.dumps(msg, separators=(",", ":"))
        c.sent_bytes += len(text)
        await c.ws.send(text)
        n += 1
        next_t += interval
    return n


def pct(sorted_ns, q):
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


async def main(args):
    rooms = [str(uuid.uuid4()) for _ in range(args.rooms)]
    rss0, _ = proc_stats(args.pid)
    clients = []
    for room in rooms:
        for _ in range(args.per_room):
            clients.append(await open_client(args.url, args.secret, room))
    measuring = [False]
    readers = [asyncio.create_task(reader(c, args.per_room - 1, measuring)) for c in clients]
    for c in clients:
        await c.ws.send(json.dumps({"type": "join_call", "room_id": c.room}))
    await asyncio.wait_for(asyncio.gather(*(c.joined.wait() for c in clients)), 15)
    rss_idle, cpu0 = proc_stats(args.pid)
    print(f"{len(clients)} clients connected, authed and joined {args.rooms} calls")

    per_client = args.rate / len(clients)
    measuring[0] = True
    t0 = time.perf_counter()
    sent = await asyncio.gather(*(sender(c, per_client, args.secs, i * 10**6, i / len(clients))
                                  for i, c in enumerate(clients)))
    send_secs = time.perf_counter() - t0
    total_sent = sum(sent)
    # Let in-flight messages arrive (bounded).
    deadline = time.perf_counter() + 5
    while sum(c.received for c in clients) < total_sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    wall = time.perf_counter() - t0
    rss_load, cpu1 = proc_stats(args.pid)
    measuring[0] = False

    for c in clients:
        await c.ws.close()
    await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 10)

    delivered = sum(c.received for c in clients)
    lat = sorted(x for c in clients for x in c.latencies)
    print(f"target rate {args.rate}/s for {args.secs}s; sent {total_sent} in {send_secs:.1f}s "
          f"({total_sent / send_secs:.0f}/s)")
    print(f"mean ice_candidate size {sum(c.sent_bytes for c in clients) / max(total_sent, 1):.0f} bytes")
    print(f"delivered {delivered} ({delivered / wall:.0f}/s over {wall:.1f}s), lost {total_sent - delivered}, "
          f"errors {sum(c.errors for c in clients)}")
    print(f"latency ms: p50 {pct(lat, .5):.2f}  p90 {pct(lat, .9):.2f}  p99 {pct(lat, .99):.2f}  "
          f"max {pct(lat, 1):.2f}")
    if args.pid:
        print(f"daphne pid {args.pid}: VmRSS before {rss0} KiB, idle with clients {rss_idle} KiB, "
              f"after load {rss_load} KiB; CPU {(cpu1 - cpu0) / wall * 100:.0f}% of one core during load")
    return 0 if delivered == total_sent else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="ws://127.0.0.1:8765/ws")
    ap.add_argument("--secret", default=os.environ.get("PEER_JWT_SECRET") or DEFAULT_SECRET)
    ap.add_argument("--rooms", type=int, default=20)
    ap.add_argument("--per-room", type=int, default=5)
    ap.add_argument("--rate", type=float, default=1000.0, help="total ice_candidates per second")
    ap.add_argument("--secs", type=float, default=20.0)
    ap.add_argument("--pid", type=int, default=0, help="Daphne's pid, for VmRSS and CPU")
    a = ap.parse_args()
    if not (0 < a.rooms <= 200 and 2 <= a.per_room <= 20 and 0 < a.rate <= 20000 and 0 < a.secs <= 120):
        sys.exit("out of bounds: rooms<=200, 2<=per-room<=20, rate<=20000, secs<=120")
    sys.exit(asyncio.run(asyncio.wait_for(main(a), a.secs + 90)))
