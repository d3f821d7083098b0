// Call keyboard shortcuts: Ctrl+D toggles the microphone, Ctrl+E the camera.

export type ShortcutAction = "mute" | "camera";

export const SHORTCUT_LABELS: Record<ShortcutAction, string> = { mute: "Ctrl+D", camera: "Ctrl+E" };

const KEYS: Record<string, ShortcutAction> = { d: "mute", e: "camera" };
const CODES: Record<string, ShortcutAction> = { KeyD: "mute", KeyE: "camera" };

export interface KeyLike {
  key: string;
  code?: string;
  ctrlKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
  metaKey: boolean;
  repeat?: boolean;
}

/**
 * The action for a key press, or null. Only plain Ctrl (no Alt, Shift or Meta), not
 * auto-repeat. The character decides on Latin layouts; the physical key is used only when
 * the layout gives no Latin letter (e.g. Cyrillic), so Dvorak users get their "D" and "E".
 */
export function matchShortcut(e: KeyLike): ShortcutAction | null {
  if (!e.ctrlKey || e.altKey || e.shiftKey || e.metaKey || e.repeat) return null;
  const key = e.key.toLowerCase();
  if (/^[a-z]$/.test(key)) return KEYS[key] ?? null;
  return (e.code && CODES[e.code]) || null;
}
