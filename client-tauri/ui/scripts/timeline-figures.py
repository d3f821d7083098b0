#!/usr/bin/env python3
# The timeline figures in the real window: a real confab-server, a direct room with N
# messages (default 10,000) posted through the REST API, the debug app under Xvfb driven
# through tauri-driver (W3C WebDriver over plain HTTP, no client library). It logs in,
# opens the room three times and scrolls 1,000 messages up at 60 and 200 px a frame,
# printing the UI's own probes (window.__confabOpenTimings, __confabMeasureScroll).
#
#   cd client-tauri/ui && npm run build && cargo build -p confab-app -p signal-server
#   scripts/with-keyring.sh python3 client-tauri/ui/scripts/timeline-figures.py [N]
#
# Needs Xvfb, WebKitWebDriver (webkit2gtk-driver) and tauri-driver, as the e2e test does.
# Not a test: it asserts nothing. WebKitWebDriver sometimes drops the connection on a
# click on this machine; run it again then.
import base64, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request, uuid
from concurrent.futures import ThreadPoolExecutor

T = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
PW = "correct-horse-battery-staple"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(p, secs=30):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", p), 0.5).close(); return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {p} never opened")


def req(method, url, body=None, token=None, headers=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url, data=data, method=method)
    r.add_header("Content-Type", "application/json")
    if token: r.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items(): r.add_header(k, v)
    with urllib.request.urlopen(r, timeout=timeout) as resp:
        txt = resp.read()
        return json.loads(txt) if txt else None


work = tempfile.mkdtemp(prefix="confab-measure-")
sp = free_port()
server = subprocess.Popen([f"{T}/confab-server", "--bind", f"127.0.0.1:{sp}", "--data-dir", f"{work}/server",
                           "--message-rate", "100000", "--auth-rate-per-ip", "1000"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
procs = [server]
try:
    wait_port(sp)
    api = f"http://127.0.0.1:{sp}/api"
    tag = uuid.uuid4().hex[:6]
    users = {}
    for name in (f"app_{tag}", f"bob_{tag}"):
        req("POST", f"{api}/auth/register", {"username": name, "email": f"{name}@example.com",
                                             "password": PW, "confirm_password": PW})
        a = req("POST", f"{api}/auth/login", {"login": name, "password": PW})
        users[name] = (a["access_token"], a["user"]["id"])
    (ta, ida), (tb, idb) = users[f"app_{tag}"], users[f"bob_{tag}"]
    req("POST", f"{api}/contacts/requests", {"user_id": ida}, token=tb)
    req("POST", f"{api}/contacts/requests", {"user_id": idb}, token=ta)
    room = req("POST", f"{api}/contacts/{ida}/direct", token=tb)
    rid = room["id"]
    t0 = time.time()

    def send(i):
        req("POST", f"{api}/rooms/{rid}/messages",
            {"body": f"message {i}: the quick brown fox **jumps** over the lazy dog" + (" and keeps going" * (i % 4))},
            token=tb, headers={"Idempotency-Key": f"k-{i}"})

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(send, range(N)))
    print(f"sent {N} messages in {time.time() - t0:.1f} s", flush=True)

    disp = 90 + (os.getpid() % 9)
    xvfb = subprocess.Popen(["Xvfb", f":{disp}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(xvfb)
    time.sleep(1)
    dp, npt = free_port(), free_port()
    env = dict(os.environ, DISPLAY=f":{disp}", XDG_CONFIG_HOME=f"{work}/config", XDG_DATA_HOME=f"{work}/data",
               XDG_CACHE_HOME=f"{work}/cache")
    drv = subprocess.Popen([shutil.which("tauri-driver") or os.path.join(os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo")), "bin", "tauri-driver"), "--port", str(dp), "--native-port", str(npt),
                            "--native-driver", shutil.which("WebKitWebDriver") or "/usr/bin/WebKitWebDriver"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(drv)
    wait_port(dp)
    wd = f"http://127.0.0.1:{dp}"
    s = req("POST", f"{wd}/session", {"capabilities": {"alwaysMatch": {
        "browserName": "wry", "tauri:options": {"application": os.path.abspath(f"{T}/confab")}}}}, timeout=60)
    sid = s["value"]["sessionId"]
    S = f"{wd}/session/{sid}"
    req("POST", f"{S}/timeouts", {"script": 300000, "implicit": 0})

    def find(css, secs=30):
        end = time.time() + secs
        while True:
            try:
                v = req("POST", f"{S}/element", {"using": "css selector", "value": css})["value"]
                return list(v.values())[0]
            except Exception:
                if time.time() > end: raise SystemExit(f"no {css}")
                time.sleep(0.2)

    def click(css):
        req("POST", f"{S}/element/{find(css)}/click", {})

    def typ(css, text):
        e = find(css)
        req("POST", f"{S}/element/{e}/clear", {})
        req("POST", f"{S}/element/{e}/value", {"text": text})

    def js(script, *args):
        return req("POST", f"{S}/execute/sync", {"script": script, "args": list(args)})["value"]

    def js_async(script, *args):
        return req("POST", f"{S}/execute/async", {"script": script, "args": list(args)}, timeout=320)["value"]

    def shot(name):
        png = req("GET", f"{S}/screenshot", timeout=60)["value"]
        open(os.path.join(work, f"{name}.png"), "wb").write(base64.b64decode(png))

    typ("#server-url", f"http://127.0.0.1:{sp}")
    click("#server-continue")
    click("#tab-login")
    typ("#login-login", f"app_{tag}")
    typ("#login-password", PW)
    click("#login-submit")
    find("[data-testid='shell']")
    row = f"[data-testid='rail-room'][data-room-id='{rid}'] button"
    for attempt in range(3):
        js("window.__confabOpenTimings = undefined")
        click(row)
        end = time.time() + 30
        t = None
        while time.time() < end:
            t = js("return window.__confabOpenTimings || null")
            if t and t.get("roomId") == rid: break
            time.sleep(0.1)
        print(f"open #{attempt + 1}: {json.dumps(t)}", flush=True)
        if attempt == 0:
            time.sleep(2)
            shot("conversation")
        click("#rail-home")
        time.sleep(0.5)
    click(row)
    time.sleep(2)
    for px in (60, 200):
        r = js_async("const done = arguments[arguments.length - 1];"
                     "window.__confabMeasureScroll(arguments[0], arguments[1]).then(done, e => done(String(e)))", 1000, px)
        print(f"scroll 1000 rows at {px} px/frame: {json.dumps(r)}", flush=True)
        click("#rail-home"); time.sleep(0.5); click(row); time.sleep(2)
    shot("conversation-scrolled")
    print(f"screenshots in {work}", flush=True)
    try:
        req("DELETE", S)
    except Exception:
        pass
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(5)
        except Exception:
            p.kill()
