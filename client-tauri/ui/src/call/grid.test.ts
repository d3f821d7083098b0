import { describe, expect, it } from "vitest";
import { ASPECT_4_3, gridFor, tileSize } from "./grid";

describe("gridFor", () => {
  it("uses one tile for 0 or 1 participants", () => {
    expect(gridFor(0, 1280, 720)).toEqual({ columns: 1, rows: 1 });
    expect(gridFor(1, 1280, 720)).toEqual({ columns: 1, rows: 1 });
  });

  it("puts two side by side in a wide area and stacked in a tall one", () => {
    expect(gridFor(2, 1600, 720)).toEqual({ columns: 2, rows: 1 });
    expect(gridFor(2, 600, 900)).toEqual({ columns: 1, rows: 2 });
  });

  it("prefers side by side when both layouts give the same tile size", () => {
    // 1280x720: 640x360 tiles either way.
    expect(gridFor(2, 1280, 720)).toEqual({ columns: 2, rows: 1 });
  });

  it("makes 2x2 for four in a 16:9 area", () => {
    expect(gridFor(4, 1280, 720)).toEqual({ columns: 2, rows: 2 });
  });

  it("chooses 3x2 for five or six in a wide area", () => {
    expect(gridFor(5, 1600, 720)).toEqual({ columns: 3, rows: 2 });
    expect(gridFor(6, 1600, 720)).toEqual({ columns: 3, rows: 2 });
  });

  it("fits 16 participants as 4x4 in a 16:9 area", () => {
    expect(gridFor(16, 1280, 720)).toEqual({ columns: 4, rows: 4 });
  });

  it("always has room for everyone, and no empty row", () => {
    for (let n = 1; n <= 16; n++) {
      for (const [w, h] of [
        [560, 480],
        [1280, 720],
        [600, 1000],
        [3000, 400],
      ] as const) {
        const g = gridFor(n, w, h);
        expect(g.columns * g.rows).toBeGreaterThanOrEqual(n);
        expect(g.columns * (g.rows - 1)).toBeLessThan(n);
      }
    }
  });

  it("gives the largest tile of all layouts", () => {
    for (let n = 1; n <= 16; n++) {
      const [w, h] = [1000, 560];
      const chosen = tileSize(gridFor(n, w, h), w, h).width;
      for (let c = 1; c <= n; c++) {
        const other = tileSize({ columns: c, rows: Math.ceil(n / c) }, w, h).width;
        expect(chosen).toBeGreaterThanOrEqual(other - 1e-9);
      }
    }
  });

  it("depends on the aspect ratio", () => {
    // Two tiles in 1000x700: stacked at 16:9 (622 px wide each), side by side at 4:3 (500 px).
    expect(gridFor(2, 1000, 700)).toEqual({ columns: 1, rows: 2 });
    expect(gridFor(2, 1000, 700, ASPECT_4_3)).toEqual({ columns: 2, rows: 1 });
  });

  it("falls back to a square-ish grid when the area is unknown", () => {
    expect(gridFor(5, 0, 0)).toEqual({ columns: 3, rows: 2 });
    expect(gridFor(9, Number.NaN, 100)).toEqual({ columns: 3, rows: 3 });
  });

  it("accounts for the gap between tiles", () => {
    expect(tileSize({ columns: 2, rows: 1 }, 1010, 1000, 1, 10).width).toBe(500);
  });
});
