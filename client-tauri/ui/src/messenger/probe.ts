// A probe for the desktop bench (run through WebDriver): scrolls the open timeline upwards
// by about `rows` rows, `pxPerFrame` pixels per animation frame, loading older pages as a
// user would, and reports the time between frames. Nothing in the app calls it.

export interface ScrollReport {
  frames: number;
  rowsScrolled: number;
  maxFrameMs: number;
  p95FrameMs: number;
  meanFrameMs: number;
  rowsInDom: number;
  /** Gaps over 50 ms: how long, and how many rows the timeline had before and after. */
  slow: { gapMs: number; rowsBefore: number; rowsAfter: number }[];
  /** Time spent applying each older page in script (from window.__confabPrependMs). */
  prependMs: number[];
}

declare global {
  interface Window {
    __confabMeasureScroll?: (rows?: number, pxPerFrame?: number) => Promise<ScrollReport>;
  }
}

const frame = () => new Promise<number>((r) => requestAnimationFrame(r));

export async function measureScroll(rows = 1000, pxPerFrame = 120): Promise<ScrollReport> {
  const list = document.querySelector<HTMLElement>("[data-testid='message-list']");
  if (!list) throw new Error("no conversation open");
  const perRow = () => list.scrollHeight / Math.max(1, Number(list.dataset.rows ?? "1"));
  window.__confabPrependMs = [];
  const gaps: number[] = [];
  const slow: ScrollReport["slow"] = [];
  const rowCount = () => Number(list.dataset.rows ?? "0");
  let scrolled = 0;
  let stuck = 0;
  let last = await frame();
  while (scrolled < rows * perRow() && stuck < 120) {
    const before = list.scrollTop;
    const rowsBefore = rowCount();
    list.scrollTop = Math.max(0, before - pxPerFrame);
    const now = await frame();
    gaps.push(now - last);
    if (now - last > 50) slow.push({ gapMs: now - last, rowsBefore, rowsAfter: rowCount() });
    last = now;
    const moved = before - list.scrollTop;
    // At the top the list waits for the older page (and then keeps its place).
    if (moved <= 0) stuck++;
    else {
      stuck = 0;
      scrolled += moved;
    }
  }
  const sorted = [...gaps].sort((a, b) => a - b);
  return {
    frames: gaps.length,
    rowsScrolled: Math.round(scrolled / perRow()),
    maxFrameMs: sorted[sorted.length - 1] ?? 0,
    p95FrameMs: sorted[Math.floor(sorted.length * 0.95)] ?? 0,
    meanFrameMs: gaps.reduce((a, b) => a + b, 0) / Math.max(1, gaps.length),
    rowsInDom: list.querySelectorAll(".vrow").length,
    slow,
    prependMs: (window.__confabPrependMs ?? []).map((ms) => Math.round(ms * 10) / 10),
  };
}

export function installProbe(): void {
  window.__confabMeasureScroll = measureScroll;
}
