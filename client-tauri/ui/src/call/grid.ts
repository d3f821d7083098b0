// Video grid layout: how many columns and rows make the tiles (all the same size, at a fixed
// aspect ratio) as large as possible in the given area.

export interface Grid {
  columns: number;
  rows: number;
}

export const ASPECT_16_9 = 16 / 9;
export const ASPECT_4_3 = 4 / 3;

/** The size of one tile of aspect `aspect` in a columns x rows grid of the area. */
export function tileSize(
  grid: Grid,
  width: number,
  height: number,
  aspect = ASPECT_16_9,
  gap = 0,
): { width: number; height: number } {
  const cellW = (width - gap * (grid.columns - 1)) / grid.columns;
  const cellH = (height - gap * (grid.rows - 1)) / grid.rows;
  const w = Math.max(0, Math.min(cellW, cellH * aspect));
  return { width: w, height: w / aspect };
}

export function gridFor(
  n: number,
  width: number,
  height: number,
  aspect = ASPECT_16_9,
  gap = 0,
): Grid {
  const count = Math.max(1, Math.floor(n));
  if (!(width > 0) || !(height > 0)) {
    const columns = Math.ceil(Math.sqrt(count));
    return { columns, rows: Math.ceil(count / columns) };
  }
  let best: Grid = { columns: 1, rows: count };
  let bestW = -1;
  for (let columns = 1; columns <= count; columns++) {
    const rows = Math.ceil(count / columns);
    // Skip layouts that a column fewer fits in the same rows: their cells are only narrower.
    if ((columns - 1) * rows >= count) continue;
    const w = tileSize({ columns, rows }, width, height, aspect, gap).width;
    // On a tie (same tile size) the wider layout wins: screens are wider than tall.
    if (w >= bestW - 1e-9) {
      best = { columns, rows };
      bestW = w;
    }
  }
  return best;
}
