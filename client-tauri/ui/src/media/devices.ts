// Camera / microphone / speaker choice, shared by the pre-join screen and the in-call devices
// panel: three selects plus "test pattern instead of camera" and "test tone instead of
// microphone". The pure parts (initial state, the choices sent to Rust) are separate.

import type { AudioChoice, AudioDevice, Devices, VideoChoice } from "../api";
import { h } from "../dom";

export interface DeviceState {
  cameraIndex: number | null;
  testPattern: boolean;
  micId: string | null;
  tone: boolean;
  speakerId: string | null;
}

export type DeviceChange = "video" | "audio" | "speaker";

export function initialDeviceState(d: Devices): DeviceState {
  return {
    cameraIndex: d.cameras[0]?.index ?? null,
    testPattern: d.cameras.length === 0,
    micId: null,
    tone: d.microphones.length === 0,
    speakerId: null,
  };
}

export function videoChoice(s: DeviceState): VideoChoice {
  if (s.testPattern) return { kind: "testPattern" };
  return s.cameraIndex === null ? { kind: "off" } : { kind: "camera", index: s.cameraIndex };
}

export function audioChoice(s: DeviceState): AudioChoice {
  return s.tone ? { kind: "tone" } : { kind: "microphone", id: s.micId };
}

function labelled(id: string, label: string, control: HTMLElement): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function check(id: string, label: string, checked: boolean): [HTMLElement, HTMLInputElement] {
  const input = h("input", { id, type: "checkbox", checked });
  return [h("div", { class: "check" }, input, h("label", { for: id }, label)), input];
}

function audioOptions(select: HTMLSelectElement, devices: AudioDevice[], selected: string | null) {
  const def = devices.find((d) => d.isDefault);
  select.append(
    h("option", { value: "" }, def ? `System default (${def.name})` : "System default"),
  );
  for (const d of devices) {
    select.append(h("option", { value: d.id, selected: d.id === selected }, d.name));
  }
}

export class DevicePicker {
  readonly el: HTMLElement;
  readonly state: DeviceState;
  private readonly listeners: ((what: DeviceChange) => void)[] = [];
  /** Ticks "test pattern" (video) or "test tone" (audio), without a change event. */
  readonly useTestSource: (which: "video" | "audio") => void;

  /** Ids are `${prefix}camera-select`, `${prefix}mic-select`, `${prefix}use-test-pattern`... */
  constructor(devices: Devices, prefix = "", state: DeviceState = initialDeviceState(devices)) {
    this.state = { ...state };
    const id = (name: string) => `${prefix}${name}`;

    const camera = h("select", { id: id("camera-select") });
    if (devices.cameras.length === 0) camera.append(h("option", { value: "" }, "No camera found"));
    for (const c of devices.cameras) {
      camera.append(
        h("option", { value: c.index, selected: c.index === this.state.cameraIndex }, c.name),
      );
    }
    const [patternBox, pattern] = check(
      id("use-test-pattern"),
      "Test pattern instead of camera",
      this.state.testPattern,
    );
    const mic = h("select", { id: id("mic-select") });
    audioOptions(mic, devices.microphones, this.state.micId);
    const [toneBox, tone] = check(
      id("use-test-tone"),
      "Test tone instead of microphone",
      this.state.tone,
    );
    const speaker = h("select", { id: id("speaker-select") });
    audioOptions(speaker, devices.speakers, this.state.speakerId);

    const sync = () => {
      camera.disabled = pattern.checked || devices.cameras.length === 0;
      mic.disabled = tone.checked;
    };
    camera.addEventListener("change", () => {
      this.state.cameraIndex = camera.value === "" ? null : Number(camera.value);
      this.emit("video");
    });
    pattern.addEventListener("change", () => {
      this.state.testPattern = pattern.checked;
      sync();
      this.emit("video");
    });
    mic.addEventListener("change", () => {
      this.state.micId = mic.value === "" ? null : mic.value;
      this.emit("audio");
    });
    tone.addEventListener("change", () => {
      this.state.tone = tone.checked;
      sync();
      this.emit("audio");
    });
    speaker.addEventListener("change", () => {
      this.state.speakerId = speaker.value === "" ? null : speaker.value;
      this.emit("speaker");
    });
    sync();
    this.useTestSource = (which) => {
      const box = which === "video" ? pattern : tone;
      box.checked = true;
      if (which === "video") this.state.testPattern = true;
      else this.state.tone = true;
      sync();
    };

    this.el = h(
      "div",
      { class: "device-picker stack" },
      labelled(id("camera-select"), "Camera", camera),
      patternBox,
      labelled(id("mic-select"), "Microphone", mic),
      toneBox,
      labelled(id("speaker-select"), "Speaker", speaker),
    );
  }

  onChange(cb: (what: DeviceChange) => void): void {
    this.listeners.push(cb);
  }

  get video(): VideoChoice {
    return videoChoice(this.state);
  }

  get audio(): AudioChoice {
    return audioChoice(this.state);
  }

  private emit(what: DeviceChange): void {
    for (const cb of this.listeners) cb(what);
  }
}

/** The picker state that shows the choices a call was started with. */
export function stateFromChoices(
  video: VideoChoice,
  audio: AudioChoice,
  speaker: string | null | undefined,
  devices: Devices,
): DeviceState {
  return {
    cameraIndex: video.kind === "camera" ? video.index : (devices.cameras[0]?.index ?? null),
    testPattern: video.kind === "testPattern",
    micId: audio.kind === "microphone" ? (audio.id ?? null) : null,
    tone: audio.kind === "tone",
    speakerId: speaker ?? null,
  };
}
