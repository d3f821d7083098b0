// The call view (#call-view): the tile grid, the participant list, the devices and
// statistics panels and the control bar, all projections of a CallSession. Leaving this
// view does not hang up: the session lives on (the shell shows a call bar).

import { createEffect, createSignal, For, type JSX, onCleanup, onMount, Show } from "solid-js";
import { createStore } from "solid-js/store";
import { api, type Devices, type PeerState } from "../api";
import { unreachable } from "../errors";
import { DevicePicker } from "../media/DevicePicker";
import { audioChoice, type DeviceChange, stateFromChoices, videoChoice } from "../media/devices";
import { LOCAL_KEY, screenKey } from "../media/renderer";
import { saveVoiceProcessing, VOICE_ON } from "../media/voice";
import { gridFor } from "./grid";
import type { Participant } from "./model";
import type { Quality } from "./quality";
import { ScreenPicker } from "./ScreenPicker";
import type { CallSession } from "./session";
import { SHORTCUT_LABELS } from "./shortcuts";
import { formatStats } from "./stats-format";

const GAP_PX = 8;

const QUALITY_TEXT: Record<Quality, string> = {
  good: "Connection: good",
  fair: "Connection: fair",
  poor: "Connection: poor",
  unknown: "Connection: unknown",
};

/** What a tile says about its peer connection (null: nothing to say). */
export function peerStatusText(state: PeerState | null): string | null {
  switch (state) {
    case null:
    case "connected":
    case "closed":
      return null;
    case "new":
    case "connecting":
      return "Connecting…";
    case "disconnected":
      return "Connection interrupted…";
    case "failed":
      return "Connection failed";
    default:
      return unreachable(state);
  }
}

/** One participant's video tile; its canvas receives frames while it is on screen. */
export function Tile(props: { session: CallSession; id: string; class?: string }) {
  let el!: HTMLLIElement;
  let canvas!: HTMLCanvasElement;
  const p = () => props.session.participant(props.id);
  const label = () => (p()?.local ? "You" : (p()?.username ?? ""));
  const quality = () => (p()?.local ? "unknown" : props.session.quality(props.id));
  const status = () => peerStatusText(p()?.peerState ?? null);
  onMount(() => {
    const detach = props.session.attach(props.id, { tile: el, canvas });
    onCleanup(detach);
  });
  return (
    <li
      ref={el}
      class={`tile ${props.class ?? ""}`}
      aria-label={label()}
      data-participant-id={props.id}
      data-local={p()?.local ? "true" : "false"}
      data-audio-muted={String(p()?.audioMuted ?? false)}
      data-video-muted={String(p()?.videoMuted ?? false)}
    >
      <canvas
        ref={canvas}
        class="tile-video"
        aria-label={`Video of ${label()}`}
        hidden={p()?.videoMuted ?? false}
      />
      <div class="tile-placeholder" hidden={!p()?.videoMuted}>
        <span class="tile-avatar" aria-hidden="true">
          {(p()?.username[0] ?? "?").toUpperCase()}
        </span>
        <span class="tile-placeholder-text">Camera off</span>
      </div>
      <span class="tile-status" hidden={status() === null}>
        {status() ?? ""}
      </span>
      <div class="tile-bar">
        <span class="tile-name">{label()}</span>
        <span
          class="tile-muted"
          role="img"
          aria-label="Microphone muted"
          hidden={!p()?.audioMuted}
        />
        <span
          class="tile-quality"
          role="img"
          data-quality={quality()}
          aria-label={QUALITY_TEXT[quality()]}
          title={QUALITY_TEXT[quality()]}
          hidden={p()?.local ?? true}
        />
      </div>
    </li>
  );
}

