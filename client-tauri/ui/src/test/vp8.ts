// Test helpers for the webview-decoded video path: encoded-frame messages built the way
// Rust's frames.rs builds them, a stand-in for WebCodecs' VideoDecoder (jsdom has none:
// it is the browser's, not ours), and the Tauri IPC's callback registry, which is the
// boundary a Channel's messages cross (Rust runs `callback({ index, message })`).

import { ENCODED_HEADER_BYTES } from "../media/decoder";
import { crc8 } from "../media/marker";

export interface EncodedSpec {
  source?: number;
  keyframe?: boolean;
  width?: number;
  height?: number;
  seq?: bigint;
  id?: number[];
  timestampUs?: bigint;
  payload?: number[];
}

export function buildEncoded(spec: EncodedSpec = {}): ArrayBuffer {
  const payload = spec.payload ?? [1, 2, 3, 4];
  const buf = new ArrayBuffer(ENCODED_HEADER_BYTES + payload.length);
  const v = new DataView(buf);
  v.setUint8(0, spec.source ?? 1);
  v.setUint8(1, spec.keyframe ? 1 : 0);
  v.setUint32(4, spec.width ?? 640, true);
  v.setUint32(8, spec.height ?? 480, true);
  v.setBigUint64(16, spec.seq ?? 1n, true);
  new Uint8Array(buf, 24, 16).set(spec.id ?? new Array(16).fill(0));
  v.setBigUint64(40, spec.timestampUs ?? 1000n, true);
  new Uint8Array(buf, ENCODED_HEADER_BYTES).set(payload);
  return buf;
}

/** The 320x96 marker band's luma for `counter`, as confab-media paints it. */
export function markerBand(counter: number, timestampUs: bigint): Uint8Array {
  const payload = new Uint8Array(12);
  const view = new DataView(payload.buffer);
  view.setUint32(0, counter);
  view.setBigUint64(4, timestampUs);
  const fields: [bigint, number][] = [
    [BigInt(counter), 32],
    [timestampUs, 64],
    [BigInt(crc8(payload)), 8],
    [0xa5c3n, 16],
  ];
  const bits: number[] = [];
  for (const [value, width] of fields) {
    for (let i = width - 1; i >= 0; i--) bits.push(Number((value >> BigInt(i)) & 1n));
  }
  const band = new Uint8Array(320 * 96);
  for (let y = 0; y < 96; y++) {
    for (let x = 0; x < 320; x++) {
      const index = Math.floor(y / 16) * 20 + Math.floor(x / 16);
      band[y * 320 + x] = bits[index] ? 235 : 16;
    }
  }
  return band;
}

export class FakeVideoFrame {
  closed = false;
  readonly format = "I420";
  constructor(
    readonly timestamp: number,
    readonly displayWidth = 640,
    readonly displayHeight = 480,
    /** Luma of the marker band (320x96), or null for a picture without one. */
    readonly band: Uint8Array | null = null,
  ) {}
  get codedWidth() {
    return this.displayWidth;
  }
  get codedHeight() {
    return this.displayHeight;
  }
  allocationSize(): number {
    return 320 * 96 * 3;
  }
  async copyTo(dest: Uint8Array): Promise<{ offset: number; stride: number }[]> {
    if (this.band) dest.set(this.band);
    return [{ offset: 0, stride: 320 }];
  }
  close() {
    this.closed = true;
  }
}

type Init = { output: (f: FakeVideoFrame) => void; error: (e: unknown) => void };

/** Decoders made so far, newest last; each decodes a chunk into a FakeVideoFrame. */
export const fakeDecoders: FakeVideoDecoder[] = [];

export class FakeVideoDecoder {
  static supported = true;
  static band: Uint8Array | null = null;
  static async isConfigSupported(config: { codec: string }) {
    return { supported: FakeVideoDecoder.supported && config.codec === "vp8", config };
  }
  state: "unconfigured" | "configured" | "closed" = "unconfigured";
  config: unknown = null;
  chunks: { type: string; timestamp: number; bytes: number[] }[] = [];
  constructor(readonly init: Init) {
    fakeDecoders.push(this);
  }
  configure(config: unknown) {
    this.config = config;
    this.state = "configured";
  }
  decode(chunk: FakeChunk) {
    if (this.state !== "configured") throw new Error("not configured");
    this.chunks.push({ type: chunk.type, timestamp: chunk.timestamp, bytes: [...chunk.data] });
    this.init.output(new FakeVideoFrame(chunk.timestamp, 640, 480, FakeVideoDecoder.band));
  }
  /** The decoder reports an error, as WebCodecs does (and closes). */
  fail(message = "corrupt frame") {
    this.state = "closed";
    this.init.error(new Error(message));
  }
  close() {
    this.state = "closed";
  }
}

export class FakeChunk {
  readonly type: string;
  readonly timestamp: number;
  readonly data: Uint8Array;
  constructor(init: { type: string; timestamp: number; data: Uint8Array }) {
    this.type = init.type;
    this.timestamp = init.timestamp;
    this.data = new Uint8Array(init.data);
  }
}

/** Tauri's callback registry: what `new Channel()` registers its handler with. */
export function fakeTauriInternals() {
  const callbacks = new Map<number, (m: unknown) => void>();
  let next = 1;
  const internals = {
    transformCallback(cb: (m: unknown) => void) {
      const id = next++;
      callbacks.set(id, cb);
      return id;
    },
    unregisterCallback(id: number) {
      callbacks.delete(id);
    },
  };
  return { internals, callbacks };
}
