// A running call, independent of what the window shows: it joins, follows CallEvents
// through the CallModel, pulls and draws frames for whichever tiles are on screen (the call
// view's grid, or the floating tile while the user is in a conversation), and keeps the
// local mute/camera state and the Ctrl+D / Ctrl+E shortcuts. Video, remote and the
// self-view alike, is decoded in the webview when it can (WebCodecs: Rust pushes the VP8
// frames, ours as encoded for the others, media/decoder.ts), else RGBA pictures are
// pulled (media/feed.ts). It ends with leave(),
// the "ended" event, or a failed join; onEnded is then called once.

import { type Accessor, createRoot, createSignal } from "solid-js";
import { createStore, type SetStoreFunction } from "solid-js/store";
import {
  api,
  type CallSettings,
  callEvents,
  openFrameFeed,
  requestKeyframe,
  subscribe,
  type VideoWatch,
  watchVideo,
} from "../api";
import { TileDecoder, vp8Supported } from "../media/decoder";
import { FrameRenderer, type FrameTarget, LOCAL_KEY, screenKey } from "../media/renderer";
import { notifyIfUnfocused } from "../platform";
import { toast } from "../toasts";
import { CallModel, type Participant } from "./model";
import type { Quality } from "./quality";
import { matchShortcut } from "./shortcuts";

export interface CallRoom {
  id: string;
  title: string;
}

export interface CallSession {
  readonly room: CallRoom;
  readonly settings: CallSettings;
  readonly setSettings: SetStoreFunction<CallSettings>;
  /** Everyone, the local participant first (reactive). */
  participants: Accessor<Participant[]>;
  /** Participant ids in order (reactive; tiles are keyed by these). */
  ids: Accessor<string[]>;
  participant(id: string): Participant | undefined;
  quality(id: string): Quality;
  statsOf: CallModel["statsOf"];
  phase: Accessor<CallModel["phase"]>;
  reconnectAttempt: Accessor<number>;
  muted: Accessor<boolean>;
  cameraOff: Accessor<boolean>;
  toggleMute(): Promise<void>;
  toggleCamera(): Promise<void>;
  /** Participant ids whose shared screen is on (reactive; tiles keyed screenKey(id)). */
  screens: Accessor<string[]>;
  /** What we share (a ScreenView id), or null (reactive). */
  sharingScreen: Accessor<string | null>;
  shareScreen(source: string): Promise<void>;
  stopScreenShare(): Promise<void>;
  /** A tile on screen for `key` (LOCAL_KEY or a participant id); returns its removal. */
  attach(key: string, target: FrameTarget): () => void;
  /** How large `key` is shown, in device pixels (for the frame size Rust sends). */
  displaySize(key: string): [number, number];
  leave(): Promise<void>;
  ended: Accessor<boolean>;
}

export interface CallOptions {
  room: CallRoom;
  settings: CallSettings;
  username: string;
  fail(err: unknown): void;
  /** The call is over; `message` says why when the user did not hang up themselves. */
  onEnded(message: string | null): void;
  /** How to get into the call (default: joinCall; answering a ring uses answerCall). */
  connect?: (roomId: string, settings: CallSettings) => Promise<unknown>;
}

