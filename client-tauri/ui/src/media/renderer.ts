// Draws video frames onto per-tile canvases. Frames are coalesced with
// requestAnimationFrame: between two animation frames only the newest frame of each tile is
// kept (older ones are dropped undrawn), then each is drawn once with putImageData straight
// from the message's ArrayBuffer (no copy).

import { LOCAL_SOURCE } from "../api";
import { type FrameHeader, HEADER_BYTES, parseFrameHeader } from "./frames";

/** Key of the local preview tile; remote tiles are keyed by participant id. */
export const LOCAL_KEY = LOCAL_SOURCE;

/** Key of a participant's shared-screen tile (and its frame source in Rust). */
export const screenKey = (participantId: string): string => `screen:${participantId}`;

export interface FrameTarget {
  tile: HTMLElement;
  canvas: HTMLCanvasElement;
}

export interface RenderStats {
  frames: number;
  bytes: number;
}

declare global {
  interface Window {
    __confabRenderStats?: RenderStats;
  }
}

export function renderStats(): RenderStats {
  window.__confabRenderStats ??= { frames: 0, bytes: 0 };
  return window.__confabRenderStats;
}

interface Pending {
  buf: ArrayBuffer;
  header: FrameHeader;
}

export class FrameRenderer {
  private readonly pending = new Map<string, Pending>();
  private readonly contexts = new WeakMap<HTMLCanvasElement, CanvasRenderingContext2D | null>();
  private readonly counts = new WeakMap<HTMLElement, number>();
  private frame: number | null = null;
  private stopped = false;
  /** Frames replaced by a newer one before they could be drawn. */
  dropped = 0;

  constructor(
    private readonly lookup: (key: string) => FrameTarget | null,
    private readonly schedule: (cb: () => void) => number = (cb) => requestAnimationFrame(cb),
    private readonly cancel: (id: number) => void = (id) => cancelAnimationFrame(id),
  ) {}

  /**
   * How many device pixels `key`'s canvas covers on screen, so Rust can send frames no
   * larger than that; [0, 0] (no limit) while it is not laid out.
   */
  readonly displaySize = (key: string): [number, number] => {
    const target = this.lookup(key);
    if (!target) return [0, 0];
    const box = target.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    return [Math.round(box.width * dpr), Math.round(box.height * dpr)];
  };

  /** Queues a frame message for the next animation frame. */
  readonly push = (buf: ArrayBuffer): void => {
    if (this.stopped) return;
    const header = parseFrameHeader(buf);
    if (!header) return;
    const key =
      header.source === "screen" && header.participantId
        ? screenKey(header.participantId)
        : (header.participantId ?? LOCAL_KEY);
    if (this.pending.has(key)) this.dropped++;
    this.pending.set(key, { buf, header });
    if (this.frame === null) this.frame = this.schedule(() => this.flush());
  };

  /** Draws the newest pending frame of each tile (called on the animation frame). */
  flush(): void {
    this.frame = null;
    const stats = renderStats();
    for (const [key, { buf, header }] of this.pending) {
      const target = this.lookup(key);
      if (target && this.draw(target.canvas, buf, header)) {
        const n = (this.counts.get(target.tile) ?? 0) + 1;
        this.counts.set(target.tile, n);
        target.tile.dataset.frames = String(n);
        if (header.counter !== null) target.tile.dataset.frameCounter = String(header.counter);
        stats.frames++;
        stats.bytes += buf.byteLength;
      }
    }
    this.pending.clear();
  }

  destroy(): void {
    this.stopped = true;
    if (this.frame !== null) this.cancel(this.frame);
    this.frame = null;
    this.pending.clear();
  }

  private draw(canvas: HTMLCanvasElement, buf: ArrayBuffer, h: FrameHeader): boolean {
    if (canvas.width !== h.width) canvas.width = h.width;
    if (canvas.height !== h.height) canvas.height = h.height;
    let ctx = this.contexts.get(canvas);
    if (ctx === undefined) {
      ctx = canvas.getContext("2d", { alpha: false });
      this.contexts.set(canvas, ctx);
    }
    if (!ctx) return false;
    const pixels = new Uint8ClampedArray(buf, HEADER_BYTES, h.width * h.height * 4);
    ctx.putImageData(new ImageData(pixels, h.width, h.height), 0, 0);
    return true;
  }
}
