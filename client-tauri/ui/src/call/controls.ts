// The call's control bar: mute, camera, devices, statistics, leave; and the keyboard
// shortcuts (Ctrl+D, Ctrl+E) that press the first two.

import { h } from "../dom";
import { matchShortcut, SHORTCUT_LABELS } from "./shortcuts";

export interface ControlHandlers {
  toggleMute(): void;
  toggleCamera(): void;
  toggleDevices(): void;
  toggleStats(): void;
  leave(): void;
}

export class Controls {
  readonly el: HTMLElement;
  readonly mute: HTMLButtonElement;
  readonly camera: HTMLButtonElement;
  readonly devices: HTMLButtonElement;
  readonly stats: HTMLButtonElement;
  readonly leave: HTMLButtonElement;
  private readonly onKey: (e: KeyboardEvent) => void;

  constructor(handlers: ControlHandlers) {
    const b = (id: string, label: string, attrs: Record<string, string> = {}) =>
      h("button", { id, type: "button", ...attrs }, label);
    this.mute = b("toggle-mute", "Mute", {
      class: "toggle",
      "aria-pressed": "false",
      title: `Mute microphone (${SHORTCUT_LABELS.mute})`,
      "aria-keyshortcuts": "Control+D",
    });
    this.camera = b("toggle-camera", "Stop camera", {
      class: "toggle",
      "aria-pressed": "false",
      title: `Turn camera off (${SHORTCUT_LABELS.camera})`,
      "aria-keyshortcuts": "Control+E",
    });
    this.devices = b("open-devices", "Devices", {
      "aria-expanded": "false",
      "aria-controls": "devices-panel",
      title: "Choose camera, microphone and speaker",
    });
    this.stats = b("toggle-stats", "Statistics", {
      "aria-expanded": "false",
      "aria-controls": "stats-panel",
      title: "Show connection statistics",
    });
    this.leave = b("leave-call", "Leave", { class: "danger", title: "Leave the call" });
    this.mute.addEventListener("click", handlers.toggleMute);
    this.camera.addEventListener("click", handlers.toggleCamera);
    this.devices.addEventListener("click", handlers.toggleDevices);
    this.stats.addEventListener("click", handlers.toggleStats);
    this.leave.addEventListener("click", handlers.leave);
    this.el = h(
      "div",
      { class: "call-controls", role: "toolbar", "aria-label": "Call controls" },
      this.mute,
      this.camera,
      this.devices,
      this.stats,
      this.leave,
    );
    this.onKey = (e) => {
      const action = matchShortcut(e);
      if (!action) return;
      e.preventDefault();
      if (action === "mute") handlers.toggleMute();
      else handlers.toggleCamera();
    };
    window.addEventListener("keydown", this.onKey);
  }

  show(muted: boolean, cameraOff: boolean, devicesOpen: boolean, statsOpen: boolean): void {
    this.mute.setAttribute("aria-pressed", String(muted));
    this.mute.title = `${muted ? "Unmute" : "Mute"} microphone (${SHORTCUT_LABELS.mute})`;
    this.camera.setAttribute("aria-pressed", String(cameraOff));
    this.camera.title = `Turn camera ${cameraOff ? "on" : "off"} (${SHORTCUT_LABELS.camera})`;
    this.devices.setAttribute("aria-expanded", String(devicesOpen));
    this.stats.setAttribute("aria-expanded", String(statsOpen));
  }

  destroy(): void {
    window.removeEventListener("keydown", this.onKey);
  }
}