/** A participant's shared screen, as a tile of its own next to their camera's. */
export function ScreenTile(props: { session: CallSession; id: string }) {
  let el!: HTMLLIElement;
  let canvas!: HTMLCanvasElement;
  const label = () => `${props.session.participant(props.id)?.username ?? ""}'s screen`;
  onMount(() => {
    const detach = props.session.attach(screenKey(props.id), { tile: el, canvas });
    onCleanup(detach);
  });
  return (
    <li ref={el} class="tile tile-screen" aria-label={label()} data-screen-of={props.id}>
      <canvas ref={canvas} class="tile-video" aria-label={label()} />
      <div class="tile-bar">
        <span class="tile-name">{label()}</span>
      </div>
    </li>
  );
}

function TileGrid(props: { session: CallSession }) {
  let el!: HTMLUListElement;
  const layout = () => {
    const count = props.session.ids().length + props.session.screens().length;
    const { columns, rows } = gridFor(count, el.clientWidth, el.clientHeight, 16 / 9, GAP_PX);
    el.style.setProperty("--columns", String(columns));
    el.style.setProperty("--rows", String(rows));
  };
  onMount(() => {
    createEffect(layout);
    if (typeof ResizeObserver !== "undefined") {
      const observer = new ResizeObserver(() => layout());
      observer.observe(el);
      onCleanup(() => observer.disconnect());
    }
  });
  return (
    <ul ref={el} id="tiles" class="tiles" aria-label="Video tiles">
      <For each={props.session.ids()}>{(id) => <Tile session={props.session} id={id} />}</For>
      <For each={props.session.screens()}>
        {(id) => <ScreenTile session={props.session} id={id} />}
      </For>
    </ul>
  );
}

function ParticipantList(props: { participants: Participant[] }) {
  return (
    <section class="side-panel" aria-labelledby="participants-heading">
      <h2 id="participants-heading">
        Participants (<span id="participant-count">{props.participants.length}</span>)
      </h2>
      <ul id="participants" class="participants" aria-labelledby="participants-heading">
        <For each={props.participants}>
          {(p) => (
            <li data-participant-id={p.id} data-local={p.local ? "true" : undefined}>
              <span class="participant-name">{p.local ? "You" : p.username}</span>
              <Show when={p.local}>
                <span class="muted"> ({p.username})</span>
              </Show>
              <Show when={p.audioMuted}>
                <span class="badge">muted</span>
              </Show>
              <Show when={p.videoMuted}>
                <span class="badge">camera off</span>
              </Show>
            </li>
          )}
        </For>
      </ul>
    </section>
  );
}

function StatsPanel(props: { session: CallSession; open: boolean }) {
  const remotes = () => props.session.participants().filter((p) => !p.local);
  return (
    <section
      id="stats-panel"
      class="side-panel"
      hidden={!props.open}
      aria-labelledby="stats-heading"
    >
      <h2 id="stats-heading">Statistics</h2>
      <div class="stats-tables">
        <Show when={props.open}>
          <For each={remotes()} fallback={<p class="empty">Nobody else is in the call yet.</p>}>
            {(p) => {
              const stats = () => props.session.statsOf(p.id);
              return (
                <table class="stats-table" data-participant-id={p.id}>
                  <caption>{p.username}</caption>
                  <tbody>
                    <Show
                      when={stats()}
                      fallback={
                        <tr>
                          <td colSpan={2}>Waiting for statistics…</td>
                        </tr>
                      }
                    >
                      {(s) => (
                        <For each={formatStats(s())}>
                          {([label, value]) => (
                            <tr>
                              <th scope="row">{label}</th>
                              <td>{value}</td>
                            </tr>
                          )}
                        </For>
                      )}
                    </Show>
                  </tbody>
                </table>
              );
            }}
          </For>
        </Show>
      </div>
    </section>
  );
}

