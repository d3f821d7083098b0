// The binary frame format Rust sends through a Tauri Channel<ArrayBuffer>: a 40-byte
// little-endian header, then width*height*4 bytes of RGBA.
//
//   0      u8   source (0 = local preview, 1 = remote camera, 2 = remote shared screen)
//   1..4        reserved
//   4..8   u32  width
//   8..12  u32  height
//   12..16 u32  test-pattern frame counter painted in the frame (0xFFFFFFFF = none)
//   16..24 u64  sequence number of this frame for its source
//   24..40      participant id, 16 raw UUID bytes (all zero for local)

export const HEADER_BYTES = 40;
export const NO_COUNTER = 0xffffffff;
/** Refuse absurd sizes rather than allocate for them (8K is 7680x4320). */
export const MAX_DIMENSION = 8192;

export type FrameSource = "local" | "remote" | "screen";

export interface FrameHeader {
  source: FrameSource;
  width: number;
  height: number;
  /** The test-pattern counter painted in the frame, or null when there is none. */
  counter: number | null;
  sequence: number;
  /** Canonical lowercase UUID of the remote participant; null for local frames. */
  participantId: string | null;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** 16 bytes -> "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lowercase). */
export function formatUuid(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
    s += HEX[bytes[i] ?? 0];
  }
  return s;
}

/**
 * Reads a frame's header. Returns null for a message that is not a well-formed frame
 * (too short for its header or its pixels, an unknown source, a zero or absurd size).
 */
export function parseFrameHeader(buf: ArrayBuffer): FrameHeader | null {
  if (buf.byteLength < HEADER_BYTES) return null;
  const v = new DataView(buf, 0, HEADER_BYTES);
  const src = v.getUint8(0);
  if (src !== 0 && src !== 1 && src !== 2) return null;
  const width = v.getUint32(4, true);
  const height = v.getUint32(8, true);
  if (width === 0 || height === 0 || width > MAX_DIMENSION || height > MAX_DIMENSION) return null;
  if (buf.byteLength < HEADER_BYTES + width * height * 4) return null;
  const rawCounter = v.getUint32(12, true);
  const sequence = v.getUint32(20, true) * 2 ** 32 + v.getUint32(16, true);
  return {
    source: src === 0 ? "local" : src === 1 ? "remote" : "screen",
    width,
    height,
    counter: rawCounter === NO_COUNTER ? null : rawCounter,
    sequence,
    participantId: src === 0 ? null : formatUuid(new Uint8Array(buf, 24, 16)),
  };
}
