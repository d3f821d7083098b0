import { describe, expect, it } from "vitest";
import type { Devices } from "../api";
import {
  audioChoice,
  DevicePicker,
  initialDeviceState,
  stateFromChoices,
  videoChoice,
} from "./devices";

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

describe("DevicePicker", () => {
  it("ticks the test pattern and disables the camera select when there is no camera", () => {
    const p = new DevicePicker(none);
    document.body.replaceChildren(p.el);
    const pattern = document.getElementById("use-test-pattern") as HTMLInputElement;
    const tone = document.getElementById("use-test-tone") as HTMLInputElement;
    expect(pattern.checked).toBe(true);
    expect(tone.checked).toBe(true);
    expect((document.getElementById("camera-select") as HTMLSelectElement).disabled).toBe(true);
  });

  it("reports changes with the new choice", () => {
    const p = new DevicePicker(full, "devices-");
    document.body.replaceChildren(p.el);
    const seen: string[] = [];
    p.onChange((what) => seen.push(what));
    const camera = document.getElementById("devices-camera-select") as HTMLSelectElement;
    expect(camera.disabled).toBe(false);
    camera.value = "5";
    camera.dispatchEvent(new Event("change"));
    const pattern = document.getElementById("devices-use-test-pattern") as HTMLInputElement;
    expect(pattern.checked).toBe(false);
    expect(p.video).toEqual({ kind: "camera", index: 5 });
    pattern.click();
    expect(p.video).toEqual({ kind: "testPattern" });
    expect(camera.disabled).toBe(true);
    const mic = document.getElementById("devices-mic-select") as HTMLSelectElement;
    mic.value = "m1";
    mic.dispatchEvent(new Event("change"));
    expect(p.audio).toEqual({ kind: "microphone", id: "m1" });
    expect(seen).toEqual(["video", "video", "audio"]);
  });

  it("labels every control", () => {
    const p = new DevicePicker(full);
    document.body.replaceChildren(p.el);
    for (const el of p.el.querySelectorAll("input, select")) {
      expect(p.el.querySelector(`label[for="${el.id}"]`), el.id).not.toBeNull();
    }
  });
});

describe("DevicePicker.useTestSource", () => {
  it("ticks the test tone or pattern and disables the device select", () => {
    const picker = new DevicePicker(full);
    const changes: string[] = [];
    picker.onChange((what) => changes.push(what));
    expect(picker.audio).toEqual({ kind: "microphone", id: null });
    picker.useTestSource("audio");
    expect(picker.audio).toEqual({ kind: "tone" });
    const tone = picker.el.querySelector<HTMLInputElement>("#use-test-tone");
    const mic = picker.el.querySelector<HTMLSelectElement>("#mic-select");
    expect(tone?.checked).toBe(true);
    expect(mic?.disabled).toBe(true);
    picker.useTestSource("video");
    expect(picker.video).toEqual({ kind: "testPattern" });
    expect(changes).toEqual([]);
  });
});