function DevicesPanel(props: { session: CallSession; open: boolean; fail(err: unknown): void }) {
  const [devices, setDevices] = createSignal<Devices | null>(null);
  const [state, setState] = createStore(
    stateFromChoices(props.session.settings.video, props.session.settings.audio, null, {
      cameras: [],
      microphones: [],
      speakers: [],
      notes: [],
    }),
  );
  let loading = false;
  createEffect(() => {
    if (!props.open || devices() || loading) return;
    loading = true;
    api.listDevices().then(
      (d) => {
        const s = props.session.settings;
        setState(stateFromChoices(s.video, s.audio, s.speaker, d));
        setDevices(d);
      },
      (err: unknown) => {
        loading = false;
        props.fail(err);
      },
    );
  });
  const apply = async (what: DeviceChange) => {
    const { session } = props;
    try {
      if (what === "video") {
        const v = videoChoice(state);
        await api.switchVideo(v);
        session.setSettings("video", v);
      } else if (what === "audio") {
        const a = audioChoice(state);
        await api.switchAudio(a);
        session.setSettings("audio", a);
      } else {
        await api.switchSpeaker(state.speakerId);
        session.setSettings("speaker", state.speakerId);
      }
    } catch (err) {
      props.fail(err);
    }
  };
  return (
    <section
      id="devices-panel"
      class="side-panel"
      hidden={!props.open}
      aria-labelledby="devices-heading"
    >
      <h2 id="devices-heading">Devices</h2>
      <Show
        when={devices()}
        fallback={
          <p class="muted" aria-busy="true">
            Looking for devices…
          </p>
        }
      >
        {(d) => (
          <>
            <DevicePicker
              devices={d()}
              state={state}
              setState={setState}
              prefix="devices-"
              onChange={(w) => void apply(w)}
            />
            <Show when={d().notes.length > 0}>
              <ul class="hints">
                <For each={d().notes}>{(n) => <li>{n}</li>}</For>
              </ul>
            </Show>
          </>
        )}
      </Show>
      <VoiceSwitches session={props.session} fail={props.fail} />
    </section>
  );
}

const VOICE_PARTS = [
  ["echoCancellation", "Echo cancellation"],
  ["noiseSuppression", "Noise suppression"],
  ["gainControl", "Automatic gain control"],
] as const;

/** The pre-join screen's voice processing switches, mid-call: each change applies from
 * the microphone's next frame and is remembered for the next call. A refused change
 * puts the switch back. */
function VoiceSwitches(props: { session: CallSession; fail(err: unknown): void }) {
  const voice = () => props.session.settings.voiceProcessing ?? VOICE_ON;
  const toggle = async (part: (typeof VOICE_PARTS)[number][0], input: HTMLInputElement) => {
    const next = { ...voice(), [part]: input.checked };
    try {
      await api.setVoiceProcessing(next);
      props.session.setSettings("voiceProcessing", next);
      saveVoiceProcessing(next);
    } catch (err) {
      input.checked = voice()[part];
      props.fail(err);
    }
  };
  return (
    <fieldset id="call-voice-processing" class="stack">
      <legend>Voice processing</legend>
      <For each={VOICE_PARTS}>
        {([part, label]) => (
          <label class="check">
            <input
              id={`call-voice-${part}`}
              type="checkbox"
              checked={voice()[part]}
              onChange={(e) => void toggle(part, e.currentTarget)}
            />
            {label}
          </label>
        )}
      </For>
    </fieldset>
  );
}

function statusText(s: CallSession): string | null {
  if (s.phase() === "joining") return "Joining the call…";
  if (s.phase() === "reconnecting") return `Reconnecting (attempt ${s.reconnectAttempt()})…`;
  return null;
}

