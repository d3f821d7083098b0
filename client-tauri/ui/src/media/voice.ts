// Voice processing on the microphone (echo cancellation, noise suppression, gain control):
// all on unless the user turns a part off on the pre-join screen. The choice is kept in
// localStorage so the next call starts with it (it is not secret and not per account).

import type { VoiceProcessingChoice } from "../bindings";

export const VOICE_KEY = "confab.voiceProcessing";

export const VOICE_ON: VoiceProcessingChoice = {
  echoCancellation: true,
  noiseSuppression: true,
  gainControl: true,
};

/** The saved choice, or everything on (first run, or something unreadable saved). */
export function loadVoiceProcessing(storage: Pick<Storage, "getItem"> = localStorage) {
  try {
    const saved = JSON.parse(storage.getItem(VOICE_KEY) ?? "null") as unknown;
    if (saved && typeof saved === "object") {
      const s = saved as Record<string, unknown>;
      const part = (k: keyof VoiceProcessingChoice) =>
        typeof s[k] === "boolean" ? (s[k] as boolean) : VOICE_ON[k];
      return {
        echoCancellation: part("echoCancellation"),
        noiseSuppression: part("noiseSuppression"),
        gainControl: part("gainControl"),
      };
    }
  } catch {
    // Unreadable: start from the default.
  }
  return { ...VOICE_ON };
}

export function saveVoiceProcessing(
  choice: VoiceProcessingChoice,
  storage: Pick<Storage, "setItem"> = localStorage,
) {
  try {
    storage.setItem(VOICE_KEY, JSON.stringify(choice));
  } catch {
    // Storage full or refused: the choice still applies to this call.
  }
}
