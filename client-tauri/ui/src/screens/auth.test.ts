import { beforeEach, describe, expect, it, vi } from "vitest";
import type { AppError, Me } from "../api";
import type { App } from "../app";

vi.mock("../api", async (importOriginal) => {
  const real = await importOriginal<typeof import("../api")>();
  return {
    ...real,
    api: { signUp: vi.fn(), logIn: vi.fn() },
  };
});

const { api, ApiError } = await import("../api");
const { authScreen } = await import("./auth");

const signUp = vi.mocked(api.signUp);

function fakeApp(): App {
  return {
    me: null,
    serverUrl: "http://127.0.0.1:8080",
    go: vi.fn(),
    fail: vi.fn(),
    signedOut: vi.fn(),
  };
}

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

function fill(values: Record<string, string>) {
  for (const [id, value] of Object.entries(values)) {
    const input = $<HTMLInputElement>(`#${id}`);
    input.value = value;
    input.dispatchEvent(new Event("input"));
  }
}

const VALID = {
  "signup-username": "alice",
  "signup-email": "alice@example.com",
  "signup-password": "correct-horse-battery",
  "signup-confirm": "correct-horse-battery",
};

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("sign-up form", () => {
  let app: App;

  beforeEach(() => {
    signUp.mockReset();
    app = fakeApp();
    document.body.replaceChildren(authScreen(app, "signup").el);
  });

  const submit = async () => {
    $<HTMLButtonElement>("#signup-submit").click();
    await flush();
  };

  it("shows the server's field errors on the right fields", async () => {
    const error: AppError = {
      kind: "invalid",
      message: "Some fields are invalid",
      fields: {
        password: "is too common or too easy to guess",
        username: "is already taken",
      },
    };
    signUp.mockRejectedValueOnce(new ApiError(error));
    fill(VALID);
    await submit();

    expect(signUp).toHaveBeenCalledWith({
      username: "alice",
      email: "alice@example.com",
      password: "correct-horse-battery",
      confirmPassword: "correct-horse-battery",
    });
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
    expect(app.go).not.toHaveBeenCalled();
  });

  it("maps confirm_password to the confirmation field and conflicts like invalid", async () => {
    signUp.mockRejectedValueOnce(
      new ApiError({
        kind: "conflict",
        message: "Taken",
        fields: { email: "is already registered", confirm_password: "does not match the password" },
      }),
    );
    fill(VALID);
    await submit();
    expect($("#signup-email-error").textContent).toBe("Email is already registered");
    expect($("#signup-confirm-error").textContent).toBe("Confirmation does not match the password");
  });

  it("shows an error without fields on the form", async () => {
    signUp.mockRejectedValueOnce(
      new ApiError({ kind: "unreachable", message: "Cannot reach the server" }),
    );
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
    expect(signUp).not.toHaveBeenCalled();
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

  it("goes to Rooms when the account is made", async () => {
    const me: Me = { id: "1", username: "alice", email: "alice@example.com", displayName: null };
    signUp.mockResolvedValueOnce(me);
    fill({ ...VALID, "signup-username": "  Alice " });
    await submit();
    expect(signUp.mock.calls[0]?.[0].username).toBe("alice");
    expect(app.me).toEqual(me);
    expect(app.go).toHaveBeenCalledWith({ name: "rooms" });
  });

  it("has a label for every input", () => {
    for (const input of document.querySelectorAll("input")) {
      expect(document.querySelector(`label[for="${input.id}"]`), input.id).not.toBeNull();
    }
  });
});
