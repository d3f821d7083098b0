// Server screen: where the Confab server is. Rust normalizes and checks the URL.

import { api } from "../api";
import type { App, Screen } from "../app";
import { h } from "../dom";
import { describeError, field, setFieldError, whileBusy } from "../forms";

export const DEFAULT_SERVER = "http://127.0.0.1:8080";

export function serverScreen(app: App, current: string | null = null): Screen {
  const url = field({
    id: "server-url",
    label: "Server address",
    hint: "The address of your team's Confab server.",
    attrs: {
      type: "url",
      value: current ?? DEFAULT_SERVER,
      autocomplete: "url",
      spellcheck: "false",
      required: true,
    },
  });
  const form = h(
    "form",
    { id: "server-form", class: "card stack", novalidate: true },
    url.wrap,
    h("button", { id: "server-continue", type: "submit", class: "primary" }, "Continue"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = url.input.value.trim();
    if (value === "") {
      setFieldError(url.input, "Enter the server address");
      url.input.focus();
      return;
    }
    await whileBusy(
      form,
      async () => {
        app.serverUrl = await api.setServer(value);
        app.go({ name: "auth", tab: current ? "login" : "signup" });
      },
      (err) => {
        setFieldError(url.input, describeError(err));
        url.input.focus();
      },
    );
  });
  const el = h(
    "section",
    { id: "server-screen", class: "screen centered" },
    h("h1", {}, "Connect to a server"),
    form,
  );
  return { el, title: "Server" };
}
