import { describe, expect, it } from "vitest";
import type { StatsView } from "../api";
import { statsView } from "../test/fixtures";
import { quality, qualityFromStats } from "./quality";

const base = { rttMs: 40, newlyLost: 0, fps: 30, videoExpected: true };

describe("quality", () => {
  it("is good when everything is good", () => {
    expect(quality(base)).toBe("good");
  });

  it("grades round-trip time at 150 and 400 ms", () => {
    expect(quality({ ...base, rttMs: 150 })).toBe("good");
    expect(quality({ ...base, rttMs: 151 })).toBe("fair");
    expect(quality({ ...base, rttMs: 400 })).toBe("fair");
    expect(quality({ ...base, rttMs: 401 })).toBe("poor");
  });

  it("grades new loss at 2 and 10 packets", () => {
    expect(quality({ ...base, newlyLost: 2 })).toBe("good");
    expect(quality({ ...base, newlyLost: 3 })).toBe("fair");
    expect(quality({ ...base, newlyLost: 11 })).toBe("poor");
  });

  it("grades frame rate at 20 and 10 fps, only when video is expected", () => {
    expect(quality({ ...base, fps: 19 })).toBe("fair");
    expect(quality({ ...base, fps: 9 })).toBe("poor");
    expect(quality({ ...base, fps: 0, videoExpected: false })).toBe("good");
    expect(quality({ ...base, fps: null })).toBe("good");
  });

  it("takes the worst of the measures", () => {
    expect(quality({ ...base, rttMs: 200, fps: 5 })).toBe("poor");
    expect(quality({ ...base, rttMs: 500, newlyLost: 0 })).toBe("poor");
  });

  it("is unknown without any measure", () => {
    expect(quality({ rttMs: null, newlyLost: null, fps: 0, videoExpected: false })).toBe("unknown");
  });
});

const stats = (over: Partial<StatsView>): StatsView => statsView(over);

describe("qualityFromStats", () => {
  it("is unknown without stats", () => {
    expect(qualityFromStats(undefined, undefined, false)).toBe("unknown");
  });

  it("uses the loss since the previous sample, not the running total", () => {
    const prev = stats({ packetsLost: 1000 });
    expect(qualityFromStats(stats({ packetsLost: 1001 }), prev, false)).toBe("good");
    expect(qualityFromStats(stats({ packetsLost: 1050 }), prev, false)).toBe("poor");
    // Without a previous sample the total says nothing about now.
    expect(qualityFromStats(stats({ packetsLost: 1000 }), undefined, false)).toBe("good");
  });

  it("does not blame a turned-off camera for 0 fps", () => {
    expect(qualityFromStats(stats({ fps: 0 }), undefined, true)).toBe("good");
    expect(qualityFromStats(stats({ fps: 0 }), undefined, false)).toBe("poor");
  });
});
