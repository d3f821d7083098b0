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

const { AuthScreen, RESEND_SENT } = await import("./auth");

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

const unconfirmed = () => {
  throw new IpcError({
    kind: "emailUnverified",
    message: "confirm your email address first: open the link mailed to you",
  });
};

describe("signing in before the address is confirmed", () => {
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

  it("says to confirm the address and sends the confirmation again to the email signed in with", async () => {
    ipc.backend.on("logIn", unconfirmed);
    ipc.backend.on("resendEmailVerification", () => null);
    expect($("#resend-form")).toBeNull();
    fill({ "login-login": " olga@example.com ", "login-password": "Correct-Horse-Battery-9" });
    await click("#login-submit");

    expect($("#login-form-error").textContent).toBe("Confirm your address first.");
    expect($("#resend-heading").textContent).toBe("Confirm your address first");
    // The address is known: no field to type it in, the button is ready.
    expect($("#resend-email")).toBeNull();
    expect(document.activeElement).toBe($("#resend-submit"));
    expect($("#resend-submit").textContent).toBe("Send the confirmation again");

    await click("#resend-submit");
    expect(ipc.backend.callsTo("resendEmailVerification")).toEqual([["olga@example.com"]]);
    expect($("#resend-sent").textContent).toBe(RESEND_SENT("olga@example.com"));
    expect(app.route()).toEqual({ name: "auth", tab: "login" });
  });

  it("asks for the address when a username was used, checks it, and shows the rate limit", async () => {
    ipc.backend.on("logIn", unconfirmed);
    ipc.backend.on("resendEmailVerification", () => {
      throw new IpcError({
        kind: "rateLimited",
        message: "too many attempts",
        retryAfterSecs: 60,
      });
    });
    fill({ "login-login": "olga", "login-password": "Correct-Horse-Battery-9" });
    await click("#login-submit");
    const email = $<HTMLInputElement>("#resend-email");
    expect(email).not.toBeNull();
    expect(document.activeElement).toBe(email);
    expect($(`label[for="resend-email"]`)).not.toBeNull();

    // Not an address: refused here, nothing sent.
    fill({ "resend-email": "olga" });
    await click("#resend-submit");
    expect(ipc.backend.callsTo("resendEmailVerification")).toEqual([]);
    expect(email.getAttribute("aria-invalid")).toBe("true");

    fill({ "resend-email": "olga@example.com" });
    await click("#resend-submit");
    expect(ipc.backend.callsTo("resendEmailVerification")).toEqual([["olga@example.com"]]);
    expect($("#resend-form-error").textContent).toBe("too many attempts (try again in 60 s)");
    expect($("#resend-sent")).toBeNull();
  });

  it("offers nothing for a wrong password, and drops the offer on the next try", async () => {
    ipc.backend.on("logIn", () => {
      throw new IpcError({
        kind: "invalid",
        message: "wrong login or password",
        fields: { login: "Wrong username, email or password." },
      });
    });
    fill({ "login-login": "olga", "login-password": "nope-nope-nope" });
    await click("#login-submit");
    expect($("#resend-form")).toBeNull();
    expect($("#login-login-error").textContent).toContain("Wrong username");

    ipc.backend.on("logIn", unconfirmed);
    await click("#login-submit");
    expect($("#resend-form")).not.toBeNull();
    ipc.backend.on("logIn", () => {
      throw new IpcError({ kind: "unreachable", message: "Cannot reach the server" });
    });
    await click("#login-submit");
    expect($("#resend-form")).toBeNull();
    expect($("#login-form-error").textContent).toBe("Cannot reach the server");
  });
});
