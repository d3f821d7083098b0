// The top bar of signed-in screens: who is signed in, the theme toggle and "Log out".

import { api } from "./api";
import type { App } from "./app";
import { h } from "./dom";
import { loadTheme, nextTheme, saveTheme, themeLabel } from "./theme";
import { toastInfo } from "./toasts";

export function themeToggle(): HTMLButtonElement {
  let theme = loadTheme();
  const button = h("button", { id: "theme-toggle", type: "button", class: "ghost" });
  const show = () => {
    button.textContent = themeLabel(theme);
    button.setAttribute("aria-label", `${themeLabel(theme)} (change to ${nextTheme(theme)})`);
    button.dataset.theme = theme;
  };
  button.addEventListener("click", () => {
    theme = nextTheme(theme);
    saveTheme(theme);
    show();
  });
  show();
  return button;
}

export function appHeader(app: App): HTMLElement {
  const me = app.me;
  const name = me ? (me.displayName ?? me.username) : "";
  const logout = h("button", { id: "logout", type: "button", class: "ghost" }, "Log out");
  logout.addEventListener("click", async () => {
    logout.disabled = true;
    try {
      await api.logOut();
      app.me = null;
      app.go({ name: "auth", tab: "login" });
      toastInfo("Logged out");
    } catch (err) {
      logout.disabled = false;
      app.fail(err);
    }
  });
  return h(
    "header",
    { class: "app-header" },
    h("span", { class: "brand" }, "Confab"),
    h("span", { class: "header-user" }, "Signed in as ", h("strong", { id: "me-name" }, name)),
    h("span", { class: "header-actions" }, themeToggle(), logout),
  );
}
