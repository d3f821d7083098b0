// Camera / microphone / speaker choice, the pure part: the initial state and the choices sent
// to Rust. The picker itself (three selects plus "test pattern instead of camera" and "test
// tone instead of microphone") is DevicePicker.tsx.

import type { AudioChoice, Devices, VideoChoice } from "../api";

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
