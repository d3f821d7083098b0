// The in-call devices panel (#devices-panel): the same selects as the pre-join screen (ids
// prefixed "devices-"), applied at once with switchVideo / switchAudio / switchSpeaker.

import { api, type CallSettings } from "../api";
import { h } from "../dom";
import { DevicePicker, stateFromChoices } from "../media/devices";

export class DevicesPanel {
  readonly el: HTMLElement;
  private loaded = false;

  constructor(
    private readonly settings: CallSettings,
    private readonly fail: (err: unknown) => void,
  ) {
    this.el = h(
      "section",
      {
        id: "devices-panel",
        class: "side-panel",
        hidden: true,
        "aria-labelledby": "devices-heading",
      },
      h("h2", { id: "devices-heading" }, "Devices"),
      h("p", { class: "muted", "aria-busy": "true" }, "Looking for devices…"),
    );
  }

  get open(): boolean {
    return !this.el.hidden;
  }

  set open(value: boolean) {
    this.el.hidden = !value;
    if (value && !this.loaded) {
      this.loaded = true;
      void this.load();
    }
  }

  private async load(): Promise<void> {
    try {
      const devices = await api.listDevices();
      const s = this.settings;
      const picker = new DevicePicker(
        devices,
        "devices-",
        stateFromChoices(s.video, s.audio, s.speaker, devices),
      );
      picker.onChange((what) => void this.apply(picker, what));
      const heading = this.el.querySelector("h2");
      this.el.replaceChildren(...(heading ? [heading] : []), picker.el);
      if (devices.notes.length > 0) {
        this.el.append(h("ul", { class: "hints" }, ...devices.notes.map((n) => h("li", {}, n))));
      }
    } catch (err) {
      this.loaded = false;
      this.el.hidden = true;
      this.fail(err);
    }
  }

  private async apply(picker: DevicePicker, what: "video" | "audio" | "speaker"): Promise<void> {
    try {
      if (what === "video") {
        await api.switchVideo(picker.video);
        this.settings.video = picker.video;
      } else if (what === "audio") {
        await api.switchAudio(picker.audio);
        this.settings.audio = picker.audio;
      } else {
        await api.switchSpeaker(picker.state.speakerId);
        this.settings.speaker = picker.state.speakerId;
      }
    } catch (err) {
      this.fail(err);
    }
  }
}
