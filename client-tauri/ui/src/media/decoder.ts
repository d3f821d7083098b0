// Video decoded in the webview. Instead of pulling RGBA pictures (1.2 MB each at
// 640x480), a tile can take the track's VP8 frames (a few KB each) pushed by Rust over
// the app's video socket or through a Tauri Channel (api.ts's watchVideo), decode them with WebCodecs' VideoDecoder and draw the
// VideoFrame on its canvas: a remote tile its participant's track, the self-view in a call
// our own frames as encoded for the others. A message is a 48-byte little-endian header,
// then the frame:
//
//   0      u8   source (0 = our camera, 1 = remote camera, 2 = remote shared screen)
//   1      u8   flags: bit 0 keyframe
//   2..4        reserved
//   4..8   u32  width  (from the last keyframe)
//   8..12  u32  height
//   12..16      reserved
//   16..24 u64  sequence number on this channel (consecutive; a jump: frames dropped)
//   24..40      participant id, 16 raw UUID bytes (zero for ours)
//   40..48 u64  when Rust reassembled it (ours: captured), microseconds since the epoch
//
// A decoder starts at a keyframe and asks Rust for one (a PLI to the sender) when it
// starts, when frames went missing and after a decode error; if it keeps failing the tile
// falls back to the RGBA path (see session.ts).

import { formatUuid, MAX_DIMENSION } from "./frames";
import { readMarkerCounter } from "./marker";
import { type FrameTarget, renderStats } from "./renderer";

export const ENCODED_HEADER_BYTES = 48;

export interface EncodedHeader {
  source: "local" | "remote" | "screen";
  keyframe: boolean;
  width: number;
  height: number;
  sequence: number;
  participantId: string;
  timestampUs: number;
}

/** Reads an encoded frame's header; null for a message that is not one. */
export function parseEncodedHeader(buf: ArrayBuffer): EncodedHeader | null {
  if (buf.byteLength <= ENCODED_HEADER_BYTES) return null;
  const v = new DataView(buf, 0, ENCODED_HEADER_BYTES);
  const src = v.getUint8(0);
  if (src > 2) return null;
  const width = v.getUint32(4, true);
  const height = v.getUint32(8, true);
  if (width > MAX_DIMENSION || height > MAX_DIMENSION) return null;
  return {
    source: src === 0 ? "local" : src === 1 ? "remote" : "screen",
    keyframe: (v.getUint8(1) & 1) === 1,
    width,
    height,
    sequence: v.getUint32(20, true) * 2 ** 32 + v.getUint32(16, true),
    participantId: formatUuid(new Uint8Array(buf, 24, 16)),
    timestampUs: v.getUint32(44, true) * 2 ** 32 + v.getUint32(40, true),
  };
}

let supported: Promise<boolean> | null = null;

/** Whether this webview decodes VP8 with WebCodecs (asked once). */
export function vp8Supported(): Promise<boolean> {
  supported ??= (async () => {
    if (typeof VideoDecoder === "undefined" || typeof EncodedVideoChunk === "undefined") {
      return false;
    }
    try {
      return (await VideoDecoder.isConfigSupported({ codec: "vp8" })).supported === true;
    } catch {
      return false;
    }
  })();
  return supported;
}

/** Forget the answer (tests change the environment between cases). */
export function resetVp8Support(): void {
  supported = null;
}

export interface TileDecoderHooks {
  /** Ask the sender for a keyframe (rate-limited here). */
  requestKeyframe(): void;
  /** This tile cannot decode here: draw it from RGBA frames instead. */
  fallback(reason: string): void;
}

/** Decode errors within ERROR_WINDOW_MS after which the tile gives up on WebCodecs. */
const MAX_ERRORS = 3;
const ERROR_WINDOW_MS = 10_000;
/** Least time between two keyframe requests of one tile. */
const KEYFRAME_REQUEST_MS = 500;
/** Without a readable test-pattern marker, look for one only every this many frames. */
const MARKER_RETRY_FRAMES = 30;
/**
 * With one, read it at most this often: the counter only shows that frames advance, and
 * copying the band out of every frame and decoding it in script is a share of the
 * webview's main thread in a test call.
 */
const MARKER_READ_MS = 250;

/** One tile's decoder: encoded messages in, VideoFrames drawn on its canvas. */
export class TileDecoder {
  private decoder: VideoDecoder | null = null;
  private needKeyframe = true;
  private lastSequence: number | null = null;
  private lastRequest = Number.NEGATIVE_INFINITY;
  private errors: number[] = [];
  private pending: VideoFrame | null = null;
  private pendingBytes = 0;
  private readonly bytesByTimestamp = new Map<number, number>();
  private frame: number | null = null;
  private closed = false;
  private context: CanvasRenderingContext2D | null | undefined;
  private contextCanvas: HTMLCanvasElement | null = null;
  private drawn = 0;
  private markerSeen = false;
  private sinceMarkerTry = 0;
  private lastMarkerRead = Number.NEGATIVE_INFINITY;
  /** Decoded frames replaced by a newer one before they could be drawn. */
  dropped = 0;

  constructor(
    private readonly lookup: () => FrameTarget | null,
    private readonly hooks: TileDecoderHooks,
    private readonly schedule: (cb: () => void) => number = (cb) => requestAnimationFrame(cb),
    private readonly cancel: (id: number) => void = (id) => cancelAnimationFrame(id),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.askForKeyframe();
  }

