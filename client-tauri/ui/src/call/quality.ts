// Connection quality of a remote participant from its latest stats: the worst of round-trip
// time, new packet loss since the previous sample, and frame rate (when video is expected).

import type { StatsView } from "../api";

export type Quality = "good" | "fair" | "poor" | "unknown";

export const RTT_GOOD_MS = 150;
export const RTT_FAIR_MS = 400;
/** Packets newly lost between two stats samples (about one second apart). */
export const LOSS_GOOD = 2;
export const LOSS_FAIR = 10;
export const FPS_GOOD = 20;
export const FPS_FAIR = 10;

const RANK: Record<Exclude<Quality, "unknown">, number> = { good: 0, fair: 1, poor: 2 };

function grade(value: number, good: number, fair: number, higherIsBetter: boolean): Quality {
  if (higherIsBetter) return value >= good ? "good" : value >= fair ? "fair" : "poor";
  return value <= good ? "good" : value <= fair ? "fair" : "poor";
}

export interface QualityInput {
  rttMs: number | null;
  /** Packets lost since the previous sample; null when there is no previous sample. */
  newlyLost: number | null;
  /** Frames per second; null when not measured. */
  fps: number | null;
  /** False while the participant's camera is off: a frame rate of 0 is then expected. */
  videoExpected: boolean;
}

export function quality(input: QualityInput): Quality {
  const grades: Quality[] = [];
  if (input.rttMs !== null && Number.isFinite(input.rttMs)) {
    grades.push(grade(input.rttMs, RTT_GOOD_MS, RTT_FAIR_MS, false));
  }
  if (input.newlyLost !== null) grades.push(grade(input.newlyLost, LOSS_GOOD, LOSS_FAIR, false));
  if (input.videoExpected && input.fps !== null) {
    grades.push(grade(input.fps, FPS_GOOD, FPS_FAIR, true));
  }
  if (grades.length === 0) return "unknown";
  return grades.reduce((worst, g) =>
    RANK[g as keyof typeof RANK] > RANK[worst as keyof typeof RANK] ? g : worst,
  );
}

/** Quality from a stats sample, the one before it (for the loss delta) and the camera state. */
export function qualityFromStats(
  stats: StatsView | undefined,
  previous: StatsView | undefined,
  videoMuted: boolean,
): Quality {
  if (!stats) return "unknown";
  return quality({
    rttMs: stats.rttMs ?? null,
    newlyLost:
      previous && stats.packetsLost !== null && previous.packetsLost !== null
        ? Math.max(0, stats.packetsLost - previous.packetsLost)
        : null,
    fps: stats.fps ?? null,
    videoExpected: !videoMuted,
  });
}
