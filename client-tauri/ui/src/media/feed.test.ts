import { describe, expect, it, vi } from "vitest";
import { buildFrame } from "../test/frames";
import { FrameFeed, type PullFn } from "./feed";

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("FrameFeed", () => {
  /** A fake nextFrame: answers from a queue per source, then waits until released. */
  function fakeRust() {
    const queues = new Map<string, (ArrayBuffer | null)[]>();
    const calls: [string, number][] = [];
    const waiting: (() => void)[] = [];
    const pull: PullFn = (source, after) => {
      calls.push([source, after]);
      const next = queues.get(source)?.shift();
      if (next !== undefined) return Promise.resolve(next);
      return new Promise((resolve) => waiting.push(() => resolve(null)));
    };
    const push = (source: string, buf: ArrayBuffer | null) => {
      queues.set(source, [...(queues.get(source) ?? []), buf]);
    };
    return { pull, push, calls, waiting };
  }

  it("asks for frames no larger than the source is shown", async () => {
    const pull = vi.fn(async () => null);
    const feed = new FrameFeed(
      vi.fn(),
      pull,
      () => Promise.resolve(),
      (source) => (source === "local" ? [320, 240] : [0, 0]),
    );
    feed.setSources(["local"]);
    await tick();
    feed.close();
    expect(pull).toHaveBeenCalledWith("local", 0, [320, 240]);
  });

  it("pulls each source in turn, asking for frames newer than the last one", async () => {
    const rust = fakeRust();
    rust.push("local", buildFrame({ source: 0, seq: 5n }));
    rust.push("local", buildFrame({ source: 0, seq: 9n }));
    const onFrame = vi.fn();
    const feed = new FrameFeed(onFrame, rust.pull, () => Promise.resolve());
    feed.setSources(["local"]);
    await tick();
    await tick();
    expect(onFrame).toHaveBeenCalledTimes(2);
    expect(rust.calls).toEqual([
      ["local", 0],
      ["local", 5],
      ["local", 9],
    ]);
    feed.close();
  });

  it("starts and stops loops as participants come and go", async () => {
    const rust = fakeRust();
    const feed = new FrameFeed(vi.fn(), rust.pull, () => Promise.resolve());
    feed.setSources(["local", "p1"]);
    feed.setSources(["local", "p1"]); // no duplicate loops
    expect(rust.calls.map(([s]) => s).sort()).toEqual(["local", "p1"]);
    feed.setSources(["local", "p2"]);
    expect(rust.calls.map(([s]) => s)).toContain("p2");
    // p1's pending answer arrives after it left: its loop ends instead of asking again.
    const before = rust.calls.length;
    for (const release of rust.waiting.splice(0)) release();
    await tick();
    await new Promise((r) => setTimeout(r, 120));
    const after = rust.calls.slice(before).map(([s]) => s);
    expect(after).not.toContain("p1");
    expect(after).toContain("local");
    feed.close();
  });

  it("starts over from 0 after an empty answer or a restart", async () => {
    const rust = fakeRust();
    rust.push("local", buildFrame({ source: 0, seq: 7n }));
    rust.push("local", new ArrayBuffer(0));
    const feed = new FrameFeed(vi.fn(), rust.pull, () => Promise.resolve());
    feed.setSources(["local"]);
    await new Promise((r) => setTimeout(r, 150));
    expect(rust.calls.slice(0, 3)).toEqual([
      ["local", 0],
      ["local", 7],
      ["local", 0],
    ]);
    feed.close();
  });

  it("waits for the previous frame to be drawn before asking for the next", async () => {
    const rust = fakeRust();
    rust.push("local", buildFrame({ source: 0, seq: 1n }));
    rust.push("local", buildFrame({ source: 0, seq: 2n }));
    let drawn: () => void = () => {};
    const feed = new FrameFeed(vi.fn(), rust.pull, () => new Promise((r) => (drawn = r)));
    feed.setSources(["local"]);
    await tick();
    expect(rust.calls).toHaveLength(1);
    drawn();
    await tick();
    expect(rust.calls).toHaveLength(2);
    feed.close();
  });

  it("keeps going after an error, and stops when closed", async () => {
    vi.useFakeTimers();
    try {
      let n = 0;
      const pull: PullFn = () => {
        n++;
        return n === 1 ? Promise.reject(new Error("no call")) : new Promise(() => {});
      };
      const feed = new FrameFeed(vi.fn(), pull, () => Promise.resolve());
      feed.setSources(["local"]);
      await vi.advanceTimersByTimeAsync(600);
      expect(n).toBe(2);
      feed.close();
      feed.setSources(["local"]);
      await vi.advanceTimersByTimeAsync(600);
      expect(n).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
