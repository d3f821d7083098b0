import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PARTICIPANT_BYTES, PARTICIPANT_ID } from "../test/frames";
import {
  buildEncoded,
  FakeChunk,
  FakeVideoDecoder,
  FakeVideoFrame,
  fakeDecoders,
  markerBand,
} from "../test/vp8";
import {
  fitInside,
  parseEncodedHeader,
  resetVp8Support,
  TileDecoder,
  vp8Supported,
} from "./decoder";
import { markerCounter } from "./marker";

describe("encoded frame messages", () => {
  it("reads the header Rust writes", () => {
    const buf = buildEncoded({
      source: 2,
      keyframe: true,
      width: 1280,
      height: 720,
      seq: 2n ** 33n + 5n,
      id: PARTICIPANT_BYTES,
      timestampUs: 1_700_000_000_123_456n,
    });
    expect(parseEncodedHeader(buf)).toEqual({
      source: "screen",
      keyframe: true,
      width: 1280,
      height: 720,
      sequence: 2 ** 33 + 5,
      participantId: PARTICIPANT_ID,
      timestampUs: 1_700_000_000_123_456,
    });
  });

  it("reads our own frames: source 0, no participant", () => {
    const h = parseEncodedHeader(buildEncoded({ source: 0, id: new Array<number>(16).fill(0) }));
    expect(h).toMatchObject({
      source: "local",
      participantId: "00000000-0000-0000-0000-000000000000",
    });
  });

  it("refuses what is not one", () => {
    expect(parseEncodedHeader(new ArrayBuffer(48))).toBeNull(); // no frame after it
    expect(parseEncodedHeader(buildEncoded({ source: 3 }))).toBeNull();
    expect(parseEncodedHeader(buildEncoded({ width: 100_000 }))).toBeNull();
  });

  it("fits a picture inside the tile, never scaling up", () => {
    expect(fitInside(640, 480, 320, 320)).toEqual([320, 240]);
    expect(fitInside(640, 480, 1280, 960)).toEqual([640, 480]);
    expect(fitInside(640, 480, 0, 0)).toEqual([640, 480]);
  });
});

describe("the test pattern's marker", () => {
  it("reads the counter back and refuses a picture without one", () => {
    const band = markerBand(41, 1_700_000_000_000_000n);
    expect(markerCounter((x, y) => band[y * 320 + x] ?? 0)).toBe(41);
    const flipped = markerBand(41, 1_700_000_000_000_000n);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) flipped[y * 320 + x] = 235;
    // The counter's top bit flipped: the CRC no longer matches.
    expect(markerCounter((x, y) => flipped[y * 320 + x] ?? 0)).toBeNull();
    expect(markerCounter(() => 128)).toBeNull();
  });
});

