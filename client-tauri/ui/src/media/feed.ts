// Where frames come from. Two transports, one consumer (the renderer's push(buf)):
// - push: Rust sends frames through a Tauri Channel<ArrayBuffer> handed to startPreview /
//   joinCall (a fresh channel per call, since a channel numbers its messages from 0);
// - pull: the UI asks `nextFrame(source, after)` per source ("local" or a participant id)
//   in a loop, one request in flight per source, the next one after the previous frame had
//   an animation frame to be drawn. An empty answer means "nothing new within a second".
// Both deliver the same 40-byte-header messages (see frames.ts).

import { parseFrameHeader } from "./frames";

/** Asks for `source`'s first frame newer than `after`; null or empty when none came. */
export type PullFn = (source: string, after: number) => Promise<ArrayBuffer | null>;

const RETRY_MS = 500;
/** An empty answer faster than this is not a real wait: pause before asking again. */
const MIN_EMPTY_MS = 100;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const nextAnimationFrame = () => new Promise<void>((r) => requestAnimationFrame(() => r()));

export class FrameFeed {
  private readonly sources = new Set<string>();
  private readonly cursors = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly onFrame: (buf: ArrayBuffer) => void,
    private readonly pull: PullFn | null,
    private readonly makeChannel: (onFrame: (buf: ArrayBuffer) => void) => unknown,
    private readonly ready: () => Promise<void> = nextAnimationFrame,
  ) {}

  get mode(): "push" | "pull" {
    return this.pull ? "pull" : "push";
  }

  /**
   * Extra arguments for startPreview / joinCall: a fresh channel in push mode, none in pull
   * mode. Rust restarts its sequence numbers with a new preview or call, so the pull
   * cursors start over too.
   */
  startArgs(): unknown[] {
    if (!this.pull) return [this.makeChannel(this.onFrame)];
    this.cursors.clear();
    return [];
  }

  /** Sources to pull ("local" and remote participant ids); no-op in push mode. */
  setSources(ids: Iterable<string>): void {
    if (!this.pull || this.closed) return;
    const wanted = new Set(ids);
    for (const id of this.sources) {
      if (!wanted.has(id)) {
        this.sources.delete(id);
        this.cursors.delete(id);
      }
    }
    for (const id of wanted) {
      if (!this.sources.has(id)) {
        this.sources.add(id);
        void this.loop(id, this.pull);
      }
    }
  }

  close(): void {
    this.closed = true;
    this.sources.clear();
  }

  private live(source: string): boolean {
    return !this.closed && this.sources.has(source);
  }

  private async loop(source: string, pull: PullFn): Promise<void> {
    while (this.live(source)) {
      const started = Date.now();
      let buf: ArrayBuffer | null;
      try {
        buf = await pull(source, this.cursors.get(source) ?? 0);
      } catch {
        await sleep(RETRY_MS);
        continue;
      }
      if (!this.live(source)) break;
      const header = buf && buf.byteLength > 0 ? parseFrameHeader(buf) : null;
      if (buf && header) {
        this.cursors.set(source, header.sequence);
        this.onFrame(buf);
        await this.ready();
      } else {
        // Nothing new: ask from the start next time, in case Rust restarted its numbering
        // (a new pipeline); at worst the newest frame is drawn once more.
        this.cursors.delete(source);
        if (Date.now() - started < MIN_EMPTY_MS) await sleep(MIN_EMPTY_MS);
      }
    }
  }
}
