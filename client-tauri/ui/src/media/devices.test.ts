import { describe, expect, it } from "vitest";
import type { Devices } from "../api";
import { audioChoice, initialDeviceState, stateFromChoices, videoChoice } from "./devices";

const full: Devices = {
  cameras: [
    { index: 2, name: "USB cam" },
    { index: 5, name: "Built-in" },
  ],
  microphones: [
    { id: "m1", name: "Mic 1", isDefault: false },
    { id: "m2", name: "Mic 2", isDefault: true },
  ],
  speakers: [{ id: "s1", name: "Speakers", isDefault: true }],
  notes: [],
};
const none: Devices = { cameras: [], microphones: [], speakers: [], notes: ["no camera found"] };

describe("device choices", () => {
  it("uses the first camera and the default microphone when there are devices", () => {
    const s = initialDeviceState(full);
    expect(videoChoice(s)).toEqual({ kind: "camera", index: 2 });
    expect(audioChoice(s)).toEqual({ kind: "microphone", id: null });
  });

  it("falls back to the test pattern and tone without devices", () => {
    const s = initialDeviceState(none);
    expect(videoChoice(s)).toEqual({ kind: "testPattern" });
    expect(audioChoice(s)).toEqual({ kind: "tone" });
  });

  it("sends video off when the test pattern is unticked without a camera", () => {
    expect(videoChoice({ ...initialDeviceState(none), testPattern: false })).toEqual({
      kind: "off",
    });
  });

  it("restores the picker from a call's choices", () => {
    const s = stateFromChoices(
      { kind: "camera", index: 5 },
      { kind: "microphone", id: "m1" },
      "s1",
      full,
    );
    expect(s).toEqual({
      cameraIndex: 5,
      testPattern: false,
      micId: "m1",
      tone: false,
      speakerId: "s1",
    });
  });
});
