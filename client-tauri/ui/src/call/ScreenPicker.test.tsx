import { cleanup, render } from "@solidjs/testing-library";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ScreenView } from "../api";
import { flush } from "../test/ipc";
import { ScreenPicker, screenLabel } from "./ScreenPicker";

const PNG = "data:image/png;base64,iVBORw0KGgo=";

const screen = (over: Partial<ScreenView>): ScreenView => ({
  id: "monitor:60",
  kind: "monitor",
  name: "screen",
  width: 1920,
  height: 1080,
  primary: false,
  thumbnail: PNG,
  ...over,
});

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const $$ = (sel: string) => Array.from(document.querySelectorAll<HTMLElement>(sel));

describe("screen picker", () => {
  afterEach(() => cleanup());

  it("shows screens, then windows, each with its thumbnail, and shares the one picked", async () => {
    const onPick = vi.fn<(id: string) => void>();
    render(() => (
      <ScreenPicker
        load={() =>
          Promise.resolve([
            screen({ id: "monitor:60", name: "HDMI-1", primary: true }),
            screen({ id: "window:7", kind: "window", name: "Slides", width: 800, height: 600 }),
            screen({ id: "window:8", kind: "window", name: "", thumbnail: null }),
          ])
        }
        onPick={onPick}
        onClose={() => {}}
      />
    ));
    expect($("#screen-picker").textContent).toMatch(/Looking for screens/);
    await flush();
    const screens = $$('ul[aria-label="Screens"] .screen-choice');
    const windows = $$('ul[aria-label="Windows"] .screen-choice');
    expect(screens.map((b) => b.dataset.screenId)).toEqual(["monitor:60"]);
    expect(windows.map((b) => b.dataset.screenId)).toEqual(["window:7", "window:8"]);
    expect(screens[0]?.getAttribute("aria-label")).toBe("Share HDMI-1 (main screen)");
    expect(screens[0]?.querySelector("img")?.getAttribute("src")).toBe(PNG);
    expect(windows[0]?.textContent).toContain("800×600");
    // A window without a title or a thumbnail still gets a name and a placeholder.
    expect(windows[1]?.querySelector("img")).toBeNull();
    expect(windows[1]?.querySelector(".screen-thumb-missing")).not.toBeNull();
    expect(windows[1]?.textContent).toContain("Untitled window");
    windows[0]?.click();
    expect(onPick).toHaveBeenCalledWith("window:7");
  });

  it("says so when there is nothing to share or listing fails", async () => {
    render(() => (
      <ScreenPicker load={() => Promise.resolve([])} onPick={() => {}} onClose={() => {}} />
    ));
    await flush();
    expect($("#screen-picker .empty").textContent).toMatch(/no screen or window/);
    cleanup();
    render(() => (
      <ScreenPicker
        load={() => Promise.reject(new Error("no X display"))}
        onPick={() => {}}
        onClose={() => {}}
      />
    ));
    await flush();
    expect($('#screen-picker [role="alert"]').textContent).toContain("no X display");
  });

  it("closes with Cancel and with Escape", async () => {
    const onClose = vi.fn();
    render(() => (
      <ScreenPicker
        load={() => Promise.resolve([screen({})])}
        onPick={() => {}}
        onClose={onClose}
      />
    ));
    await flush();
    $<HTMLButtonElement>("#screen-picker-close").click();
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", cancelable: true }));
    expect(onClose).toHaveBeenCalledTimes(2);
  });

  it("names screens for people", () => {
    expect(screenLabel(screen({ name: "  " }))).toBe("Screen");
    expect(screenLabel(screen({ kind: "window", name: "" }))).toBe("Untitled window");
  });
});
