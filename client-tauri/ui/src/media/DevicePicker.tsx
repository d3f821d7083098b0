// The device picker shared by the pre-join screen and the in-call devices panel: camera,
// microphone and speaker selects plus "test pattern instead of camera" and "test tone
// instead of microphone". The parent owns the state (a store); the picker edits it and
// says what changed. Ids are `${prefix}camera-select`, `${prefix}use-test-pattern`, ...

import { For, Show } from "solid-js";
import type { SetStoreFunction } from "solid-js/store";
import type { AudioDevice, Devices } from "../api";
import type { DeviceChange, DeviceState } from "./devices";

function AudioOptions(props: { devices: AudioDevice[]; selected: string | null }) {
  const def = () => props.devices.find((d) => d.isDefault);
  return (
    <>
      <option value="">{def() ? `System default (${def()?.name})` : "System default"}</option>
      <For each={props.devices}>
        {(d) => (
          <option value={d.id} selected={d.id === props.selected}>
            {d.name}
          </option>
        )}
      </For>
    </>
  );
}

export function DevicePicker(props: {
  devices: Devices;
  state: DeviceState;
  setState: SetStoreFunction<DeviceState>;
  onChange?: (what: DeviceChange) => void;
  prefix?: string;
}) {
  const id = (name: string) => `${props.prefix ?? ""}${name}`;
  const changed = (what: DeviceChange) => props.onChange?.(what);
  const noCamera = () => props.devices.cameras.length === 0;
  return (
    <div class="device-picker stack">
      <div class="field">
        <label for={id("camera-select")}>Camera</label>
        <select
          id={id("camera-select")}
          disabled={props.state.testPattern || noCamera()}
          onChange={(e) => {
            const v = e.currentTarget.value;
            props.setState("cameraIndex", v === "" ? null : Number(v));
            changed("video");
          }}
        >
          <Show when={noCamera()}>
            <option value="">No camera found</option>
          </Show>
          <For each={props.devices.cameras}>
            {(c) => (
              <option value={c.index} selected={c.index === props.state.cameraIndex}>
                {c.name}
              </option>
            )}
          </For>
        </select>
      </div>
      <div class="check">
        <input
          id={id("use-test-pattern")}
          type="checkbox"
          checked={props.state.testPattern}
          onChange={(e) => {
            props.setState("testPattern", e.currentTarget.checked);
            changed("video");
          }}
        />
        <label for={id("use-test-pattern")}>Test pattern instead of camera</label>
      </div>
      <div class="field">
        <label for={id("mic-select")}>Microphone</label>
        <select
          id={id("mic-select")}
          disabled={props.state.tone}
          onChange={(e) => {
            const v = e.currentTarget.value;
            props.setState("micId", v === "" ? null : v);
            changed("audio");
          }}
        >
          <AudioOptions devices={props.devices.microphones} selected={props.state.micId} />
        </select>
      </div>
      <div class="check">
        <input
          id={id("use-test-tone")}
          type="checkbox"
          checked={props.state.tone}
          onChange={(e) => {
            props.setState("tone", e.currentTarget.checked);
            changed("audio");
          }}
        />
        <label for={id("use-test-tone")}>Test tone instead of microphone</label>
      </div>
      <div class="field">
        <label for={id("speaker-select")}>Speaker</label>
        <select
          id={id("speaker-select")}
          onChange={(e) => {
            const v = e.currentTarget.value;
            props.setState("speakerId", v === "" ? null : v);
            changed("speaker");
          }}
        >
          <AudioOptions devices={props.devices.speakers} selected={props.state.speakerId} />
        </select>
      </div>
    </div>
  );
}
