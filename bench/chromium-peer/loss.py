#!/usr/bin/env python3
"""Two headless Chromium peers in one call across the same kind of lossy link as
bench/call-loss.sh: a veth pair into a network namespace, random loss each way with
nftables (input hook, numgen random). One Chromium inside the namespace, one outside; a
small HTTP server here (on the veth's outer address) serves the page and relays the offer
and answer (no trickle: each side sends its description once gathering is complete) and
collects each page's getStats() once a second.

    sudo python3 bench/chromium-peer/loss.py [--levels "0 1 3 5 10"] [--seconds 30]

Prints one JSON line per level and direction (LOSS-FIGURES ...), the same fields as
client-tauri/core/tests/loss.rs prints for Confab where Chromium has them: frames rendered
(the receiver's framesDecoded over the sender's framesSent), time frozen (the receiver's
totalFreezesDuration, W3C: a gap over max(3 x the mean frame interval, mean + 150 ms)),
audio concealed (concealedSamples / totalSamplesReceived).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = r"""<!doctype html><meta charset=utf-8><title>loss peer</title><video id=v autoplay muted playsinline></video>
<script>
const role = new URLSearchParams(location.search).get('role');
const post = (path, body) => fetch(path, {method: 'POST', body: JSON.stringify(body)});
const poll = async (path) => { for (;;) { const r = await fetch(path); if (r.status === 200) return r.json(); await new Promise(r => setTimeout(r, 100)); } };
const gathered = (pc) => new Promise(res => { if (pc.iceGatheringState === 'complete') res(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && res(); });
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480, frameRate: 30}, audio: true});
  const pc = new RTCPeerConnection();
  stream.getTracks().forEach(t => pc.addTrack(t, stream));
  pc.ontrack = (e) => { document.getElementById('v').srcObject = e.streams[0]; };
  if (role === 'offerer') {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    await post('/signal/offer', pc.localDescription);
    await pc.setRemoteDescription(await poll('/signal/answer'));
  } else {
    await pc.setRemoteDescription(await poll('/signal/offer'));
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    await post('/signal/answer', pc.localDescription);
  }
  setInterval(async () => {
    const out = {};
    (await pc.getStats()).forEach(s => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') Object.assign(out, {framesDecoded: s.framesDecoded, framesReceived: s.framesReceived, freezeCount: s.freezeCount, totalFreezesDuration: s.totalFreezesDuration, nackCount: s.nackCount, pliCount: s.pliCount, packetsLost: s.packetsLost, frameWidth: s.frameWidth});
      if (s.type === 'inbound-rtp' && s.kind === 'audio') Object.assign(out, {concealedSamples: s.concealedSamples, totalSamplesReceived: s.totalSamplesReceived});
      if (s.type === 'outbound-rtp' && s.kind === 'video') Object.assign(out, {framesSent: s.framesSent, framesEncoded: s.framesEncoded, targetBitrate: s.targetBitrate});
    });
    post('/stats/' + role, out);
  }, 1000);
})().catch(e => post('/stats/' + role, {error: String(e)}));
</script>"""

state = {"signal": {}, "stats": {}}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", kind="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/page"):
            return self.reply(200, PAGE.encode(), "text/html")
        if self.path.startswith("/signal/"):
            with lock:
                msg = state["signal"].get(self.path.split("/")[2])
            return self.reply(200, msg.encode()) if msg else self.reply(204)
        self.reply(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        parts = self.path.split("/")
        with lock:
            if parts[1] == "signal":
                state["signal"][parts[2]] = body
            elif parts[1] == "stats":
                state["stats"][parts[2]] = json.loads(body)
        self.reply(200)


def run(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="0 1 3 5 10")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    opt = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("loss.py needs root (network namespaces, nftables)")
    pid = os.getpid()
    ns, outer_link, inner_link = f"chr-loss-{pid}", f"cro{pid}", f"cri{pid}"
    net = f"10.{150 + pid % 50}.{(pid // 50) % 256}"
    outer, inner = f"{net}.1", f"{net}.2"
    table = f"chr_loss_{pid}"
    procs, tmp = [], tempfile.mkdtemp(prefix="chr-loss-")

    def nft(inside, *args):
        prefix = ["ip", "netns", "exec", ns] if inside else []
        run(*prefix, "nft", *args)

    def set_loss(percent):
        for inside, link in ((False, outer_link), (True, inner_link)):
            nft(inside, "flush", "chain", "inet", table, "lossy")
            if percent > 0:
                nft(inside, "add", "rule", "inet", table, "lossy", "iifname", link,
                    "numgen", "random", "mod", "100", "<", str(percent), "drop")

    def cleanup(*_):
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", outer_link, check=False)
        run("nft", "delete", "table", "inet", table, check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", outer_link, "type", "veth", "peer", "name", inner_link)
        run("ip", "link", "set", inner_link, "netns", ns)
        run("ip", "addr", "add", f"{outer}/24", "dev", outer_link)
        run("ip", "link", "set", outer_link, "up")
        run("ip", "-n", ns, "addr", "add", f"{inner}/24", "dev", inner_link)
        run("ip", "-n", ns, "link", "set", inner_link, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        for inside in (False, True):
            nft(inside, "add", "table", "inet", table)
            nft(inside, "add", "chain", "inet", table, "lossy",
                "{", "type", "filter", "hook", "input", "priority", "0", ";", "}")
        server = ThreadingHTTPServer((outer, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://{outer}:{server.server_address[1]}"
        for role, inside in (("offerer", True), ("answerer", False)):
            cmd = [opt.chromium, "--headless=new", "--no-sandbox",
                   "--use-fake-device-for-media-stream=fps=30", "--use-fake-ui-for-media-stream",
                   f"--unsafely-treat-insecure-origin-as-secure={base}",
                   "--autoplay-policy=no-user-gesture-required",
                   f"--user-data-dir={tmp}/{role}", f"{base}/page?role={role}"]
            if inside:
                cmd = ["ip", "netns", "exec", ns] + cmd
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        deadline = time.time() + 60
        while time.time() < deadline:
            with lock:
                s = dict(state["stats"])
            if all(s.get(r, {}).get("framesDecoded", 0) >= 30 for r in ("offerer", "answerer")):
                break
            if any("error" in s.get(r, {}) for r in ("offerer", "answerer")):
                sys.exit(f"a page failed: {s}")
            time.sleep(0.5)
        else:
            sys.exit(f"the Chromium call did not come up: {state['stats']}")
        for level in [int(x) for x in opt.levels.split()]:
            set_loss(level)
            time.sleep(3)
            with lock:
                before = json.loads(json.dumps(state["stats"]))
            time.sleep(opt.seconds)
            with lock:
                after = json.loads(json.dumps(state["stats"]))
            for receiver, sender, direction in (("offerer", "answerer", "outside->inside"),
                                                ("answerer", "offerer", "inside->outside")):
                d = lambda side, k: (after[side].get(k) or 0) - (before[side].get(k) or 0)
                sent = max(d(sender, "framesSent"), 1)
                samples = max(d(receiver, "totalSamplesReceived"), 1)
                print("LOSS-FIGURES " + json.dumps({
                    "client": "chromium", "loss_percent": level, "direction": direction,
                    "seconds": opt.seconds, "frames_sent": sent,
                    "frames_decoded": d(receiver, "framesDecoded"),
                    "rendered_percent": 100.0 * d(receiver, "framesDecoded") / sent,
                    "frozen_percent": 100.0 * d(receiver, "totalFreezesDuration") / opt.seconds,
                    "freezes": d(receiver, "freezeCount"),
                    "audio_concealed_percent": 100.0 * d(receiver, "concealedSamples") / samples,
                    "nacks_sent": d(receiver, "nackCount"), "plis_sent": d(receiver, "pliCount"),
                    "frame_width": after[receiver].get("frameWidth"),
                    "sender_target_kbps": (after[sender].get("targetBitrate") or 0) / 1000,
                }), flush=True)
        set_loss(0)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
