import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TOAST_MS, toast, toastError, toastSuccess } from "./toasts";

describe("toasts", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    document.body.innerHTML = '<div id="toasts" aria-live="polite"></div>';
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  const region = () => document.getElementById("toasts") as HTMLElement;

  it("renders into #toasts with the right role", () => {
    toastSuccess("Invite link copied");
    toastError("Server unreachable");
    const [ok, err] = Array.from(region().children) as HTMLElement[];
    expect(ok?.textContent).toContain("Invite link copied");
    expect(ok?.getAttribute("role")).toBe("status");
    expect(ok?.classList.contains("toast-success")).toBe(true);
    expect(err?.getAttribute("role")).toBe("alert");
    expect(err?.classList.contains("toast-error")).toBe(true);
  });

  it("dismisses itself after its timeout", () => {
    toast("hello", "info");
    expect(region().children).toHaveLength(1);
    vi.advanceTimersByTime(TOAST_MS.info - 1);
    expect(region().children).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(region().children).toHaveLength(0);
  });

  it("keeps errors longer than info", () => {
    toast("info", "info");
    toastError("error");
    vi.advanceTimersByTime(TOAST_MS.info);
    expect(region().textContent).not.toContain("info");
    expect(region().textContent).toContain("error");
    vi.advanceTimersByTime(TOAST_MS.error - TOAST_MS.info);
    expect(region().children).toHaveLength(0);
  });

  it("closes with its dismiss button", () => {
    const el = toast("bye");
    (el.querySelector("button[aria-label=Dismiss]") as HTMLButtonElement).click();
    expect(region().children).toHaveLength(0);
  });

  it("keeps at most five", () => {
    for (let i = 0; i < 7; i++) toast(`t${i}`);
    expect(region().children).toHaveLength(5);
    expect(region().firstElementChild?.textContent).toContain("t2");
  });

  it("never interprets the message as markup", () => {
    toast("<img src=x onerror=alert(1)>");
    expect(region().querySelector("img")).toBeNull();
    expect(region().textContent).toContain("<img src=x");
  });
});
