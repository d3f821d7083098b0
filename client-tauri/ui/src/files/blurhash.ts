// BlurHash (https://blurha.sh) decoding, for the placeholder painted while an image's
// preview loads: a few dozen bytes of text from the server become a tiny blurred image.
// Written here (it is short) rather than pulled in as a dependency.

const DIGITS =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function decode83(s: string): number {
  let v = 0;
  for (const c of s) {
    const d = DIGITS.indexOf(c);
    if (d < 0) return Number.NaN;
    v = v * 83 + d;
  }
  return v;
}

function toLinear(c: number): number {
  const v = c / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

function toSrgb(v: number): number {
  const c = Math.max(0, Math.min(1, v));
  return Math.round((c <= 0.0031308 ? c * 12.92 : 1.055 * c ** (1 / 2.4) - 0.055) * 255);
}

function signPow(v: number, e: number): number {
  return Math.sign(v) * Math.abs(v) ** e;
}

/** RGBA pixels of `hash` at `width` x `height`, or null when it is not a BlurHash. */
export function decodeBlurhash(
  hash: string,
  width: number,
  height: number,
): Uint8ClampedArray<ArrayBuffer> | null {
  if (hash.length < 6) return null;
  const size = decode83(hash.charAt(0));
  const nx = (size % 9) + 1;
  const ny = Math.floor(size / 9) + 1;
  if (Number.isNaN(size) || hash.length !== 4 + 2 * nx * ny) return null;
  const maxAc = (decode83(hash.charAt(1)) + 1) / 166;
  const colors: [number, number, number][] = [];
  const dc = decode83(hash.slice(2, 6));
  colors.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
  for (let i = 1; i < nx * ny; i++) {
    const v = decode83(hash.slice(4 + i * 2, 6 + i * 2));
    if (Number.isNaN(v)) return null;
    const q = (x: number) => signPow((x - 9) / 9, 2) * maxAc;
    colors.push([q(Math.floor(v / (19 * 19))), q(Math.floor(v / 19) % 19), q(v % 19)]);
  }
  const out = new Uint8ClampedArray(new ArrayBuffer(width * height * 4));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const c = colors[i + j * nx];
          if (!c) continue;
          r += c[0] * basis;
          g += c[1] * basis;
          b += c[2] * basis;
        }
      }
      const at = 4 * (x + y * width);
      out[at] = toSrgb(r);
      out[at + 1] = toSrgb(g);
      out[at + 2] = toSrgb(b);
      out[at + 3] = 255;
    }
  }
  return out;
}
