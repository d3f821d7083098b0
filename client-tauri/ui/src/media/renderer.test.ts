import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { buildFrame, PARTICIPANT_BYTES, PARTICIPANT_ID } from "../test/frames";
import { FrameRenderer, LOCAL_KEY, renderStats } from "./renderer";

class FakeImageData {
  constructor(
    readonly data: Uint8ClampedArray,
    readonly width: number,
    readonly height: number,
  ) {}
}

describe("FrameRenderer", () => {
  let putImageData: ReturnType<typeof vi.fn>;
  let scheduled: (() => void)[];
  let local: { tile: HTMLElement; canvas: HTMLCanvasElement };
  let remote: { tile: HTMLElement; canvas: HTMLCanvasElement };
  let renderer: FrameRenderer;

  const runFrame = () => {
    const due = scheduled;
    scheduled = [];
    for (const cb of due) cb();
  };

  beforeEach(() => {
    putImageData = vi.fn();
    vi.stubGlobal("ImageData", FakeImageData);
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(
      () => ({ putImageData }) as unknown as CanvasRenderingContext2D,
    );
    scheduled = [];
    const make = () => {
      const canvas = document.createElement("canvas");
      const tile = document.createElement("div");
      tile.append(canvas);
      return { tile, canvas };
    };
    local = make();
    remote = make();
    window.__confabRenderStats = { frames: 0, bytes: 0 };
    renderer = new FrameRenderer(
      (key) => (key === LOCAL_KEY ? local : key === PARTICIPANT_ID ? remote : null),
      (cb) => scheduled.push(cb),
      () => {
        scheduled = [];
      },
    );
  });

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("draws the frame's pixels at its size onto the right tile", () => {
    const buf = buildFrame({ source: 1, width: 3, height: 2, counter: 41, id: PARTICIPANT_BYTES });
    new Uint8Array(buf, 40, 4).set([9, 8, 7, 255]);
    renderer.push(buf);
    expect(putImageData).not.toHaveBeenCalled(); // waits for the animation frame
    runFrame();
    expect(putImageData).toHaveBeenCalledTimes(1);
    const img = putImageData.mock.calls[0]?.[0] as FakeImageData;
    expect([img.width, img.height, img.data.length]).toEqual([3, 2, 24]);
    expect(Array.from(img.data.slice(0, 4))).toEqual([9, 8, 7, 255]);
    expect(img.data.buffer).toBe(buf); // a view on the message, not a copy
    expect([remote.canvas.width, remote.canvas.height]).toEqual([3, 2]);
    expect(remote.tile.dataset.frames).toBe("1");
    expect(remote.tile.dataset.frameCounter).toBe("41");
    expect(local.tile.dataset.frames).toBeUndefined();
  });

  it("draws only the newest frame per tile per animation frame", () => {
    for (let i = 1; i <= 3; i++) {
      renderer.push(buildFrame({ source: 0, counter: i, seq: BigInt(i) }));
    }
    renderer.push(buildFrame({ source: 1, counter: 100, id: PARTICIPANT_BYTES }));
    expect(scheduled).toHaveLength(1);
    runFrame();
    expect(putImageData).toHaveBeenCalledTimes(2);
    expect(local.tile.dataset.frames).toBe("1");
    expect(local.tile.dataset.frameCounter).toBe("3");
    expect(renderer.dropped).toBe(2);

    renderer.push(buildFrame({ source: 0, counter: 4 }));
    runFrame();
    expect(local.tile.dataset.frames).toBe("2");
    expect(local.tile.dataset.frameCounter).toBe("4");
  });

  it("keeps the last counter when a frame has none", () => {
    renderer.push(buildFrame({ source: 0, counter: 7 }));
    runFrame();
    renderer.push(buildFrame({ source: 0 }));
    runFrame();
    expect(local.tile.dataset.frames).toBe("2");
    expect(local.tile.dataset.frameCounter).toBe("7");
  });

  it("counts drawn frames and bytes on window.__confabRenderStats", () => {
    const a = buildFrame({ source: 0, width: 2, height: 2 });
    renderer.push(a);
    runFrame();
    renderer.push(buildFrame({ source: 0, width: 2, height: 2 }));
    runFrame();
    expect(renderStats()).toEqual({ frames: 2, bytes: 2 * a.byteLength });
  });

  it("ignores malformed frames and frames for unknown tiles", () => {
    renderer.push(new ArrayBuffer(10));
    expect(scheduled).toHaveLength(0);
    renderer.push(buildFrame({ source: 1, id: new Array(16).fill(7) }));
    runFrame();
    expect(putImageData).not.toHaveBeenCalled();
    expect(renderStats().frames).toBe(0);
  });

  it("reports how many device pixels a tile's canvas covers", () => {
    vi.spyOn(remote.canvas, "getBoundingClientRect").mockReturnValue({
      width: 396,
      height: 297.4,
    } as DOMRect);
    vi.stubGlobal("devicePixelRatio", 2);
    expect(renderer.displaySize(PARTICIPANT_ID)).toEqual([792, 595]);
    expect(renderer.displaySize("nobody")).toEqual([0, 0]);
  });

  it("stops drawing after destroy", () => {
    renderer.push(buildFrame({ source: 0 }));
    renderer.destroy();
    runFrame();
    renderer.push(buildFrame({ source: 0 }));
    runFrame();
    expect(putImageData).not.toHaveBeenCalled();
  });
});
