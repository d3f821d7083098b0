import { describe, expect, it } from "vitest";
import { loadVoiceProcessing, saveVoiceProcessing, VOICE_KEY, VOICE_ON } from "./voice";

function memory() {
  const items = new Map<string, string>();
  return {
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => void items.set(k, v),
  };
}

describe("voice processing choice", () => {
  it("is all on the first time", () => {
    expect(loadVoiceProcessing(memory())).toEqual(VOICE_ON);
  });

  it("comes back as the user left it", () => {
    const storage = memory();
    saveVoiceProcessing(
      { echoCancellation: true, noiseSuppression: false, gainControl: false },
      storage,
    );
    expect(loadVoiceProcessing(storage)).toEqual({
      echoCancellation: true,
      noiseSuppression: false,
      gainControl: false,
    });
  });

  it("falls back to on for anything unreadable", () => {
    const storage = memory();
    storage.setItem(VOICE_KEY, "{not json");
    expect(loadVoiceProcessing(storage)).toEqual(VOICE_ON);
    storage.setItem(VOICE_KEY, JSON.stringify({ echoCancellation: false, gainControl: "yes" }));
    expect(loadVoiceProcessing(storage)).toEqual({ ...VOICE_ON, echoCancellation: false });
  });
});
