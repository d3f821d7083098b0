// Reads the test pattern's frame counter from a decoded VideoFrame, as Rust's
// `read_marker` does (confab-media's video/pattern.rs): the top-left 320x96 luma band is a
// 20x6 grid of 16x16 black or white cells carrying counter (32 bits), capture time (64),
// CRC-8 over both (8) and the sync word 0xA5C3 (16), most significant bit first. Only the
// inner 8x8 of each cell is read (VP8's loop filter touches the edges). Used so a tile
// decoded in the webview shows the counter the RGBA path gets from Rust.

const CELL = 16;
const COLUMNS = 20;
const ROWS = 6;
const BAND_W = CELL * COLUMNS;
const BAND_H = CELL * ROWS;
const SYNC = 0xa5c3;
const AMBIGUITY = 30;
const MID = (16 + 235) / 2;

export function crc8(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

/**
 * The counter from a band's luma (`luma(x, y)` for 0 <= x < 320, 0 <= y < 96), or null
 * when the band is missing or fails its checks.
 */
export function markerCounter(luma: (x: number, y: number) => number): number | null {
  const bits: number[] = [];
  for (let index = 0; index < COLUMNS * ROWS; index++) {
    const x0 = (index % COLUMNS) * CELL;
    const y0 = Math.floor(index / COLUMNS) * CELL;
    let sum = 0;
    for (let y = y0 + 4; y < y0 + 12; y++) {
      for (let x = x0 + 4; x < x0 + 12; x++) sum += luma(x, y);
    }
    const mean = sum / 64;
    if (Math.abs(mean - MID) < AMBIGUITY) return null;
    bits.push(mean > MID ? 1 : 0);
  }
  const field = (from: number, to: number) => {
    let v = 0n;
    for (let i = from; i < to; i++) v = (v << 1n) | BigInt(bits[i] ?? 0);
    return v;
  };
  const counter = field(0, 32);
  const timestamp = field(32, 96);
  const payload = new Uint8Array(12);
  const view = new DataView(payload.buffer);
  view.setUint32(0, Number(counter));
  view.setBigUint64(4, timestamp);
  if (Number(field(104, 120)) !== SYNC || Number(field(96, 104)) !== crc8(payload)) return null;
  return Number(counter);
}

/** The marker's counter in `frame`, or null (no pattern, too small, a format we cannot read). */
export async function readMarkerCounter(frame: VideoFrame): Promise<number | null> {
  if (frame.codedWidth < BAND_W || frame.codedHeight < BAND_H) return null;
  const format = frame.format ?? "";
  const rect = { x: 0, y: 0, width: BAND_W, height: BAND_H };
  try {
    const buf = new Uint8Array(frame.allocationSize({ rect }));
    const layout = await frame.copyTo(buf, { rect });
    const plane = layout[0];
    if (!plane) return null;
    const { offset, stride } = plane;
    if (format.startsWith("I4") || format.startsWith("NV12")) {
      return markerCounter((x, y) => buf[offset + y * stride + x] ?? 0);
    }
    if (format === "RGBA" || format === "RGBX" || format === "BGRA" || format === "BGRX") {
      const [r, b] = format.startsWith("RGB") ? [0, 2] : [2, 0];
      return markerCounter((x, y) => {
        const i = offset + y * stride + x * 4;
        // BT.601 studio-range luma, as the pattern was painted.
        return (
          16 +
          (65.481 * (buf[i + r] ?? 0) + 128.553 * (buf[i + 1] ?? 0) + 24.966 * (buf[i + b] ?? 0)) /
            255
        );
      });
    }
    return viaCanvas(frame);
  } catch {
    return viaCanvas(frame);
  }
}

let scratch: OffscreenCanvasRenderingContext2D | null | undefined;

/** For a frame whose pixels cannot be copied out as such: draw the band, read it back. */
function viaCanvas(frame: VideoFrame): number | null {
  if (typeof OffscreenCanvas === "undefined") return null;
  scratch ??= new OffscreenCanvas(BAND_W, BAND_H).getContext("2d", { willReadFrequently: true });
  if (!scratch) return null;
  scratch.drawImage(frame, 0, 0, BAND_W, BAND_H, 0, 0, BAND_W, BAND_H);
  const { data } = scratch.getImageData(0, 0, BAND_W, BAND_H);
  return markerCounter((x, y) => {
    const i = (y * BAND_W + x) * 4;
    return (
      16 +
      (65.481 * (data[i] ?? 0) + 128.553 * (data[i + 1] ?? 0) + 24.966 * (data[i + 2] ?? 0)) / 255
    );
  });
}
