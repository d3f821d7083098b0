"use strict";
const params = new URLSearchParams(location.search);
const mode = params.get("mode") || "2d";
const tiles = Number(params.get("tiles") || "2");
const W = 640;
const H = 480;
const TILE_W = 396;
const TILE_H = 297;
const FPS = 30;
const FRAMES = 150;

function status(text) {
  document.title = text;
}

// A moving picture with detail, like a camera's: gradients, moving boxes, text.
function paint(ctx, i) {
  const g = ctx.createLinearGradient(0, 0, W, H);
  g.addColorStop(0, `hsl(${(i * 2) % 360}, 60%, 40%)`);
  g.addColorStop(1, `hsl(${(i * 2 + 180) % 360}, 60%, 60%)`);
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, W, H);
  for (let k = 0; k < 12; k++) {
    ctx.fillStyle = `hsl(${k * 30}, 80%, 50%)`;
    const x = (i * (3 + k) + k * 53) % W;
    const y = (k * 41 + Math.sin((i + k * 7) / 10) * 60 + 200) % H;
    ctx.fillRect(x, y, 40, 40);
  }
  ctx.fillStyle = "#fff";
  ctx.font = "32px sans-serif";
  ctx.fillText(`frame ${i}`, 20, 50);
}

async function encodeStream() {
  const canvas = new OffscreenCanvas(W, H);
  const ctx = canvas.getContext("2d");
  const chunks = [];
  const encoder = new VideoEncoder({
    output: (chunk) => {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      chunks.push({ type: chunk.type, data });
    },
    error: (e) => status(`error: encoder ${e}`),
  });
  encoder.configure({ codec: "vp8", width: W, height: H, bitrate: 1_000_000, framerate: FPS, latencyMode: "realtime" });
  for (let i = 0; i < FRAMES; i++) {
    paint(ctx, i);
    const frame = new VideoFrame(canvas, { timestamp: (i * 1e6) / FPS });
    encoder.encode(frame, { keyFrame: i === 0 });
    frame.close();
    if (i % 10 === 0) await encoder.flush();
  }
  await encoder.flush();
  encoder.close();
  return chunks;
}

function drawer2d(canvas, setup) {
  const ctx = canvas.getContext("2d", { alpha: false });
  setup?.(ctx);
  return (frame) => ctx.drawImage(frame, 0, 0, canvas.width, canvas.height);
}

const VERTEX = `
attribute vec2 pos;
varying vec2 uv;
void main() {
  uv = vec2((pos.x + 1.0) / 2.0, (1.0 - pos.y) / 2.0);
  gl_Position = vec4(pos, 0.0, 1.0);
}`;

function program(gl, fragment) {
  const p = gl.createProgram();
  for (const [type, src] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, fragment]]) {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    gl.attachShader(p, s);
  }
  gl.linkProgram(p);
  if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p));
  gl.useProgram(p);
  const buf = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, buf);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
  const loc = gl.getAttribLocation(p, "pos");
  gl.enableVertexAttribArray(loc);
  gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
  return p;
}

function texture(gl, unit) {
  const t = gl.createTexture();
  gl.activeTexture(gl.TEXTURE0 + unit);
  gl.bindTexture(gl.TEXTURE_2D, t);
  for (const [k, v] of [
    [gl.TEXTURE_MIN_FILTER, gl.LINEAR],
    [gl.TEXTURE_MAG_FILTER, gl.LINEAR],
    [gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE],
    [gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE],
  ]) gl.texParameteri(gl.TEXTURE_2D, k, v);
  return t;
}

function glContext(canvas) {
  canvas.width = TILE_W;
  canvas.height = TILE_H;
  const gl = canvas.getContext("webgl", { alpha: false, antialias: false, depth: false, preserveDrawingBuffer: false });
  if (!gl) throw new Error("no WebGL context");
  return gl;
}

function drawerWebgl(canvas) {
  const gl = glContext(canvas);
  const p = program(gl, `
precision mediump float;
varying vec2 uv;
uniform sampler2D tex;
void main() { gl_FragColor = texture2D(tex, uv); }`);
  texture(gl, 0);
  gl.uniform1i(gl.getUniformLocation(p, "tex"), 0);
  gl.viewport(0, 0, TILE_W, TILE_H);
  return (frame) => {
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, frame);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  };
}

