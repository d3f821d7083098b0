// The call's video (remote tiles and the self-view) decoded in the webview, with the IPC faked at its boundary:
// the bindings' commands, and Tauri's callback registry that a Channel's messages arrive
// through. WebCodecs is stood in for (jsdom has none).

import { cleanup, render } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type CallEvent, type CallSettings, resetVideoSocket } from "../api";
import { resetVp8Support } from "../media/decoder";
import { buildFrame, PARTICIPANT_BYTES, PARTICIPANT_ID } from "../test/frames";
import { type FakeBackend, flush, IpcError } from "../test/ipc";
import {
  buildEncoded,
  FakeChunk,
  FakeVideoDecoder,
  fakeDecoders,
  fakeTauriInternals,
  markerBand,
} from "../test/vp8";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { startCall } = await import("./session");
const { CallView } = await import("./CallView");

const settings: CallSettings = {
  video: { kind: "testPattern" },
  audio: { kind: "tone" },
  speaker: null,
  muted: false,
  cameraOff: false,
};

/** A WebSocket the test opens, refuses and sends down, as the app's video socket would. */
class FakeSocket {
  static all: FakeSocket[] = [];
  binaryType = "blob";
  closed = false;
  onopen: (() => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  close() {
    this.closed = true;
  }
  opened() {
    this.onopen?.();
  }
  refused() {
    this.onclose?.({ code: 1006 });
  }
  message(data: ArrayBuffer) {
    this.onmessage?.({ data });
  }
}

const SOCKET = "ws://127.0.0.1:9/video/token";

const emit = (ev: CallEvent) => ipc.backend.emit("callEvent", ev);
const remoteTile = () =>
  document.querySelector<HTMLElement>(`.tile[data-participant-id="${PARTICIPANT_ID}"]`);

describe("video decoded in the webview", () => {
  let session: ReturnType<typeof startCall>;
  let callbacks: Map<number, (m: unknown) => void>;
  let drawImage: ReturnType<typeof vi.fn>;
  let rafs: (() => void)[];

  /** Sends a message down the channel the UI handed to watchVideo for `source` (by
   * default the remote participant's), as Rust does. */
  const channelSend = (() => {
    const index = new Map<number, number>();
    return {
      reset: () => {
        index.clear();
      },
      send(buf: ArrayBuffer, source: string = PARTICIPANT_ID) {
        const args = ipc.backend
          .callsTo("watchVideo")
          .filter((a) => a[0] === source)
          .at(-1);
        const channel = args?.[1] as { id: number } | undefined;
        const cb = channel ? callbacks.get(channel.id) : undefined;
        if (!channel || !cb) throw new Error(`no channel registered for ${source}`);
        const i = index.get(channel.id) ?? 0;
        index.set(channel.id, i + 1);
        cb({ index: i, message: buf });
      },
    };
  })();

  const runFrames = () => {
    const due = rafs;
    rafs = [];
    for (const cb of due) cb();
  };

  const start = async () => {
    session = startCall({
      room: { id: "r1", title: "Standup" },
      settings,
      username: "me",
      fail: vi.fn(),
      onEnded: () => {},
    });
    render(() => <CallView session={session} fail={vi.fn()} />);
    await flush();
    emit({
      type: "joined",
      roomId: "r1",
      participantId: "self",
      participants: [
        {
          participantId: PARTICIPANT_ID,
          userId: "u-a",
          username: "alice",
          audioMuted: false,
          videoMuted: false,
        },
      ],
    });
    await flush();
  };

  beforeEach(() => {
    ipc.backend.reset();
    document.body.innerHTML = '<div id="toasts"></div>';
    for (const name of ["joinCall", "leaveCall", "unwatchVideo", "requestKeyframe"]) {
      ipc.backend.on(name, () => null);
    }
    ipc.backend.on("nextFrame", () => new Promise(() => {}));
    ipc.backend.on("watchVideo", () => null);
    const fake = fakeTauriInternals();
    callbacks = fake.callbacks;
    vi.stubGlobal("__TAURI_INTERNALS__", fake.internals);
    fakeDecoders.length = 0;
    FakeVideoDecoder.supported = true;
    FakeVideoDecoder.band = markerBand(5, 99n);
    vi.stubGlobal("VideoDecoder", FakeVideoDecoder);
    vi.stubGlobal("EncodedVideoChunk", FakeChunk);
    resetVp8Support();
    channelSend.reset();
    drawImage = vi.fn();
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(
      () => ({ drawImage, putImageData: vi.fn() }) as unknown as CanvasRenderingContext2D,
    );
    rafs = [];
    vi.stubGlobal("requestAnimationFrame", (cb: () => void) => rafs.push(cb));
    resetVideoSocket();
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
  });

  afterEach(async () => {
    await session.leave();
    cleanup();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("watches the remote tile's VP8 frames, asks for a keyframe and draws what it decodes", async () => {
    await start();
    expect(ipc.backend.callsTo("watchVideo").map((a) => a[0])).toEqual(["local", PARTICIPANT_ID]);
    expect(ipc.backend.callsTo("requestKeyframe")).toEqual([["local"], [PARTICIPANT_ID]]);
    // No tile is pulled as RGBA: no picture crosses the IPC.
    expect(ipc.backend.callsTo("nextFrame")).toEqual([]);

    channelSend.send(buildEncoded({ seq: 1n, keyframe: true, id: PARTICIPANT_BYTES }));
    channelSend.send(buildEncoded({ seq: 2n, id: PARTICIPANT_BYTES, timestampUs: 2000n }));
    expect(fakeDecoders[0]?.chunks.map((c) => c.type)).toEqual(["key", "delta"]);
    runFrames();
    expect(drawImage).toHaveBeenCalledTimes(1);
    const tile = remoteTile();
    expect(tile?.dataset.frames).toBe("1");
    expect(tile?.dataset.decoder).toBe("webcodecs");
    await vi.waitFor(() => expect(tile?.dataset.frameCounter).toBe("5"));
  });

  it("draws the self-view from our own encoded frames", async () => {
    await start();
    channelSend.send(
      buildEncoded({ source: 0, seq: 1n, keyframe: true, id: new Array<number>(16).fill(0) }),
      "local",
    );
    channelSend.send(
      buildEncoded({ source: 0, seq: 2n, id: new Array<number>(16).fill(0), timestampUs: 2000n }),
      "local",
    );
    expect(fakeDecoders[0]?.chunks.map((c) => c.type)).toEqual(["key", "delta"]);
    runFrames();
    const self = document.querySelector<HTMLElement>('.tile[data-local="true"]');
    expect(self?.dataset.decoder).toBe("webcodecs");
    expect(self?.dataset.frames).toBe("1");
    expect(remoteTile()?.dataset.frames).toBeUndefined();
    await vi.waitFor(() => expect(self?.dataset.frameCounter).toBe("5"));
  });

  it("takes the frames over the app's video socket when it runs", async () => {
    ipc.backend.on("videoSocket", () => SOCKET);
    await start();
    expect(FakeSocket.all.map((w) => w.url)).toEqual([
      `${SOCKET}/local`,
      `${SOCKET}/${PARTICIPANT_ID}`,
    ]);
    expect(FakeSocket.all.map((w) => w.binaryType)).toEqual(["arraybuffer", "arraybuffer"]);
    for (const w of FakeSocket.all) w.opened();
    await flush();
    expect(ipc.backend.callsTo("watchVideo")).toEqual([]); // no channel
    const remote = FakeSocket.all[1];
    remote?.message(buildEncoded({ seq: 1n, keyframe: true, id: PARTICIPANT_BYTES }));
    remote?.message(buildEncoded({ seq: 2n, id: PARTICIPANT_BYTES, timestampUs: 2000n }));
    expect(fakeDecoders.at(-1)?.chunks.map((c) => c.type)).toEqual(["key", "delta"]);
    runFrames();
    expect(remoteTile()?.dataset.decoder).toBe("webcodecs");
    expect(remoteTile()?.dataset.frames).toBe("1");
    expect(remoteTile()?.dataset.videoVia).toBe("socket");
    await session.leave();
    expect(FakeSocket.all.map((w) => w.closed)).toEqual([true, true]);
  });

  it("uses a channel when the video socket refuses the watch", async () => {
    ipc.backend.on("videoSocket", () => SOCKET);
    await start();
    for (const w of FakeSocket.all) w.refused();
    await flush();
    expect(ipc.backend.callsTo("watchVideo").map((a) => a[0])).toEqual(["local", PARTICIPANT_ID]);
    channelSend.send(buildEncoded({ seq: 1n, keyframe: true, id: PARTICIPANT_BYTES }));
    runFrames();
    expect(remoteTile()?.dataset.decoder).toBe("webcodecs");
    expect(remoteTile()?.dataset.decoderFallback).toBeUndefined();
    expect(remoteTile()?.dataset.videoVia).toBe("channel");
  });

  it("falls back to pulling RGBA frames when the decoder keeps failing", async () => {
    await start();
    for (let seq = 1n; seq <= 3n; seq++) {
      channelSend.send(buildEncoded({ seq, keyframe: true, id: PARTICIPANT_BYTES }));
      fakeDecoders.at(-1)?.fail();
    }
    await flush();
    expect(ipc.backend.callsTo("unwatchVideo")).toEqual([[PARTICIPANT_ID]]);
    expect(ipc.backend.callsTo("nextFrame").map((a) => a[0])).toContain(PARTICIPANT_ID);
  });

  it("falls back when Rust does not take the watch, and draws the RGBA frames", async () => {
    ipc.backend.on("watchVideo", () => {
      throw new IpcError({ kind: "call", message: "Decoding in the window is turned off." });
    });
    const putImageData = vi.fn();
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(
      () => ({ drawImage, putImageData }) as unknown as CanvasRenderingContext2D,
    );
    vi.stubGlobal("ImageData", class {});
    let answered = false;
    ipc.backend.on("nextFrame", (source: string) => {
      if (source !== PARTICIPANT_ID || answered) return new Promise(() => {});
      answered = true;
      return buildFrame({ source: 1, width: 4, height: 2, counter: 9, id: PARTICIPANT_BYTES });
    });
    await start();
    await flush();
    expect(ipc.backend.callsTo("nextFrame").map((a) => a[0])).toContain(PARTICIPANT_ID);
    runFrames();
    expect(putImageData).toHaveBeenCalled();
    expect(remoteTile()?.dataset.frameCounter).toBe("9");
    expect(remoteTile()?.dataset.decoder).toBe("rgba");
    expect(remoteTile()?.dataset.decoderFallback).toContain("turned off");
  });

  it("draws from RGBA when the webview has no VP8 decoder", async () => {
    FakeVideoDecoder.supported = false;
    await start();
    expect(ipc.backend.callsTo("watchVideo")).toEqual([]);
    expect(new Set(ipc.backend.callsTo("nextFrame").map((a) => a[0]))).toEqual(
      new Set(["local", PARTICIPANT_ID]),
    );
  });
});
