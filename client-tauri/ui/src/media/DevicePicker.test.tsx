import { cleanup, render } from "@solidjs/testing-library";
import { createStore } from "solid-js/store";
import { afterEach, describe, expect, it } from "vitest";
import type { Devices } from "../api";
import { DevicePicker } from "./DevicePicker";
import { audioChoice, type DeviceChange, initialDeviceState, videoChoice } from "./devices";

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

function mount(devices: Devices, prefix = "") {
  const [state, setState] = createStore(initialDeviceState(devices));
  const seen: DeviceChange[] = [];
  const view = render(() => (
    <DevicePicker
      devices={devices}
      state={state}
      setState={setState}
      prefix={prefix}
      onChange={(w) => seen.push(w)}
    />
  ));
  return { state, setState, seen, view };
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const change = (el: HTMLElement) => el.dispatchEvent(new Event("change", { bubbles: true }));

describe("DevicePicker", () => {
  afterEach(cleanup);

  it("ticks the test pattern and disables the camera select when there is no camera", () => {
    mount(none);
    expect($<HTMLInputElement>("use-test-pattern").checked).toBe(true);
    expect($<HTMLInputElement>("use-test-tone").checked).toBe(true);
    expect($<HTMLSelectElement>("camera-select").disabled).toBe(true);
    expect($<HTMLSelectElement>("camera-select").textContent).toContain("No camera found");
  });

  it("reports changes with the new choice", () => {
    const { state, seen } = mount(full, "devices-");
    const camera = $<HTMLSelectElement>("devices-camera-select");
    expect(camera.disabled).toBe(false);
    camera.value = "5";
    change(camera);
    const pattern = $<HTMLInputElement>("devices-use-test-pattern");
    expect(pattern.checked).toBe(false);
    expect(videoChoice(state)).toEqual({ kind: "camera", index: 5 });
    pattern.click();
    expect(videoChoice(state)).toEqual({ kind: "testPattern" });
    expect(camera.disabled).toBe(true);
    const mic = $<HTMLSelectElement>("devices-mic-select");
    mic.value = "m1";
    change(mic);
    expect(audioChoice(state)).toEqual({ kind: "microphone", id: "m1" });
    const speaker = $<HTMLSelectElement>("devices-speaker-select");
    speaker.value = "s1";
    change(speaker);
    expect(state.speakerId).toBe("s1");
    expect(seen).toEqual(["video", "video", "audio", "speaker"]);
  });

  it("names the system default device", () => {
    mount(full);
    expect($("mic-select").querySelector("option")?.textContent).toBe("System default (Mic 2)");
  });

  it("labels every control", () => {
    const { view } = mount(full);
    for (const el of view.container.querySelectorAll("input, select")) {
      expect(view.container.querySelector(`label[for="${el.id}"]`), el.id).not.toBeNull();
    }
  });

  it("follows the state when the parent falls back to a test source", () => {
    const { state, setState, seen } = mount(full);
    expect(audioChoice(state)).toEqual({ kind: "microphone", id: null });
    setState("tone", true);
    expect(audioChoice(state)).toEqual({ kind: "tone" });
    expect($<HTMLInputElement>("use-test-tone").checked).toBe(true);
    expect($<HTMLSelectElement>("mic-select").disabled).toBe(true);
    setState("testPattern", true);
    expect(videoChoice(state)).toEqual({ kind: "testPattern" });
    expect(seen).toEqual([]);
  });
});
