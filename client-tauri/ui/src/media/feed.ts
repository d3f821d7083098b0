// Where frames come from: the UI pulls them. Per source ("local" or a participant id) it
// asks `nextFrame(source, after)` in a loop, one request in flight per source, the next one
// after the previous frame had an animation frame to be drawn. That is the flow control: a
// busy webview asks less often and Rust never queues frames for it. An empty answer means
// "nothing new within a second". Frames are 40-byte-header messages (see frames.ts).

import { parseFrameHeader } from "./frames";

/**
 * Asks for `source`'s first frame newer than `after`, at most `size` device pixels
 * ([0, 0]: full size); null or empty when none came.
 */
export type PullFn = (
  source: string,
  after: number,
  size: [number, number],
) => Promise<ArrayBuffer | null>;

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
    private readonly pull: PullFn,
    private readonly ready: () => Promise<void> = nextAnimationFrame,
    /** How large `source` is shown, in device pixels (frames are sent no larger). */
    private readonly sizeOf: (source: string) => [number, number] = () => [0, 0],
  ) {}

  /** Rust numbers frames afresh with each preview or call: start the cursors over. */
  restart(): void {
    this.cursors.clear();
  }

  /** Sources to pull ("local" and remote participant ids). */
  setSources(ids: Iterable<string>): void {
    if (this.closed) return;
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
        buf = await pull(source, this.cursors.get(source) ?? 0, this.sizeOf(source));
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
