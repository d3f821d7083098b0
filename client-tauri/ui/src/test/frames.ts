// Test helper: builds frame messages the way the Rust side does.

import { HEADER_BYTES, NO_COUNTER } from "../media/frames";

export interface FrameSpec {
  source?: number;
  width?: number;
  height?: number;
  counter?: number;
  seq?: bigint;
  id?: number[];
  /** Pixel bytes to allocate (default width*height*4). */
  pixels?: number;
}

export function buildFrame(spec: FrameSpec = {}): ArrayBuffer {
  const w = spec.width ?? 4;
  const hgt = spec.height ?? 2;
  const buf = new ArrayBuffer(HEADER_BYTES + (spec.pixels ?? w * hgt * 4));
  const v = new DataView(buf);
  v.setUint8(0, spec.source ?? 1);
  v.setUint32(4, w, true);
  v.setUint32(8, hgt, true);
  v.setUint32(12, spec.counter ?? NO_COUNTER, true);
  v.setBigUint64(16, spec.seq ?? 0n, true);
  new Uint8Array(buf, 24, 16).set(spec.id ?? new Array(16).fill(0));
  return buf;
}

export const PARTICIPANT_BYTES = [
  0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0xff,
];
export const PARTICIPANT_ID = "123e4567-e89b-12d3-a456-4266141740ff";
