import { describe, expect, it } from "vitest";
import { matchShortcut } from "./shortcuts";

const key = (k: string, over: Partial<Parameters<typeof matchShortcut>[0]> = {}) => ({
  key: k,
  code: `Key${k.toUpperCase()}`,
  ctrlKey: true,
  altKey: false,
  shiftKey: false,
  metaKey: false,
  ...over,
});

describe("matchShortcut", () => {
  it("maps Ctrl+D to mute and Ctrl+E to camera", () => {
    expect(matchShortcut(key("d"))).toBe("mute");
    expect(matchShortcut(key("e"))).toBe("camera");
  });

  it("accepts Caps Lock's capital letter", () => {
    expect(matchShortcut(key("D"))).toBe("mute");
  });

  it("needs Ctrl and nothing else", () => {
    expect(matchShortcut(key("d", { ctrlKey: false }))).toBeNull();
    expect(matchShortcut(key("d", { shiftKey: true }))).toBeNull();
    expect(matchShortcut(key("d", { altKey: true }))).toBeNull();
    expect(matchShortcut(key("e", { metaKey: true }))).toBeNull();
  });

  it("ignores other keys and auto-repeat", () => {
    expect(matchShortcut(key("f"))).toBeNull();
    expect(matchShortcut(key("d", { repeat: true }))).toBeNull();
  });

  it("goes by the character on Latin layouts (Dvorak's E sits on the D key)", () => {
    expect(matchShortcut(key("e", { code: "KeyD" }))).toBe("camera");
  });

  it("falls back to the physical key on non-Latin layouts", () => {
    expect(matchShortcut(key("в", { code: "KeyD" }))).toBe("mute");
    expect(matchShortcut(key("у", { code: "KeyE" }))).toBe("camera");
    expect(matchShortcut(key("а", { code: "KeyF" }))).toBeNull();
  });
});