export function startCall(opts: CallOptions): CallSession {
  return createRoot((dispose) => {
    const [settings, setSettings] = createStore<CallSettings>({ ...opts.settings });
    const model = new CallModel(opts.username, settings.muted, settings.cameraOff);
    const [version, setVersion] = createSignal(0);
    const [ended, setEnded] = createSignal(false);
    const bump = () => setVersion((v) => v + 1);
    const targets = new Map<string, FrameTarget[]>();
    const lookup = (key: string): FrameTarget | null => {
      // The local tile is keyed LOCAL_KEY in frames but by its participant id once joined.
      const list = targets.get(key) ?? (key === LOCAL_KEY ? targets.get(model.selfId) : undefined);
      return list?.[list.length - 1] ?? null;
    };
    const renderer = new FrameRenderer(lookup);
    const feed = openFrameFeed(renderer.push, renderer.displaySize);

    // Sources decoded here: null until WebCodecs' VP8 support is known.
    let webcodecs: boolean | null = null;
    const decoders = new Map<string, { decoder: TileDecoder; watch: VideoWatch }>();
    /** Sources whose decoder failed: drawn from RGBA for the rest of the call. */
    const rgbaOnly = new Set<string>();
    /** Sources no tile shows any more, stopped after a grace (a tile moving elsewhere). */
    const stopping = new Map<string, ReturnType<typeof setTimeout>>();
    const STOP_GRACE_MS = 1000;

    const stopDecoder = (key: string) => {
      const d = decoders.get(key);
      if (!d) return;
      decoders.delete(key);
      d.decoder.close();
      d.watch.close();
    };
    const fallBack = (key: string, reason: string) => {
      if (ended() || rgbaOnly.has(key)) return;
      console.warn(`video ${key}: drawn from RGBA frames (${reason})`);
      const tile = lookup(key)?.tile;
      if (tile) {
        tile.dataset.decoder = "rgba";
        tile.dataset.decoderFallback = reason;
      }
      rgbaOnly.add(key);
      stopDecoder(key);
      syncSources();
    };
    const startDecoder = (key: string) => {
      const decoder = new TileDecoder(() => lookup(key), {
        requestKeyframe: () => {
          requestKeyframe(key).catch(() => {});
        },
        fallback: (reason) => fallBack(key, reason),
      });
      const watch = watchVideo(key, decoder.push);
      decoders.set(key, { decoder, watch });
      // Settled for a watch since stopped (its tile went away): nothing to do.
      const current = () => decoders.get(key)?.watch === watch;
      watch.ready.then(
        (via) => {
          const tile = current() ? lookup(key)?.tile : undefined;
          if (tile) tile.dataset.videoVia = via;
        },
        (err: unknown) => {
          if (current()) fallBack(key, `not taken: ${describe(err)}`);
        },
      );
    };

    const syncSources = () => {
      if (ended()) return;
      const wanted: string[] = [];
      for (const p of model.participants()) {
        const key = p.local ? LOCAL_KEY : p.id;
        if (targets.has(p.id) || targets.has(key)) wanted.push(key);
      }
      for (const id of model.screens()) {
        if (targets.has(screenKey(id))) wanted.push(screenKey(id));
      }
      const pulled: string[] = [];
      const decoded = new Set<string>();
      for (const key of wanted) {
        if (webcodecs === false || rgbaOnly.has(key)) pulled.push(key);
        else if (webcodecs === true) decoded.add(key);
      }
      for (const key of decoded) {
        const timer = stopping.get(key);
        if (timer !== undefined) {
          clearTimeout(timer);
          stopping.delete(key);
        }
        if (!decoders.has(key)) startDecoder(key);
      }
      for (const key of decoders.keys()) {
        if (decoded.has(key) || stopping.has(key)) continue;
        if (rgbaOnly.has(key)) {
          stopDecoder(key);
          continue;
        }
        stopping.set(
          key,
          setTimeout(() => {
            stopping.delete(key);
            stopDecoder(key);
          }, STOP_GRACE_MS),
        );
      }
      feed.setSources(pulled);
    };
    void vp8Supported().then((ok) => {
      webcodecs = ok;
      syncSources();
    });

    const finish = (message: string | null) => {
      if (ended()) return;
      setEnded(true);
      unlisten();
      window.removeEventListener("keydown", onKey);
      feed.close();
      renderer.destroy();
      for (const timer of stopping.values()) clearTimeout(timer);
      stopping.clear();
      for (const key of [...decoders.keys()]) stopDecoder(key);
      opts.onEnded(message);
      if (message) void notifyIfUnfocused("Call ended", message);
      dispose();
    };

    const setLocal = async (which: "audio" | "video") => {
      if (ended()) return;
      const local = model.local;
      const next = which === "audio" ? !local.audioMuted : !local.videoMuted;
      const set = (v: boolean) => {
        if (which === "audio") local.audioMuted = v;
        else local.videoMuted = v;
        bump();
      };
      set(next);
      try {
        if (which === "audio") await api.setMuted(next);
        else await api.setCameraOff(next);
      } catch (err) {
        set(!next);
        opts.fail(err);
      }
    };

    const onKey = (e: KeyboardEvent) => {
      const action = matchShortcut(e);
      if (!action) return;
      e.preventDefault();
      void setLocal(action === "mute" ? "audio" : "video");
    };
    window.addEventListener("keydown", onKey);

    const unlisten = subscribe(callEvents, (ev) => {
      if (ended()) return;
      const { notices, ended: reason } = model.apply(ev);
      for (const n of notices) {
        toast(n.text, n.kind);
        if (n.notify) void notifyIfUnfocused(opts.room.title, n.text);
      }
      if (reason !== null) {
        finish(`Call ended: ${reason}`);
        return;
      }
      bump();
      syncSources();
    });

    const participants = () => {
      version();
      return model.participants().map((p) => ({ ...p }));
    };
    const session: CallSession = {
      room: opts.room,
      settings,
      setSettings,
      participants,
      ids: () => {
        version();
        return model.participants().map((p) => p.id);
      },
      participant: (id) => {
        version();
        return model.participants().find((p) => p.id === id);
      },
      quality: (id) => {
        version();
        return model.qualityOf(id);
      },
      statsOf: (id) => {
        version();
        return model.statsOf(id);
      },
      phase: () => {
        version();
        return model.phase;
      },
      reconnectAttempt: () => {
        version();
        return model.reconnectAttempt;
      },
      muted: () => {
        version();
        return model.local.audioMuted;
      },
      cameraOff: () => {
        version();
        return model.local.videoMuted;
      },
      toggleMute: () => setLocal("audio"),
      toggleCamera: () => setLocal("video"),
      screens: () => {
        version();
        return model.screens();
      },
      sharingScreen: () => {
        version();
        return model.localScreen;
      },
      // The "localScreen" event says whether it started (or why not).
      async shareScreen(source) {
        if (ended()) return;
        try {
          await api.shareScreen(source);
        } catch (err) {
          opts.fail(err);
        }
      },
      async stopScreenShare() {
        if (ended()) return;
        try {
          await api.stopScreenShare();
        } catch (err) {
          opts.fail(err);
        }
      },
      attach(key, target) {
        const list = targets.get(key) ?? [];
        list.push(target);
        targets.set(key, list);
        syncSources();
        return () => {
          const l = targets.get(key)?.filter((t) => t !== target) ?? [];
          if (l.length > 0) targets.set(key, l);
          else targets.delete(key);
          syncSources();
        };
      },
      displaySize: (key) => renderer.displaySize(key),
      async leave() {
        if (ended()) return;
        try {
          await api.leaveCall();
        } catch (err) {
          console.warn("leaveCall failed", err);
        }
        finish(null);
      },
      ended,
    };

    const connect = opts.connect
      ? (() => {
          feed.restart();
          return opts.connect?.(opts.room.id, { ...opts.settings });
        })()
      : api.joinCall(opts.room.id, { ...opts.settings }, feed);
    Promise.resolve(connect).catch((err: unknown) => {
      if (ended()) return;
      finish(null);
      opts.fail(err);
    });
    return session;
  });
}

function describe(err: unknown): string {
  if (err && typeof err === "object" && "message" in err) return String(err.message);
  return String(err);
}
