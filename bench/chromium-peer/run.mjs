#!/usr/bin/env node
// Reference for Confab's call benchmark: call setup between two headless Chromium peers
// (one page, two RTCPeerConnections) on loopback with a fake 640x480 camera.
//
//   node bench/chromium-peer/run.mjs --runs 30 [--json out.json]
//
// One Chromium is started for the whole run (own process group, fresh --user-data-dir
// under a temp dir) and always killed at the end, on error and on SIGINT/SIGTERM too.
// Each run is a fresh page and a fresh pair of peer connections; see README.md.

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));

// ---------- arguments ----------
function usage(code) {
  console.log(`usage: node run.mjs [--runs N] [--json FILE] [--timeout-ms MS] [--flow-ms MS]
                   [--detect rvfc|stats] [--fps N] [--warmup N] [--no-netns]
                   [--chromium PATH] [--quiet]
  --runs N         measured calls, one after the other (default 30)
  --warmup N       extra calls made first and left out of the figures (default 0)
  --json FILE      also write the RESULT object (with every run) to FILE
  --timeout-ms MS  a call without a first decoded frame by then fails (default 10000)
  --flow-ms MS     media flow before reading fps/resolution (default 3000)
  --detect M       first-frame detector: rvfc = requestVideoFrameCallback (default),
                   stats = getStats framesDecoded polled every 2 ms
  --fps N          frame rate of Chromium's fake camera and of the request (default 30)
  --no-netns       stay in the host network namespace (default: re-run this script
                   under 'unshare --net' so that lo is the only interface)
  --chromium PATH  browser binary (default $CHROMIUM or /usr/bin/chromium)`);
  process.exit(code);
}
const opt = { runs: 30, warmup: 0, netns: true, json: null, timeoutMs: 10000, flowMs: 3000, detect: 'rvfc', fps: 30,
              chromium: process.env.CHROMIUM || '/usr/bin/chromium', quiet: false };
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i], v = () => { if (i + 1 >= a.length) usage(2); return a[++i]; };
    const int = (s) => { const n = Number(s); if (!Number.isInteger(n) || n < 0) usage(2); return n; };
    if (k === '--runs') opt.runs = int(v());
    else if (k === '--json') opt.json = v();
    else if (k === '--timeout-ms') opt.timeoutMs = int(v());
    else if (k === '--flow-ms') opt.flowMs = int(v());
    else if (k === '--detect') { opt.detect = v(); if (!['rvfc', 'stats'].includes(opt.detect)) usage(2); }
    else if (k === '--fps') opt.fps = int(v());
    else if (k === '--chromium') opt.chromium = v();
    else if (k === '--quiet') opt.quiet = true;
    else if (k === '--warmup') opt.warmup = int(v());
    else if (k === '--no-netns') opt.netns = false;
    else if (k === '-h' || k === '--help') usage(0);
    else { console.error('unknown argument: ' + k); usage(2); }
  }
  if (opt.runs < 1) usage(2);
}
const log = (...x) => { if (!opt.quiet) console.log(...x); };

// ---------- private network namespace ----------
// Chromium gathers host candidates on every interface. In the host namespace the peer
// that pairs its eth0 candidate with the other's 127.0.0.1 one sends between the two
// local addresses (still inside this machine, but not "127.0.0.1 only"). So by default
// the whole runner (HTTP server + Chromium) is re-run inside a new network namespace
// whose only interface is lo. Needs root (or CAP_SYS_ADMIN) and iproute2's `ip`.
const NETNS_ENV = 'CONFAB_CHROMIUM_PEER_NETNS';
let netnsMode = process.env[NETNS_ENV] === '1' ? 'private (lo only)' : 'host';
if (opt.netns && process.env[NETNS_ENV] !== '1') {
  const LO_UP = 'ip link set lo up';
  const probe = spawnSync('unshare', ['--net', '--', 'sh', '-c', LO_UP], { stdio: 'pipe', timeout: 10000 });
  if (probe.status === 0) {
    const child = spawn('unshare', ['--net', '--', 'sh', '-c', `${LO_UP} && exec "$0" "$@"`,
                                    process.execPath, ...process.argv.slice(1)],
                        { stdio: 'inherit', env: { ...process.env, [NETNS_ENV]: '1' } });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, sig) => process.exit(code ?? (sig ? 130 : 1)));
    await new Promise(() => {}); // the child does the work
  }
  console.error('warning: cannot make a private network namespace (' +
                String(probe.stderr || probe.error || '').trim().split('\n')[0] +
                '); running in the host namespace (traffic stays on this machine, but the ' +
                'selected pair may use a non-loopback local address)');
}

