import { beforeEach, describe, expect, it } from "vitest";
import { applyTheme, loadTheme, nextTheme, saveTheme, THEME_KEY } from "./theme";

describe("theme", () => {
  beforeEach(() => {
    localStorage.clear();
    document.documentElement.removeAttribute("data-theme");
  });

  it("cycles system -> light -> dark -> system", () => {
    expect(nextTheme("system")).toBe("light");
    expect(nextTheme("light")).toBe("dark");
    expect(nextTheme("dark")).toBe("system");
  });

  it("persists the choice under confab.theme and sets data-theme", () => {
    saveTheme("dark");
    expect(localStorage.getItem(THEME_KEY)).toBe("dark");
    expect(document.documentElement.dataset.theme).toBe("dark");
    expect(loadTheme()).toBe("dark");
    saveTheme("system");
    expect(localStorage.getItem(THEME_KEY)).toBe("system");
    expect(document.documentElement.hasAttribute("data-theme")).toBe(false);
  });

  it("treats a missing or bad value as system", () => {
    expect(loadTheme()).toBe("system");
    localStorage.setItem(THEME_KEY, "purple");
    expect(loadTheme()).toBe("system");
    applyTheme(loadTheme());
    expect(document.documentElement.hasAttribute("data-theme")).toBe(false);
  });
});