export function CallControls(props: {
  session: CallSession;
  devicesOpen?: boolean;
  statsOpen?: boolean;
  onDevices?: () => void;
  onStats?: () => void;
  /** Opens the screen picker; without it there is no "Share screen" button. */
  onShareScreen?: () => void;
  extra?: JSX.Element;
}) {
  const [leaving, setLeaving] = createSignal(false);
  return (
    <div class="call-controls" role="toolbar" aria-label="Call controls">
      <button
        id="toggle-mute"
        type="button"
        class="toggle"
        aria-pressed={props.session.muted() ? "true" : "false"}
        aria-keyshortcuts="Control+D"
        title={`${props.session.muted() ? "Unmute" : "Mute"} microphone (${SHORTCUT_LABELS.mute})`}
        onClick={() => void props.session.toggleMute()}
      >
        Mute
      </button>
      <button
        id="toggle-camera"
        type="button"
        class="toggle"
        aria-pressed={props.session.cameraOff() ? "true" : "false"}
        aria-keyshortcuts="Control+E"
        title={`Turn camera ${props.session.cameraOff() ? "on" : "off"} (${SHORTCUT_LABELS.camera})`}
        onClick={() => void props.session.toggleCamera()}
      >
        Stop camera
      </button>
      <Show when={props.onDevices}>
        <button
          id="open-devices"
          type="button"
          aria-expanded={props.devicesOpen ? "true" : "false"}
          aria-controls="devices-panel"
          title="Choose camera, microphone and speaker"
          onClick={() => props.onDevices?.()}
        >
          Devices
        </button>
      </Show>
      <Show when={props.onStats}>
        <button
          id="toggle-stats"
          type="button"
          aria-expanded={props.statsOpen ? "true" : "false"}
          aria-controls="stats-panel"
          title="Show connection statistics"
          onClick={() => props.onStats?.()}
        >
          Statistics
        </button>
      </Show>
      <Show when={props.onShareScreen}>
        <Show
          when={props.session.sharingScreen()}
          fallback={
            <button
              id="share-screen"
              type="button"
              title="Share a screen or a window"
              onClick={() => props.onShareScreen?.()}
            >
              Share screen
            </button>
          }
        >
          <button
            id="stop-screen-share"
            type="button"
            class="toggle"
            aria-pressed="true"
            title="Stop sharing your screen"
            onClick={() => void props.session.stopScreenShare()}
          >
            Stop sharing
          </button>
        </Show>
      </Show>
      {props.extra}
      <button
        id="leave-call"
        type="button"
        class="danger"
        title="Leave the call"
        disabled={leaving()}
        onClick={async () => {
          setLeaving(true);
          await props.session.leave();
        }}
      >
        Leave
      </button>
    </div>
  );
}

export function CallView(props: { session: CallSession; fail(err: unknown): void }) {
  const [devicesOpen, setDevicesOpen] = createSignal(false);
  const [statsOpen, setStatsOpen] = createSignal(false);
  const [picking, setPicking] = createSignal(false);
  const status = () => statusText(props.session);
  return (
    <section id="call-view" class="screen call" data-local-key={LOCAL_KEY}>
      <header class="call-header">
        <h1 tabIndex={-1}>{props.session.room.title}</h1>
        <p id="call-status" class="call-status" role="status" hidden={status() === null}>
          {status() ?? ""}
        </p>
      </header>
      <div class="call-body">
        <TileGrid session={props.session} />
        <aside class="call-side">
          <ParticipantList participants={props.session.participants()} />
          <DevicesPanel session={props.session} open={devicesOpen()} fail={props.fail} />
          <StatsPanel session={props.session} open={statsOpen()} />
        </aside>
      </div>
      <Show when={picking()}>
        <ScreenPicker
          load={() => api.listScreens()}
          onPick={(id) => {
            setPicking(false);
            void props.session.shareScreen(id);
          }}
          onClose={() => setPicking(false)}
        />
      </Show>
      <CallControls
        session={props.session}
        devicesOpen={devicesOpen()}
        statsOpen={statsOpen()}
        onDevices={() => setDevicesOpen((v) => !v)}
        onStats={() => setStatsOpen((v) => !v)}
        onShareScreen={() => setPicking((v) => !v)}
      />
    </section>
  );
}