function drawerI420(canvas) {
  const gl = glContext(canvas);
  const p = program(gl, `
precision mediump float;
varying vec2 uv;
uniform sampler2D y, u, v;
void main() {
  float Y = 1.164 * (texture2D(y, uv).r - 0.0625);
  float U = texture2D(u, uv).r - 0.5;
  float V = texture2D(v, uv).r - 0.5;
  gl_FragColor = vec4(Y + 1.596 * V, Y - 0.391 * U - 0.813 * V, Y + 2.018 * U, 1.0);
}`);
  ["y", "u", "v"].forEach((name, i) => {
    texture(gl, i);
    gl.uniform1i(gl.getUniformLocation(p, name), i);
  });
  gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
  gl.viewport(0, 0, TILE_W, TILE_H);
  let buf = null;
  let sized = false;
  return async (frame) => {
    const size = frame.allocationSize({ format: "I420" });
    if (!buf || buf.byteLength !== size) buf = new Uint8Array(size);
    const layout = await frame.copyTo(buf, { format: "I420" });
    const w = frame.codedWidth;
    const h = frame.codedHeight;
    const planes = [[w, h], [w / 2, h / 2], [w / 2, h / 2]];
    planes.forEach(([pw, ph], i) => {
      const { offset, stride } = layout[i];
      if (stride !== pw) throw new Error(`stride ${stride} for width ${pw}`);
      gl.activeTexture(gl.TEXTURE0 + i);
      const data = buf.subarray(offset, offset + pw * ph);
      if (!sized) gl.texImage2D(gl.TEXTURE_2D, 0, gl.LUMINANCE, pw, ph, 0, gl.LUMINANCE, gl.UNSIGNED_BYTE, data);
      else gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, pw, ph, gl.LUMINANCE, gl.UNSIGNED_BYTE, data);
    });
    sized = true;
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  };
}

function makeDrawer(canvas) {
  if (mode.startsWith("2d")) {
    // 2d-native: the canvas at the frame's size, scaled by the page's CSS when painted.
    const native = mode === "2d-native";
    canvas.width = native ? W : TILE_W;
    canvas.height = native ? H : TILE_H;
    if (mode === "2d-low") return drawer2d(canvas, (ctx) => { ctx.imageSmoothingQuality = "low"; });
    if (mode === "2d-nearest") return drawer2d(canvas, (ctx) => { ctx.imageSmoothingEnabled = false; });
    return drawer2d(canvas);
  }
  if (mode === "webgl") return drawerWebgl(canvas);
  if (mode === "i420") return drawerI420(canvas);
  return () => {};
}

let drawn = 0;

function tile(chunks, index) {
  const canvas = document.createElement("canvas");
  document.getElementById("tiles").append(canvas);
  const draw = makeDrawer(canvas);
  let pending = null;
  let scheduled = false;
  const decoder = new VideoDecoder({
    output: (frame) => {
      if (pending) pending.close();
      pending = frame;
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(async () => {
          scheduled = false;
          const f = pending;
          pending = null;
          if (!f) return;
          try {
            await draw(f);
            drawn++;
          } catch (e) {
            status(`error: draw ${e}`);
          } finally {
            f.close();
          }
        });
      }
    },
    error: (e) => status(`error: decoder ${e}`),
  });
  decoder.configure({ codec: "vp8", codedWidth: W, codedHeight: H, optimizeForLatency: true });
  let i = 0;
  const next = () => {
    const c = chunks[i % chunks.length];
    // Starting over is a jump back to the keyframe, which the first chunk is.
    decoder.decode(new EncodedVideoChunk({ type: c.type, timestamp: (i * 1e6) / FPS, data: c.data }));
    i++;
  };
  // Tiles out of step, as real streams are.
  setTimeout(() => setInterval(next, 1000 / FPS), index * 11);
}

(async () => {
  try {
    if (typeof VideoDecoder === "undefined") throw new Error("no WebCodecs");
    // Asked first: WebKitGTK 2.50's web process crashes when a VideoEncoder is its first
    // use of GStreamer (it registers its encoder element before initializing GStreamer).
    if (!(await VideoDecoder.isConfigSupported({ codec: "vp8" })).supported) throw new Error("no VP8 decoder");
    const chunks = await encodeStream();
    for (let k = 0; k < tiles; k++) tile(chunks, k);
    status("running");
    let last = 0;
    setInterval(() => {
      status(`running ${drawn - last}`);
      last = drawn;
    }, 1000);
  } catch (e) {
    status(`error: ${e}`);
  }
})();