// ---------- helpers ----------
function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms); }),
  ]);
}
function pct(sorted, p) { // nearest-rank percentile
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
function summary(xs) {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (!s.length) return { n: 0, p50: null, p95: null, min: null, max: null, mean: null };
  const r1 = (x) => Math.round(x * 10) / 10;
  return { n: s.length, p50: r1(pct(s, 50)), p95: r1(pct(s, 95)), min: r1(s[0]), max: r1(s[s.length - 1]),
           mean: r1(s.reduce((a, b) => a + b, 0) / s.length) };
}
const CLK_TCK = 100; // USER_HZ on Linux
// CPU seconds (user+sys, plus reaped children) of every live process in process group pgid.
function groupCpuSeconds(pgid) {
  let ticks = 0, procs = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let st;
    try { st = readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const f = st.slice(st.lastIndexOf(')') + 2).split(' '); // f[0] = field 3 (state)
    if (Number(f[2]) !== pgid) continue; // field 5 = pgrp
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
    procs++;
  }
  return { seconds: ticks / CLK_TCK, procs };
}

// ---------- local HTTP server (127.0.0.1 only) ----------
const PAGE = readFileSync(join(HERE, 'page.html'));
const server = createServer((req, res) => {
  if (req.method === 'GET' && (req.url === '/' || req.url.startsWith('/page.html'))) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(PAGE);
  } else { res.writeHead(404); res.end(); }
});

// ---------- browser lifecycle ----------
const FLAGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu',
  `--use-fake-device-for-media-stream=fps=${opt.fps}`, '--use-fake-ui-for-media-stream',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
  '--autoplay-policy=no-user-gesture-required',
  // loopback host candidates only exist with this; page.html keeps only 127.0.0.1/udp
  '--allow-loopback-in-peer-connection',
  // never hide host candidates behind mDNS names (no multicast lookups)
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--remote-debugging-port=0',
];
let proc = null, userDataDir = null, browser = null, cleaned = false;

// Kill the whole process group (browser, zygote, renderers, GPU/utility processes),
// also what is left of it after the browser process itself has gone.
function killBrowserSync() {
  if (!proc || !proc.pid) return;
  try { process.kill(-proc.pid, 'SIGKILL'); } catch {}
  try { proc.kill('SIGKILL'); } catch {}
}
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (browser) { try { await withTimeout(browser.close(), 3000, 'browser.close'); } catch {} }
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    try { process.kill(-proc.pid, 'SIGTERM'); } catch {}
    await new Promise((r) => { const t = setTimeout(r, 2000); proc.once('exit', () => { clearTimeout(t); r(); }); });
  }
  killBrowserSync();
  server.close();
  if (userDataDir) { try { rmSync(userDataDir, { recursive: true, force: true }); } catch {} }
}
process.on('exit', killBrowserSync); // last resort, synchronous
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => { console.error(`\n${sig}: stopping`); await cleanup(); process.exit(130); });
}

function launch() {
  userDataDir = mkdtempSync(join(tmpdir(), 'confab-chromium-peer-'));
  const args = [...FLAGS, `--user-data-dir=${userDataDir}`, 'about:blank'];
  proc = spawn(opt.chromium, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('Chromium did not print its DevTools endpoint within 20 s:\n' + buf.slice(-2000))), 20000);
    proc.on('error', (e) => { clearTimeout(t); reject(e); });
    proc.on('exit', (code, sig) => { clearTimeout(t); reject(new Error(`Chromium exited early (${code ?? sig}):\n` + buf.slice(-2000))); });
    proc.stderr.on('data', (d) => {
      buf += d.toString();
      if (buf.length > 200000) buf = buf.slice(-100000); // keep draining, bounded
      const m = buf.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) { clearTimeout(t); resolve({ ws: m[1], stderrTail: () => buf.slice(-2000) }); }
    });
  });
}

