// Pre-join screen: pick camera, microphone and speaker with a live preview and mic level,
// choose to start muted or with the camera off, then join the call.

import {
  ApiError,
  api,
  type Devices,
  micLevelEvents,
  openFrameFeed,
  type RoomView,
  subscribe,
} from "../api";
import type { App, Screen } from "../app";
import { h } from "../dom";
import { describeError } from "../forms";
import { DevicePicker } from "../media/devices";
import { FrameRenderer, LOCAL_KEY } from "../media/renderer";
import { toastError, toastInfo } from "../toasts";

const NO_DEVICES: Devices = { cameras: [], microphones: [], speakers: [], notes: [] };

function toggle(id: string, label: string): HTMLButtonElement {
  const b = h("button", { id, type: "button", class: "toggle", "aria-pressed": "false" }, label);
  b.addEventListener("click", () => {
    b.setAttribute("aria-pressed", String(b.getAttribute("aria-pressed") !== "true"));
  });
  return b;
}

const pressed = (b: HTMLButtonElement) => b.getAttribute("aria-pressed") === "true";

/** The synthetic source to fall back on when `err` says a camera or microphone failed. */
export function testSourceFor(
  err: unknown,
  picker: Pick<DevicePicker, "state">,
): { which: "video" | "audio"; name: string } | null {
  if (!(err instanceof ApiError) || err.error.kind !== "device") return null;
  if (err.error.device === "camera" && !picker.state.testPattern) {
    return { which: "video", name: "test pattern" };
  }
  if (err.error.device === "microphone" && !picker.state.tone) {
    return { which: "audio", name: "test tone" };
  }
  return null;
}

export function prejoinScreen(app: App, room: RoomView): Screen {
  let alive = true;
  let previewing = false;
  let joining = false;
  const canvas = h("canvas", { id: "preview-video", "aria-label": "Camera preview", role: "img" });
  const cameraOffNote = h("div", { class: "preview-off", hidden: true }, "Your camera will be off");
  const meter = h("meter", {
    id: "mic-level",
    min: 0,
    max: 1,
    low: 0.6,
    high: 0.9,
    optimum: 0.3,
    value: 0,
  });
  const notes = h("ul", { id: "device-notes", class: "hints", "aria-live": "polite" });
  const pickerSlot = h(
    "div",
    { class: "picker-slot", "aria-busy": "true" },
    "Looking for devices…",
  );
  const mute = toggle("prejoin-mute", "Start muted");
  const cameraOff = toggle("prejoin-camera-off", "Start with camera off");
  const join = h(
    "button",
    { id: "join-call", type: "button", class: "primary", disabled: true },
    "Join call",
  );
  const back = h("button", { id: "prejoin-back", type: "button" }, "Back to rooms");
  let picker = new DevicePicker(NO_DEVICES);

  cameraOff.addEventListener("click", () => {
    cameraOffNote.hidden = !pressed(cameraOff);
  });

  const renderer = new FrameRenderer((key) =>
    key === LOCAL_KEY ? { tile: canvas, canvas } : null,
  );
  const feed = openFrameFeed(renderer.push, renderer.displaySize);
  feed.setSources([LOCAL_KEY]);

  // startPreview calls run one at a time; changes made meanwhile restart it once more.
  let running: Promise<void> | null = null;
  let again = false;
  const restartPreview = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    if (joining) return Promise.resolve();
    running = (async () => {
      do {
        again = false;
        try {
          await api.startPreview(picker.video, picker.audio, feed);
          previewing = true;
        } catch (err) {
          const fallback = testSourceFor(err, picker);
          if (alive && fallback) {
            // A listed device that will not open: carry on with the synthetic source.
            picker.useTestSource(fallback.which);
            toastInfo(
              `${describeError(err).replace(/\.$/, "")}. Using the ${fallback.name} instead.`,
            );
            again = true;
          } else if (alive) {
            app.fail(err);
          }
        }
      } while (again && alive && !joining);
      running = null;
      if (!alive) await stopPreview();
    })();
    return running;
  };

  const unlistenLevel = subscribe(micLevelEvents, ({ level }) => {
    meter.value = Math.min(1, Math.max(0, level ?? 0));
  });

  const stopPreview = async () => {
    if (!previewing) return;
    previewing = false;
    try {
      await api.stopPreview();
    } catch (err) {
      console.warn("stopPreview failed", err);
    }
  };

  (async () => {
    let devices = NO_DEVICES;
    try {
      devices = await api.listDevices();
    } catch (err) {
      toastError(`Could not list devices: ${describeError(err)}`);
    }
    if (!alive) return;
    picker = new DevicePicker(devices);
    picker.onChange((what) => {
      if (what !== "speaker") void restartPreview();
    });
    pickerSlot.replaceChildren(picker.el);
    pickerSlot.setAttribute("aria-busy", "false");
    notes.replaceChildren(...devices.notes.map((n) => h("li", {}, n)));
    join.disabled = false;
    void restartPreview();
  })();

  join.addEventListener("click", async () => {
    join.disabled = true;
    joining = true; // no more preview restarts
    await running;
    await stopPreview();
    if (!alive) return;
    app.go({
      name: "call",
      room,
      settings: {
        video: picker.video,
        audio: picker.audio,
        speaker: picker.state.speakerId,
        muted: pressed(mute),
        cameraOff: pressed(cameraOff),
      },
    });
  });
  back.addEventListener("click", () => app.go({ name: "rooms" }));

  const el = h(
    "section",
    { id: "prejoin", class: "screen" },
    h("h1", {}, `Join “${room.title}”`),
    h(
      "div",
      { class: "prejoin-layout" },
      h(
        "div",
        { class: "stack" },
        h("div", { class: "preview" }, canvas, cameraOffNote),
        h("div", { class: "field" }, h("label", { for: "mic-level" }, "Microphone level"), meter),
        notes,
      ),
      h(
        "div",
        { class: "card stack" },
        pickerSlot,
        h("div", { class: "row" }, mute, cameraOff),
        h("div", { class: "row" }, join, back),
      ),
    ),
  );
  return {
    el,
    title: "Get ready",
    destroy: () => {
      alive = false;
      feed.close();
      renderer.destroy();
      unlistenLevel();
      void stopPreview();
    },
  };
}
