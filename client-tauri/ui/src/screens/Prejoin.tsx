// Pre-join: pick camera, microphone and speaker with a live preview and mic level, choose
// to start muted or with the camera off and which voice processing runs on the microphone,
// then join the call (or go back).

import { createSignal, For, onCleanup, Show } from "solid-js";
import { createStore } from "solid-js/store";
import {
  ApiError,
  api,
  type CallSettings,
  type Devices,
  micLevelEvents,
  openFrameFeed,
  subscribe,
} from "../api";
import { describeError } from "../errors";
import { DevicePicker } from "../media/DevicePicker";
import { audioChoice, type DeviceState, initialDeviceState, videoChoice } from "../media/devices";
import { FrameRenderer, LOCAL_KEY } from "../media/renderer";
import { loadVoiceProcessing, saveVoiceProcessing } from "../media/voice";
import { toastError, toastInfo } from "../toasts";

const NO_DEVICES: Devices = { cameras: [], microphones: [], speakers: [], notes: [] };

/** The synthetic source to fall back on when `err` says a camera or microphone failed. */
export function testSourceFor(
  err: unknown,
  picker: { state: Pick<DeviceState, "testPattern" | "tone"> },
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

export interface PrejoinProps {
  room: { id: string; title: string };
  /** Join with these settings (the preview has stopped). */
  onJoin(settings: CallSettings): void;
  onBack(): void;
  fail(err: unknown): void;
  /** Start with the camera off (an audio call). */
  audioOnly?: boolean;
}

export function Prejoin(props: PrejoinProps) {
  let alive = true;
  let previewing = false;
  let joining = false;
  let canvas!: HTMLCanvasElement;
  const [devices, setDevices] = createSignal<Devices | null>(null);
  const [state, setState] = createStore<DeviceState>(initialDeviceState(NO_DEVICES));
  const [level, setLevel] = createSignal(0);
  const [muted, setMuted] = createSignal(false);
  const [cameraOff, setCameraOff] = createSignal(props.audioOnly ?? false);
  const [voice, setVoice] = createStore(loadVoiceProcessing());
  const [joinDisabled, setJoinDisabled] = createSignal(true);

  const renderer = new FrameRenderer((key) =>
    key === LOCAL_KEY && canvas ? { tile: canvas, canvas } : null,
  );
  const feed = openFrameFeed(renderer.push, renderer.displaySize);
  feed.setSources([LOCAL_KEY]);

  const stopPreview = async () => {
    if (!previewing) return;
    previewing = false;
    try {
      await api.stopPreview();
    } catch (err) {
      console.warn("stopPreview failed", err);
    }
  };

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
          await api.startPreview(videoChoice(state), audioChoice(state), feed);
          previewing = true;
        } catch (err) {
          const fallback = testSourceFor(err, { state });
          if (alive && fallback) {
            // A listed device that will not open: carry on with the synthetic source.
            if (fallback.which === "video") setState("testPattern", true);
            else setState("tone", true);
            toastInfo(
              `${describeError(err).replace(/\.$/, "")}. Using the ${fallback.name} instead.`,
            );
            again = true;
          } else if (alive) {
            props.fail(err);
          }
        }
      } while (again && alive && !joining);
      running = null;
      if (!alive) await stopPreview();
    })();
    return running;
  };

  const unlistenLevel = subscribe(micLevelEvents, ({ level }) => {
    setLevel(Math.min(1, Math.max(0, level ?? 0)));
  });

  (async () => {
    let found = NO_DEVICES;
    try {
      found = await api.listDevices();
    } catch (err) {
      toastError(`Could not list devices: ${describeError(err)}`);
    }
    if (!alive) return;
    setState(initialDeviceState(found));
    setDevices(found);
    setJoinDisabled(false);
    void restartPreview();
  })();

  onCleanup(() => {
    alive = false;
    feed.close();
    renderer.destroy();
    unlistenLevel();
    void stopPreview();
  });

  const join = async () => {
    setJoinDisabled(true);
    joining = true; // no more preview restarts
    await running;
    await stopPreview();
    if (!alive) return;
    props.onJoin({
      video: videoChoice(state),
      audio: audioChoice(state),
      speaker: state.speakerId,
      muted: muted(),
      cameraOff: cameraOff(),
      voiceProcessing: { ...voice },
    });
  };

  return (
    <section id="prejoin" class="screen">
      <h1 tabIndex={-1}>Join “{props.room.title}”</h1>
      <div class="prejoin-layout">
        <div class="stack">
          <div class="preview">
            <canvas ref={canvas} id="preview-video" aria-label="Camera preview" role="img" />
            <div class="preview-off" hidden={!cameraOff()}>
              Your camera will be off
            </div>
          </div>
          <div class="field">
            <label for="mic-level">Microphone level</label>
            <meter
              id="mic-level"
              min={0}
              max={1}
              low={0.6}
              high={0.9}
              optimum={0.3}
              value={level()}
            />
          </div>
          <ul id="device-notes" class="hints" aria-live="polite">
            <For each={devices()?.notes ?? []}>{(n) => <li>{n}</li>}</For>
          </ul>
        </div>
        <div class="card stack">
          <Show
            when={devices()}
            fallback={
              <div class="picker-slot" aria-busy="true">
                Looking for devices…
              </div>
            }
          >
            {(d) => (
              <div class="picker-slot" aria-busy="false">
                <DevicePicker
                  devices={d()}
                  state={state}
                  setState={setState}
                  onChange={(what) => {
                    if (what !== "speaker") void restartPreview();
                  }}
                />
              </div>
            )}
          </Show>
          <div class="row">
            <button
              id="prejoin-mute"
              type="button"
              class="toggle"
              aria-pressed={muted() ? "true" : "false"}
              onClick={() => setMuted((v) => !v)}
            >
              Start muted
            </button>
            <button
              id="prejoin-camera-off"
              type="button"
              class="toggle"
              aria-pressed={cameraOff() ? "true" : "false"}
              onClick={() => setCameraOff((v) => !v)}
            >
              Start with camera off
            </button>
          </div>
          <fieldset id="voice-processing" class="stack">
            <legend>Voice processing</legend>
            <For
              each={
                [
                  ["echoCancellation", "Echo cancellation"],
                  ["noiseSuppression", "Noise suppression"],
                  ["gainControl", "Automatic gain control"],
                ] as const
              }
            >
              {([part, label]) => (
                <label class="check">
                  <input
                    id={`voice-${part}`}
                    type="checkbox"
                    checked={voice[part]}
                    onChange={(e) => {
                      setVoice(part, e.currentTarget.checked);
                      saveVoiceProcessing({ ...voice });
                    }}
                  />
                  {label}
                </label>
              )}
            </For>
          </fieldset>
          <div class="row">
            <button
              id="join-call"
              type="button"
              class="primary"
              disabled={joinDisabled()}
              onClick={() => void join()}
            >
              Join call
            </button>
            <button id="prejoin-back" type="button" onClick={() => props.onBack()}>
              Back
            </button>
          </div>
        </div>
      </div>
    </section>
  );
}
