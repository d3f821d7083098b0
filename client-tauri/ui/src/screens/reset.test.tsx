import { cleanup, render } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AppProvider, type AppState, createAppState } from "../app/state";
import { type FakeBackend, flush, IpcError } from "../test/ipc";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { AuthScreen } = await import("./auth");
const { ServerScreen } = await import("./server");
const { LIMITS } = await import("../validation");

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

function fill(values: Record<string, string>) {
  for (const [id, value] of Object.entries(values)) {
    const input = $<HTMLInputElement>(`#${id}`);
    input.value = value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

const click = async (sel: string) => {
  $<HTMLButtonElement>(sel).click();
  await flush();
};

const visible = (sel: string) => {
  const el = $(sel);
  return el !== null && el.closest("[hidden]") === null;
};

const LINK =
  "https://chat.example.org/reset-password?token=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const NEW = "Quiet-Lantern-Orchard-42";

describe("forgot password", () => {
  let app: AppState;

  beforeEach(() => {
    ipc.backend.reset();
    app = createAppState({ name: "auth", tab: "login" });
    app.setServerUrl("http://127.0.0.1:8080");
    render(() => (
      <AppProvider state={app}>
        <AuthScreen tab="login" />
      </AppProvider>
    ));
  });
  afterEach(cleanup);

  it("mails a link, takes the pasted link and a new password, and returns to log in", async () => {
    ipc.backend.on("requestPasswordReset", () => null);
    ipc.backend.on("confirmPasswordReset", () => null);
    expect(visible("#login-form")).toBe(true);
    await click("#forgot-password");
    expect(visible("#login-form")).toBe(false);
    expect(visible("[role='tablist']")).toBe(false);
    expect(document.activeElement).toBe($("#reset-email"));

    // A malformed address is caught before the server is asked.
    fill({ "reset-email": "not an address" });
    await click("#reset-request-submit");
    expect($("#reset-email-error").textContent).toBe("Email is not a valid email address");
    expect(ipc.backend.callsTo("requestPasswordReset")).toEqual([]);

    fill({ "reset-email": "  ana@example.com " });
    await click("#reset-request-submit");
    expect(ipc.backend.callsTo("requestPasswordReset")).toEqual([["ana@example.com"]]);
    const sent = $("#reset-sent");
    expect(sent.getAttribute("role")).toBe("status");
    expect(sent.textContent).toContain("If an account has this address, we sent a link");
    expect(document.activeElement).toBe($("#reset-code"));

    // The client checks the new password against the bindings' limits.
    fill({ "reset-code": "", "reset-password": "short", "reset-confirm": "other" });
    await click("#reset-submit");
    expect($("#reset-code-error").textContent).toBe("Paste the code or the link from the mail");
    expect($("#reset-password-error").textContent).toBe(
      `Password must be ${LIMITS.passwordMin} to ${LIMITS.passwordMax} characters long`,
    );
    expect($("#reset-confirm-error").textContent).toBe("Passwords do not match");
    expect($("#reset-password").getAttribute("aria-invalid")).toBe("true");
    expect(ipc.backend.callsTo("confirmPasswordReset")).toEqual([]);

    fill({ "reset-code": ` ${LINK} `, "reset-password": NEW, "reset-confirm": NEW });
    await click("#reset-submit");
    expect(ipc.backend.callsTo("confirmPasswordReset")).toEqual([[LINK, NEW, NEW]]);
    expect(visible("#reset-panel")).toBe(false);
    expect(visible("#login-form")).toBe(true);
    expect($("#login-note").textContent).toContain("Log in with the new password");
    expect(document.activeElement).toBe($("#login-login"));
    expect(app.route()).toEqual({ name: "auth", tab: "login" });
  });

  it("answers every address the same way", async () => {
    ipc.backend.on("requestPasswordReset", () => null);
    await click("#forgot-password");
    fill({ "reset-email": "nobody@example.com" });
    await click("#reset-request-submit");
    expect($("#reset-sent").textContent).toContain("If an account has this address");
  });

  it("puts the server's refusals on the fields and keeps the form", async () => {
    ipc.backend.on("confirmPasswordReset", () => {
      throw new IpcError({
        kind: "invalid",
        message: "Some fields are invalid",
        fields: {
          token: "is invalid or has expired",
          password: "is too common or too easy to guess",
        },
      });
    });
    await click("#forgot-password");
    await click("#reset-have-code");
    expect($("#reset-sent")).toBeNull();
    fill({ "reset-code": LINK, "reset-password": NEW, "reset-confirm": NEW });
    await click("#reset-submit");
    expect($("#reset-code-error").textContent).toBe("Code or link is invalid or has expired");
    expect($("#reset-password-error").textContent).toBe(
      "New password is too common or too easy to guess",
    );
    expect(visible("#reset-form")).toBe(true);
  });

  it("shows a rate limit on the form line and goes back on cancel", async () => {
    ipc.backend.on("requestPasswordReset", () => {
      throw new IpcError({ kind: "rateLimited", message: "Too many requests", retryAfterSecs: 60 });
    });
    await click("#forgot-password");
    fill({ "reset-email": "ana@example.com" });
    await click("#reset-request-submit");
    expect($("#reset-request-form-error").textContent).toBe(
      "Too many requests (try again in 60 s)",
    );
    expect($("#reset-sent")).toBeNull();
    await click("#reset-cancel");
    expect(visible("#login-form")).toBe(true);
    expect($("#login-note")).toBeNull();
  });
});

describe("plain-http warning", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  const renderWith = (app: AppState, screen: "auth" | "server") =>
    render(() => (
      <AppProvider state={app}>
        {screen === "auth" ? <AuthScreen tab="login" /> : <ServerScreen current="http://x" />}
      </AppProvider>
    ));

  it("is shown on the auth screen only for an insecure server", () => {
    const app = createAppState({ name: "auth" });
    renderWith(app, "auth");
    expect($("#insecure-warning")).toBeNull();
    app.setInsecure(true);
    const warning = $("#insecure-warning");
    expect(warning.getAttribute("role")).toBe("alert");
    expect(warning.textContent).toContain("plain http");
    expect(warning.textContent).toContain("unencrypted");
  });

  it("appears on the server screen when the picked server is insecure", async () => {
    ipc.backend.on("setServer", (url: string) => ({ url: `${url}/`, insecure: true }));
    const app = createAppState({ name: "server" });
    renderWith(app, "server");
    expect($("#insecure-warning")).toBeNull();
    fill({ "server-url": "http://chat.example.com" });
    await click("#server-continue");
    expect(app.insecure()).toBe(true);
    expect(app.serverUrl()).toBe("http://chat.example.com/");
    expect($("#insecure-warning").textContent).toContain("plain http");
  });

  it("is cleared when the next server is safe", async () => {
    // A server with a private CA: pictures come through the app's own scheme.
    const pictureBase = "confab-media://localhost/";
    ipc.backend.on("setServer", (url: string) => ({ url, insecure: false, pictureBase }));
    const app = createAppState({ name: "server" });
    app.setInsecure(true);
    renderWith(app, "server");
    expect($("#insecure-warning")).not.toBeNull();
    fill({ "server-url": "https://chat.example.com" });
    await click("#server-continue");
    expect(app.insecure()).toBe(false);
    expect(app.pictureBase()).toBe(pictureBase);
    expect($("#insecure-warning")).toBeNull();
  });
});