describe("TileDecoder", () => {
  let scheduled: (() => void)[];
  let drawImage: ReturnType<typeof vi.fn>;
  let requests: number;
  let fallbacks: string[];
  let target: { tile: HTMLElement; canvas: HTMLCanvasElement };
  let clock: number;
  let decoder: TileDecoder;

  const runFrame = () => {
    const due = scheduled;
    scheduled = [];
    for (const cb of due) cb();
  };

  beforeEach(() => {
    fakeDecoders.length = 0;
    FakeVideoDecoder.supported = true;
    FakeVideoDecoder.band = null;
    vi.stubGlobal("VideoDecoder", FakeVideoDecoder);
    vi.stubGlobal("EncodedVideoChunk", FakeChunk);
    resetVp8Support();
    drawImage = vi.fn();
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(
      () => ({ drawImage }) as unknown as CanvasRenderingContext2D,
    );
    vi.spyOn(HTMLCanvasElement.prototype, "getBoundingClientRect").mockReturnValue({
      width: 320,
      height: 320,
    } as DOMRect);
    scheduled = [];
    requests = 0;
    fallbacks = [];
    clock = 0;
    const canvas = document.createElement("canvas");
    const tile = document.createElement("div");
    tile.append(canvas);
    target = { tile, canvas };
    window.__confabRenderStats = { frames: 0, bytes: 0 };
    decoder = new TileDecoder(
      () => target,
      { requestKeyframe: () => requests++, fallback: (r) => fallbacks.push(r) },
      (cb) => scheduled.push(cb),
      () => {
        scheduled = [];
      },
      () => clock,
    );
  });

  afterEach(() => {
    decoder.close();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("knows whether the webview decodes VP8", async () => {
    expect(await vp8Supported()).toBe(true);
    resetVp8Support();
    FakeVideoDecoder.supported = false;
    expect(await vp8Supported()).toBe(false);
    resetVp8Support();
    vi.stubGlobal("VideoDecoder", undefined);
    expect(await vp8Supported()).toBe(false);
  });

  it("asks for a keyframe, starts at one and draws the newest frame at the tile's size", () => {
    expect(requests).toBe(1); // on starting
    decoder.push(buildEncoded({ seq: 1n, keyframe: false }));
    expect(fakeDecoders).toHaveLength(0); // a delta frame is useless before a keyframe
    decoder.push(buildEncoded({ seq: 2n, keyframe: true, timestampUs: 10n, payload: [9, 9] }));
    expect(fakeDecoders).toHaveLength(1);
    const vd = fakeDecoders[0];
    expect(vd?.config).toEqual({
      codec: "vp8",
      optimizeForLatency: true,
      codedWidth: 640,
      codedHeight: 480,
    });
    expect(vd?.chunks).toEqual([{ type: "key", timestamp: 10, bytes: [9, 9] }]);
    decoder.push(buildEncoded({ seq: 3n, timestampUs: 20n }));
    expect(vd?.chunks.map((c) => c.type)).toEqual(["key", "delta"]);
    expect(drawImage).not.toHaveBeenCalled(); // waits for the animation frame
    runFrame();
    // Only the newest decoded frame is drawn, scaled to the 320x320 tile.
    expect(drawImage).toHaveBeenCalledTimes(1);
    const [frame, x, y, w, h] = drawImage.mock.calls[0] ?? [];
    expect((frame as FakeVideoFrame).timestamp).toBe(20);
    expect([x, y, w, h]).toEqual([0, 0, 320, 240]);
    expect([target.canvas.width, target.canvas.height]).toEqual([320, 240]);
    expect(target.tile.dataset.frames).toBe("1");
    expect(target.tile.dataset.decoder).toBe("webcodecs");
    expect(decoder.dropped).toBe(1);
    expect(window.__confabRenderStats?.frames).toBe(1);
  });

  it("waits for a keyframe again when frames went missing on the way", () => {
    decoder.push(buildEncoded({ seq: 1n, keyframe: true }));
    clock = 1000;
    decoder.push(buildEncoded({ seq: 3n, timestampUs: 30n })); // 2 never came
    expect(requests).toBe(2);
    expect(fakeDecoders[0]?.chunks).toHaveLength(1);
    decoder.push(buildEncoded({ seq: 4n, keyframe: true, timestampUs: 40n }));
    expect(fakeDecoders[0]?.chunks.map((c) => c.timestamp)).toEqual([1000, 40]);
  });

  it("starts a new decoder at the next keyframe after an error, and gives up after three", () => {
    decoder.push(buildEncoded({ seq: 1n, keyframe: true }));
    fakeDecoders[0]?.fail();
    expect(requests).toBe(2);
    decoder.push(buildEncoded({ seq: 2n }));
    expect(fakeDecoders).toHaveLength(1);
    decoder.push(buildEncoded({ seq: 3n, keyframe: true }));
    expect(fakeDecoders).toHaveLength(2);
    fakeDecoders[1]?.fail();
    decoder.push(buildEncoded({ seq: 4n, keyframe: true }));
    expect(fallbacks).toEqual([]);
    fakeDecoders[2]?.fail("no decoder for this stream");
    expect(fallbacks).toHaveLength(1);
    expect(fallbacks[0]).toContain("no decoder for this stream");
    decoder.push(buildEncoded({ seq: 5n, keyframe: true }));
    expect(fakeDecoders).toHaveLength(3); // closed for good
  });

  it("shows the test pattern's counter of the frame it drew", async () => {
    FakeVideoDecoder.band = markerBand(77, 123n);
    decoder.push(buildEncoded({ seq: 1n, keyframe: true }));
    runFrame();
    await vi.waitFor(() => expect(target.tile.dataset.frameCounter).toBe("77"));
  });

  it("reads the counter at most four times a second once it has one", async () => {
    const copies = vi.spyOn(FakeVideoFrame.prototype, "copyTo");
    FakeVideoDecoder.band = markerBand(5, 1n);
    decoder.push(buildEncoded({ seq: 1n, keyframe: true }));
    runFrame();
    await vi.waitFor(() => expect(target.tile.dataset.frameCounter).toBe("5"));
    // Frames drawn within 250 ms of that read are drawn, their counter not read.
    FakeVideoDecoder.band = markerBand(6, 2n);
    clock = 100;
    decoder.push(buildEncoded({ seq: 2n, timestampUs: 2n }));
    runFrame();
    expect(target.tile.dataset.frames).toBe("2");
    expect(copies).toHaveBeenCalledTimes(1);
    clock = 260;
    decoder.push(buildEncoded({ seq: 3n, timestampUs: 3n }));
    runFrame();
    expect(copies).toHaveBeenCalledTimes(2);
    await vi.waitFor(() => expect(target.tile.dataset.frameCounter).toBe("6"));
  });
});
