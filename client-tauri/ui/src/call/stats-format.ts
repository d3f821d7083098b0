// Human-readable rows for the stats panel. A measure Rust could not take is null: "—".

import type { StatsView } from "../api";

export type StatsRow = [label: string, value: string];

const DASH = "—";
const int = (n: number) => Math.round(n).toLocaleString("en-US");
const show = (n: number | null | undefined, fmt: (n: number) => string) =>
  n === null || n === undefined || !Number.isFinite(n) ? DASH : fmt(n);

export function formatStats(s: StatsView): StatsRow[] {
  return [
    ["Round trip", show(s.rttMs, (n) => `${int(n)} ms`)],
    ["Send", show(s.sendKbps, (n) => `${int(n)} kbps`)],
    ["Receive", show(s.recvKbps, (n) => `${int(n)} kbps`)],
    ["Packets lost", show(s.packetsLost, int)],
    ["Jitter", show(s.jitterMs, (n) => `${n.toFixed(1)} ms`)],
    ["Frame rate", show(s.fps, (n) => `${n.toFixed(1)} fps`)],
    ["Resolution", s.width > 0 && s.height > 0 ? `${s.width}×${s.height}` : DASH],
    ["Bandwidth estimate", show(s.estimateKbps, (n) => `${int(n)} kbps`)],
    [
      "Sending",
      s.sendWidth > 0 && s.sendHeight > 0
        ? `${s.sendWidth}×${s.sendHeight} at ${s.sendFps} fps, ${int(s.sendTargetKbps)} kbps`
        : DASH,
    ],
    ["Packets repaired", show(s.packetsRepaired, int)],
    ["Freezes", show(s.freezes, int)],
  ];
}
