// Call state, driven by CallEvents from Rust: who is in the call, their media state and
// stats, and the phase. apply() returns what the user should be told (toasts), so the view
// stays a thin projection of this state.

import type { CallEvent, ParticipantView, PeerState, StatsView } from "../api";
import { LOCAL_KEY } from "../media/renderer";
import { type Quality, qualityFromStats } from "./quality";

export interface Participant {
  id: string;
  username: string;
  local: boolean;
  audioMuted: boolean;
  videoMuted: boolean;
  peerState: PeerState | null;
}

export type Phase = "joining" | "joined" | "reconnecting" | "ended";

export interface Notice {
  kind: "success" | "info" | "error";
  text: string;
  /** Also worth an OS notification when the window is in the background. */
  notify: boolean;
}

export interface Outcome {
  notices: Notice[];
  /** Set when the call is over (the "ended" event): the reason. */
  ended: string | null;
}

export class CallModel {
  phase: Phase = "joining";
  reconnectAttempt = 0;
  /** The local participant's id: LOCAL_KEY until the "joined" event gives the real one. */
  selfId: string = LOCAL_KEY;
  readonly local: Participant;
  private readonly remotes = new Map<string, Participant>();
  private readonly stats = new Map<string, StatsView>();
  private readonly previousStats = new Map<string, StatsView>();
  /** Remote participants sharing a screen, in the order they started. */
  private readonly sharing = new Set<string>();
  /** What we share (a ScreenView id), or null. */
  localScreen: string | null = null;

  constructor(username: string, muted: boolean, cameraOff: boolean) {
    this.local = {
      id: LOCAL_KEY,
      username,
      local: true,
      audioMuted: muted,
      videoMuted: cameraOff,
      peerState: null,
    };
  }

  /** Everyone, the local participant first, then the others in joining order. */
  participants(): Participant[] {
    return [this.local, ...this.remotes.values()];
  }

  /** Participant ids whose shared screen is on (each gets a tile of its own). */
  screens(): string[] {
    return [...this.sharing].filter((id) => this.remotes.has(id));
  }

  remote(id: string): Participant | undefined {
    return this.remotes.get(id);
  }

  statsOf(id: string): StatsView | undefined {
    return this.stats.get(id);
  }

  qualityOf(id: string): Quality {
    const p = this.remotes.get(id);
    return qualityFromStats(this.stats.get(id), this.previousStats.get(id), p?.videoMuted ?? false);
  }

  apply(ev: CallEvent): Outcome {
    const notices: Notice[] = [];
    let ended: string | null = null;
    switch (ev.type) {
      case "joining":
        this.phase = "joining";
        break;
      case "joined":
        this.phase = "joined";
        this.reconnectAttempt = 0;
        this.selfId = ev.participantId;
        this.local.id = ev.participantId;
        this.remotes.clear();
        // The new peers say again whether they share (their first description does).
        this.sharing.clear();
        for (const p of ev.participants) {
          if (p.participantId === ev.participantId) {
            this.local.audioMuted = p.audioMuted;
            this.local.videoMuted = p.videoMuted;
          } else {
            this.upsert(p);
          }
        }
        for (const id of [...this.stats.keys()]) {
          if (!this.remotes.has(id)) this.dropStats(id);
        }
        break;
      case "participantJoined": {
        const p = ev.participant;
        if (p.participantId === this.selfId) break;
        const isNew = !this.remotes.has(p.participantId);
        this.upsert(p);
        if (isNew) notices.push({ kind: "info", text: `${p.username} joined`, notify: true });
        break;
      }
      case "participantLeft": {
        const p = this.remotes.get(ev.participantId);
        if (!p) break;
        this.remotes.delete(ev.participantId);
        this.sharing.delete(ev.participantId);
        this.dropStats(ev.participantId);
        notices.push({ kind: "info", text: `${p.username} left`, notify: true });
        break;
      }
      case "mediaState": {
        const p =
          ev.participantId === this.selfId ? this.local : this.remotes.get(ev.participantId);
        if (p) {
          p.audioMuted = ev.audioMuted;
          p.videoMuted = ev.videoMuted;
        }
        break;
      }
      case "peerState": {
        const p = this.remotes.get(ev.participantId);
        if (p) p.peerState = ev.state;
        break;
      }
      case "stats": {
        const id = ev.stats.participantId;
        const prev = this.stats.get(id);
        if (prev) this.previousStats.set(id, prev);
        this.stats.set(id, ev.stats);
        break;
      }
      case "screenShare": {
        const p = this.remotes.get(ev.participantId);
        if (ev.sharing) this.sharing.add(ev.participantId);
        else this.sharing.delete(ev.participantId);
        if (p) {
          const what = ev.sharing ? "is sharing their screen" : "stopped sharing";
          notices.push({ kind: "info", text: `${p.username} ${what}`, notify: false });
        }
        break;
      }
      case "localScreen":
        this.localScreen = ev.source ?? null;
        if (ev.error) {
          notices.push({ kind: "error", text: `Cannot share: ${ev.error}`, notify: false });
        }
        break;
      case "reconnecting":
        if (this.phase !== "reconnecting") {
          notices.push({ kind: "info", text: "Connection lost, reconnecting…", notify: false });
        }
        this.phase = "reconnecting";
        this.reconnectAttempt = ev.attempt;
        break;
      case "error":
        notices.push({ kind: "error", text: ev.message, notify: true });
        break;
      case "ended":
        this.phase = "ended";
        ended = ev.reason;
        break;
    }
    return { notices, ended };
  }

  private upsert(p: ParticipantView): void {
    const old = this.remotes.get(p.participantId);
    this.remotes.set(p.participantId, {
      id: p.participantId,
      username: p.username,
      local: false,
      audioMuted: p.audioMuted,
      videoMuted: p.videoMuted,
      peerState: old?.peerState ?? null,
    });
  }

  private dropStats(id: string): void {
    this.stats.delete(id);
    this.previousStats.delete(id);
  }
}