  /** One channel message. */
  readonly push = (buf: ArrayBuffer): void => {
    if (this.closed) return;
    const h = parseEncodedHeader(buf);
    if (!h) return;
    if (this.lastSequence !== null && h.sequence !== this.lastSequence + 1) {
      this.needKeyframe = true; // frames went missing on the way
    }
    this.lastSequence = h.sequence;
    if (this.needKeyframe && !h.keyframe) {
      this.askForKeyframe();
      return;
    }
    if (h.keyframe && !this.configure(h)) return;
    const decoder = this.decoder;
    if (!decoder) return;
    this.needKeyframe = false;
    try {
      this.bytesByTimestamp.set(h.timestampUs, buf.byteLength);
      decoder.decode(
        new EncodedVideoChunk({
          type: h.keyframe ? "key" : "delta",
          timestamp: h.timestampUs,
          data: new Uint8Array(buf, ENCODED_HEADER_BYTES),
        }),
      );
    } catch (err) {
      this.failed(err);
    }
  };

  close(): void {
    this.closed = true;
    if (this.frame !== null) this.cancel(this.frame);
    this.frame = null;
    this.pending?.close();
    this.pending = null;
    this.closeDecoder();
  }

  /** A (new) decoder for this keyframe's stream; false when none can be made. */
  private configure(h: EncodedHeader): boolean {
    if (this.decoder && this.decoder.state === "configured") return true;
    this.closeDecoder();
    try {
      const decoder = new VideoDecoder({
        output: (frame) => this.decoded(frame),
        error: (err) => this.failed(err),
      });
      const config: VideoDecoderConfig = { codec: "vp8", optimizeForLatency: true };
      if (h.width > 0 && h.height > 0) {
        config.codedWidth = h.width;
        config.codedHeight = h.height;
      }
      decoder.configure(config);
      this.decoder = decoder;
      return true;
    } catch (err) {
      this.hooks.fallback(`cannot configure a VP8 decoder: ${String(err)}`);
      this.close();
      return false;
    }
  }

  private closeDecoder(): void {
    const d = this.decoder;
    this.decoder = null;
    if (d && d.state !== "closed") {
      try {
        d.close();
      } catch {
        // already closed by an error
      }
    }
    this.bytesByTimestamp.clear();
  }

  private failed(err: unknown): void {
    if (this.closed) return;
    const now = this.now();
    this.errors = this.errors.filter((t) => now - t < ERROR_WINDOW_MS);
    this.errors.push(now);
    this.closeDecoder();
    if (this.errors.length >= MAX_ERRORS) {
      this.hooks.fallback(`VP8 decoding failed ${this.errors.length} times: ${String(err)}`);
      this.close();
      return;
    }
    this.needKeyframe = true;
    this.askForKeyframe(true);
  }

  private askForKeyframe(force = false): void {
    const now = this.now();
    if (!force && now - this.lastRequest < KEYFRAME_REQUEST_MS) return;
    this.lastRequest = now;
    this.hooks.requestKeyframe();
  }

  private decoded(frame: VideoFrame): void {
    const bytes = this.bytesByTimestamp.get(frame.timestamp) ?? 0;
    this.bytesByTimestamp.delete(frame.timestamp);
    if (this.closed) {
      frame.close();
      return;
    }
    if (this.pending) {
      this.pending.close();
      this.dropped++;
    }
    this.pending = frame;
    this.pendingBytes = bytes;
    if (this.frame === null) this.frame = this.schedule(() => this.flush());
  }

  /** Draws the newest decoded frame (on the animation frame). */
  flush(): void {
    this.frame = null;
    const frame = this.pending;
    this.pending = null;
    if (!frame) return;
    const target = this.lookup();
    if (!target) {
      frame.close();
      return;
    }
    const drawn = this.draw(target, frame);
    if (drawn) {
      this.drawn++;
      target.tile.dataset.frames = String(this.drawn);
      target.tile.dataset.decoder = "webcodecs";
      const stats = renderStats();
      stats.frames++;
      stats.bytes += this.pendingBytes;
    }
    if (drawn && this.shouldReadMarker()) {
      void readMarkerCounter(frame)
        .then((counter) => {
          this.markerSeen = counter !== null;
          if (counter !== null) target.tile.dataset.frameCounter = String(counter);
        })
        .finally(() => frame.close());
    } else {
      frame.close();
    }
  }

  private shouldReadMarker(): boolean {
    const now = this.now();
    let read: boolean;
    if (this.markerSeen) {
      read = now - this.lastMarkerRead >= MARKER_READ_MS;
    } else {
      this.sinceMarkerTry = (this.sinceMarkerTry + 1) % MARKER_RETRY_FRAMES;
      read = this.sinceMarkerTry === 1;
    }
    if (read) this.lastMarkerRead = now;
    return read;
  }

  private draw({ canvas }: FrameTarget, frame: VideoFrame): boolean {
    // No larger than the tile shows it (device pixels): drawImage scales once, here.
    const box = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const fit = fitInside(
      frame.displayWidth,
      frame.displayHeight,
      Math.round(box.width * dpr),
      Math.round(box.height * dpr),
    );
    if (canvas.width !== fit[0]) canvas.width = fit[0];
    if (canvas.height !== fit[1]) canvas.height = fit[1];
    if (this.contextCanvas !== canvas) {
      this.context = canvas.getContext("2d", { alpha: false });
      this.contextCanvas = canvas;
    }
    const ctx = this.context;
    if (!ctx) return false;
    ctx.drawImage(frame, 0, 0, fit[0], fit[1]);
    return true;
  }
}

/** `width` x `height` scaled down (never up) to fit `maxW` x `maxH` (0: no limit). */
export function fitInside(
  width: number,
  height: number,
  maxW: number,
  maxH: number,
): [number, number] {
  const w = maxW > 0 ? maxW : width;
  const h = maxH > 0 ? maxH : height;
  if (width <= w && height <= h) return [width, height];
  const scale = Math.min(w / width, h / height);
  return [Math.max(2, Math.round(width * scale)), Math.max(2, Math.round(height * scale))];
}