// ---------- main ----------
async function main() {
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/page.html`;
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

  const { ws } = await launch();
  browser = await withTimeout(chromium.connectOverCDP(ws), 15000, 'connectOverCDP');
  const version = browser.version();
  let cmdline = '';
  try { cmdline = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '); } catch {}
  const context = browser.contexts()[0] || await browser.newContext();
  log(`chromium ${version} pid ${proc.pid}; page ${url}; network namespace: ${netnsMode}; loadavg ${load}`);
  log(`flags: ${FLAGS.join(' ')} --user-data-dir=${userDataDir}`);

  let cpu0 = groupCpuSeconds(proc.pid);
  let wall0 = performance.now();
  const runs = [];
  const pageOpts = { timeoutMs: opt.timeoutMs, flowMs: opt.flowMs, detect: opt.detect,
                     width: 640, height: 480, fps: opt.fps };
  for (let i = 1 - opt.warmup; i <= opt.runs; i++) {
    let r;
    let page = null;
    try {
      page = await withTimeout(context.newPage(), 10000, 'newPage');
      await page.goto(url, { timeout: 10000 });
      await page.waitForFunction(() => window.pageReady === true, null, { timeout: 10000 });
      // the page bounds itself; this outer bound only catches a stuck renderer
      r = await withTimeout(page.evaluate((o) => window.runCall(o), pageOpts),
                            opt.timeoutMs + opt.flowMs + 10000, 'runCall');
    } catch (e) {
      r = { ok: false, error: e.message.split('\n')[0] };
    } finally {
      if (page) { try { await withTimeout(page.close(), 5000, 'page.close'); } catch {} }
    }
    r.run = i;
    const label = i < 1 ? `warmup ${i + opt.warmup}` : `run ${String(i).padStart(3)}`;
    if (i >= 1) runs.push(r);
    if (i === 0) { cpu0 = groupCpuSeconds(proc.pid); wall0 = performance.now(); }
    if (r.ok) {
      log(`${label}: setup ${r.setup_ms.toFixed(1)} ms  connect ${r.connect_ms.toFixed(1)} ms` +
          `  (ice ${r.ice_connected_ms?.toFixed(1)}, track ${r.track_ms?.toFixed(1)}` +
          (r.rvfc?.receive_ms != null ? `, frame received ${r.rvfc.receive_ms.toFixed(1)}` : '') +
          `)  ${r.codec} ${r.width}x${r.height} ${r.fps} fps  ${r.pair}`);
    } else {
      log(`${label}: FAILED: ${r.error}` + (r.states ? ' ' + JSON.stringify(r.states) : ''));
    }
  }
  const wall = (performance.now() - wall0) / 1000;
  const cpu1 = groupCpuSeconds(proc.pid);

  const ok = runs.filter((r) => r.ok);
  const setup = summary(ok.map((r) => r.setup_ms));
  const connect = summary(ok.map((r) => r.connect_ms));
  const recv = summary(ok.map((r) => r.rvfc?.receive_ms ?? null));
  const last = ok[ok.length - 1] || {};
  const codecs = [...new Set(ok.map((r) => r.codec))];
  const sizes = [...new Set(ok.map((r) => `${r.width}x${r.height}`))];
  const fpsS = summary(ok.map((r) => r.fps));
  const pairs = [...new Set(ok.map((r) => (r.pair || '').replace(/:\d+\//g, '/')))];
  const loopbackOnly = ok.length > 0 && ok.every((r) => /^127\.0\.0\.1:\d+\/udp -> 127\.0\.0\.1:\d+\/udp$/.test(r.pair || ''));

  const fmt = (s) => `p50 ${s.p50}  p95 ${s.p95}  min ${s.min}  max ${s.max}  mean ${s.mean}  (n=${s.n})`;
  console.log('');
  console.log(`setup   (t0 -> first frame) ms: ${fmt(setup)}`);
  console.log(`connect (t0 -> pc1 connected) ms: ${fmt(connect)}`);
  if (recv.n) console.log(`first frame received (rVFC receiveTime) ms: ${fmt(recv)}`);
  console.log(`received after ${opt.flowMs} ms: codec ${codecs.join(',')}  size ${sizes.join(',')}  fps ${fmt(fpsS)}`);
  console.log(`runs ok ${ok.length}/${runs.length}; failed: ${runs.length - ok.length}` +
              (runs.length - ok.length ? ' -> ' + runs.filter((r) => !r.ok).map((r) => `#${r.run}: ${r.error}`).join('; ') : ''));
  console.log(`candidate pairs used: ${pairs.join(', ')}`);
  console.log(`chromium CPU during runs: ${(cpu1.seconds - cpu0.seconds).toFixed(2)} s over ${wall.toFixed(1)} s wall ` +
              `(${cpu1.procs} live processes; exited ones counted only if reaped inside the group)`);

  const result = {
    runs: runs.length, ok: ok.length, failed: runs.length - ok.length,
    setup_p50_ms: setup.p50, setup_p95_ms: setup.p95, setup_min_ms: setup.min, setup_max_ms: setup.max,
    setup_mean_ms: setup.mean,
    connect_p50_ms: connect.p50, connect_p95_ms: connect.p95, connect_min_ms: connect.min, connect_max_ms: connect.max,
    first_frame_received_p50_ms: recv.p50,
    codec: codecs.length === 1 ? codecs[0] : codecs,
    vp8_only: ok.length > 0 && ok.every((r) => r.vp8),
    width: last.width ?? null, height: last.height ?? null, fps: fpsS.p50,
    fps_min: fpsS.min, fps_max: fpsS.max, sizes,
    capture: last.capture ?? null, encoder: last.encoder ?? null, decoder: last.decoder ?? null,
    loopback_only: loopbackOnly, netns: netnsMode, warmup: opt.warmup,
    detect: opt.detect, timeout_ms: opt.timeoutMs, flow_ms: opt.flowMs,
    chromium_cpu_s: Math.round((cpu1.seconds - cpu0.seconds) * 100) / 100, wall_s: Math.round(wall * 10) / 10,
    chromium_version: version, loadavg_at_start: load,
    errors: runs.filter((r) => !r.ok).map((r) => ({ run: r.run, error: r.error })),
  };
  if (opt.json) {
    writeFileSync(opt.json, JSON.stringify({ ...result, flags: FLAGS, cmdline, per_run: runs }, null, 2) + '\n');
    log(`wrote ${opt.json}`);
  }
  console.log('RESULT ' + JSON.stringify(result));
  return ok.length === runs.length ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error('error: ' + (e && e.stack || e));
  code = 2;
} finally {
  await cleanup();
}
process.exit(code);
