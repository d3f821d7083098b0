import { cleanup, render } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AppError, Me } from "../api";
import { AppProvider, type AppState, createAppState } from "../app/state";
import { type FakeBackend, flush, IpcError } from "../test/ipc";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { AuthScreen } = await import("./auth");

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

function fill(values: Record<string, string>) {
  for (const [id, value] of Object.entries(values)) {
    const input = $<HTMLInputElement>(`#${id}`);
    input.value = value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

const VALID = {
  "signup-username": "alice",
  "signup-email": "alice@example.com",
  "signup-password": "correct-horse-battery",
  "signup-confirm": "correct-horse-battery",
};

describe("sign-up form", () => {
  let app: AppState;
  const signUpCalls = () => ipc.backend.callsTo("signUp");

  beforeEach(() => {
    ipc.backend.reset();
    app = createAppState({ name: "auth", tab: "signup" });
    app.setServerUrl("http://127.0.0.1:8080");
    render(() => (
      <AppProvider state={app}>
        <AuthScreen tab="signup" />
      </AppProvider>
    ));
  });
  afterEach(cleanup);

  const submit = async () => {
    $<HTMLButtonElement>("#signup-submit").click();
    await flush();
  };
  void ({} as AppError);

  it("shows the server's field errors on the right fields", async () => {
    const error: AppError = {
      kind: "invalid",
      message: "Some fields are invalid",
      fields: {
        password: "is too common or too easy to guess",
        username: "is already taken",
      },
    };
    ipc.backend.on("signUp", () => {
      throw new IpcError(error);
    });
    fill(VALID);
    await submit();

    expect(signUpCalls()).toEqual([
      [
        {
          username: "alice",
          email: "alice@example.com",
          password: "correct-horse-battery",
          confirmPassword: "correct-horse-battery",
        },
      ],
    ]);
    const password = $<HTMLInputElement>("#signup-password");
    expect($("#signup-password-error").textContent).toBe(
      "Password is too common or too easy to guess",
    );
    expect(password.getAttribute("aria-invalid")).toBe("true");
    expect(password.getAttribute("aria-describedby")).toContain("signup-password-error");
    expect($("#signup-username-error").textContent).toBe("Username is already taken");
    expect($("#signup-email-error").textContent).toBe("");
    expect($("#signup-email").hasAttribute("aria-invalid")).toBe(false);
    expect(document.activeElement).toBe($("#signup-username"));
    expect(app.route()).toEqual({ name: "auth", tab: "signup" });
  });

  it("maps confirm_password to the confirmation field and conflicts like invalid", async () => {
    ipc.backend.on("signUp", () => {
      throw new IpcError({
        kind: "conflict",
        message: "Taken",
        fields: { email: "is already registered", confirm_password: "does not match the password" },
      });
    });
    fill(VALID);
    await submit();
    expect($("#signup-email-error").textContent).toBe("Email is already registered");
    expect($("#signup-confirm-error").textContent).toBe("Confirmation does not match the password");
  });

  it("shows an error without fields on the form", async () => {
    ipc.backend.on("signUp", () => {
      throw new IpcError({ kind: "unreachable", message: "Cannot reach the server" });
    });
    fill(VALID);
    await submit();
    expect($("#signup-form-error").textContent).toBe("Cannot reach the server");
    expect($("#signup-password-error").textContent).toBe("");
  });

  it("checks the rules before calling the server", async () => {
    fill({
      "signup-username": "ab",
      "signup-email": "alice@localhost",
      "signup-password": "1234567",
      "signup-confirm": "7654321",
    });
    await submit();
    expect(signUpCalls()).toEqual([]);
    expect($("#signup-username-error").textContent).toMatch(/3 to 32/);
    expect($("#signup-email-error").textContent).toMatch(/not a valid email/);
    expect($("#signup-password-error").textContent).toMatch(/8 to 128/);
    expect($("#signup-confirm-error").textContent).toBe("Passwords do not match");
  });

  it("clears a field's error when it is edited", async () => {
    fill({ ...VALID, "signup-username": "ab" });
    await submit();
    expect($("#signup-username").getAttribute("aria-invalid")).toBe("true");
    fill({ "signup-username": "abc" });
    expect($("#signup-username-error").textContent).toBe("");
    expect($("#signup-username").hasAttribute("aria-invalid")).toBe(false);
  });

  it("goes to the shell when the account is made", async () => {
    const me: Me = {
      id: "1",
      username: "alice",
      email: "alice@example.com",
      displayName: null,
      avatarUrl: null,
      statusText: null,
    };
    ipc.backend.on("signUp", () => me);
    fill({ ...VALID, "signup-username": "  Alice " });
    await submit();
    expect(signUpCalls()[0]?.[0]).toMatchObject({ username: "alice" });
    expect(app.me()).toEqual(me);
    expect(app.route()).toEqual({ name: "shell" });
  });

  it("switches tabs with the arrow keys", async () => {
    const signup = $<HTMLButtonElement>("#tab-signup");
    signup.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    expect($("#tab-login").getAttribute("aria-selected")).toBe("true");
    expect($("#panel-signup").hidden).toBe(true);
    expect(document.activeElement).toBe($("#tab-login"));
  });

  it("has a label for every input", () => {
    for (const input of document.querySelectorAll("input")) {
      expect(document.querySelector(`label[for="${input.id}"]`), input.id).not.toBeNull();
    }
  });
});
