import { describe, expect, it } from "vitest";
import type { StatsView } from "../api";
import { statsView } from "../test/fixtures";
import { formatStats } from "./stats-format";

const s: StatsView = statsView({
  rttMs: 42.4,
  sendKbps: 1234.6,
  recvKbps: 980,
  packetsLost: 3,
  jitterMs: 4.25,
  framesDecoded: 900,
  fps: 29.96,
  width: 1280,
  height: 720,
  estimateKbps: 1800.4,
  sendTargetKbps: 1500,
  packetsRepaired: 12,
  freezes: 1,
});

describe("formatStats", () => {
  it("formats every measure with its unit", () => {
    expect(Object.fromEntries(formatStats(s))).toEqual({
      "Round trip": "42 ms",
      Send: "1,235 kbps",
      Receive: "980 kbps",
      "Packets lost": "3",
      Jitter: "4.3 ms",
      "Frame rate": "30.0 fps",
      Resolution: "1280×720",
      "Bandwidth estimate": "1,800 kbps",
      Sending: "640×480 at 30 fps, 1,500 kbps",
      "Packets repaired": "12",
      Freezes: "1",
    });
  });

  it("shows a dash for unknown round trip and missing video", () => {
    const rows = Object.fromEntries(formatStats({ ...s, rttMs: null, width: 0, height: 0 }));
    expect(rows["Round trip"]).toBe("—");
    expect(rows.Resolution).toBe("—");
    expect(rows.Send).toBe("1,235 kbps");
  });

  it("shows a dash for any measure Rust could not take", () => {
    // Some bindings type these as nullable; the panel must not print "NaN" or "null".
    const blank = { ...s } as Record<string, unknown>;
    for (const k of ["sendKbps", "recvKbps", "packetsLost", "jitterMs", "fps"]) blank[k] = null;
    const rows = Object.fromEntries(formatStats(blank as unknown as StatsView));
    for (const label of ["Send", "Receive", "Packets lost", "Jitter", "Frame rate"]) {
      expect(rows[label], label).toBe("—");
    }
    expect(rows["Round trip"]).toBe("42 ms");
  });
});
