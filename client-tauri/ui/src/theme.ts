// Theme: follows prefers-color-scheme unless the user picks light or dark, which is kept in
// localStorage (beside the voice processing switches, media/voice.ts, the only thing this
// UI stores there) and set as <html data-theme>.

export type ThemeChoice = "system" | "light" | "dark";
export const THEME_KEY = "confab.theme";
const ORDER: ThemeChoice[] = ["system", "light", "dark"];

export function nextTheme(current: ThemeChoice): ThemeChoice {
  return ORDER[(ORDER.indexOf(current) + 1) % ORDER.length] ?? "system";
}

export function loadTheme(): ThemeChoice {
  try {
    const v = localStorage.getItem(THEME_KEY);
    return v === "light" || v === "dark" ? v : "system";
  } catch {
    return "system";
  }
}

export function applyTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", choice);
}

export function saveTheme(choice: ThemeChoice): void {
  try {
    localStorage.setItem(THEME_KEY, choice);
  } catch {
    // Storage unavailable: the choice lasts for this run only.
  }
  applyTheme(choice);
}

export function themeLabel(choice: ThemeChoice): string {
  return `Theme: ${choice[0]?.toUpperCase()}${choice.slice(1)}`;
}
