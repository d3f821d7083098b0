import { describe, expect, it } from "vitest";
import {
  confirmError,
  emailError,
  fieldMessage,
  maxParticipantsError,
  passwordError,
  roomTitleError,
  usernameError,
  validateLogIn,
  validateSignUp,
} from "./validation";

describe("usernameError", () => {
  it("accepts 3 and 32 characters, refuses 2 and 33", () => {
    expect(usernameError("ab")).toMatch(/3 to 32/);
    expect(usernameError("abc")).toBeNull();
    expect(usernameError("a".repeat(32))).toBeNull();
    expect(usernameError("a".repeat(33))).toMatch(/3 to 32/);
  });

  it("requires a value", () => {
    expect(usernameError("")).toBe("Username is required");
    expect(usernameError("   ")).toBe("Username is required");
  });

  it("allows only a-z, digits and _ . -", () => {
    expect(usernameError("alice_1.b-c")).toBeNull();
    for (const bad of ["has space", "émile", "bob!", "a@b"]) {
      expect(usernameError(bad), bad).toMatch(/lowercase letters a-z/);
    }
  });

  it("lowercases and trims like the server before checking", () => {
    expect(usernameError("  Alice_1 ")).toBeNull();
    // Trimming happens before the length check: " ab " is 2 characters.
    expect(usernameError(" ab ")).toMatch(/3 to 32/);
  });
});

describe("emailError", () => {
  it("accepts ordinary addresses", () => {
    expect(emailError("bob@example.com")).toBeNull();
    expect(emailError("  Bob@Example.COM ")).toBeNull();
  });

  it("refuses malformed ones", () => {
    for (const bad of [
      "bob",
      "bob@",
      "@example.com",
      "bob@@example.com",
      "bob@localhost",
      "bob@example.",
      "bob@.com",
      "bo b@example.com",
      `${"a".repeat(250)}@ex.com`,
    ]) {
      expect(emailError(bad), bad).toBe("Email is not a valid email address");
    }
    expect(emailError("")).toBe("Email is required");
  });
});

describe("passwordError", () => {
  it("accepts 8 and 128 characters, refuses 7 and 129", () => {
    expect(passwordError("a".repeat(7))).toMatch(/8 to 128/);
    expect(passwordError("a".repeat(8))).toBeNull();
    expect(passwordError("a".repeat(128))).toBeNull();
    expect(passwordError("a".repeat(129))).toMatch(/8 to 128/);
    expect(passwordError("")).toBe("Password is required");
  });

  it("counts code points, as the server does", () => {
    // 8 emoji are 16 UTF-16 units but 8 characters.
    expect(passwordError("😀".repeat(8))).toBeNull();
    expect(passwordError("😀".repeat(7))).toMatch(/8 to 128/);
  });
});

describe("confirmError", () => {
  it("must equal the password", () => {
    expect(confirmError("correct-horse", "correct-horse")).toBeNull();
    expect(confirmError("correct-horse", "correct-hors")).toBe("Passwords do not match");
    expect(confirmError("correct-horse", "")).toMatch(/Repeat the password/);
  });
});

describe("validateSignUp", () => {
  it("keys errors by the server's field names", () => {
    const errors = validateSignUp({
      username: "x",
      email: "nope",
      password: "short",
      confirmPassword: "other",
    });
    expect(Object.keys(errors).sort()).toEqual([
      "confirm_password",
      "email",
      "password",
      "username",
    ]);
  });

  it("is empty for a valid form", () => {
    expect(
      validateSignUp({
        username: "alice",
        email: "alice@example.com",
        password: "correct-horse-battery",
        confirmPassword: "correct-horse-battery",
      }),
    ).toEqual({});
  });
});

describe("validateLogIn", () => {
  it("requires both fields", () => {
    expect(Object.keys(validateLogIn(" ", ""))).toEqual(["login", "password"]);
    expect(validateLogIn("alice", "x")).toEqual({});
  });
});

describe("room rules", () => {
  it("title is 1 to 100 characters", () => {
    expect(roomTitleError("")).toMatch(/required/);
    expect(roomTitleError("a")).toBeNull();
    expect(roomTitleError("a".repeat(100))).toBeNull();
    expect(roomTitleError("a".repeat(101))).toMatch(/at most 100/);
  });

  it("max participants is a whole number from 2 to 16", () => {
    expect(maxParticipantsError("2")).toBeNull();
    expect(maxParticipantsError("16")).toBeNull();
    for (const bad of ["1", "17", "", "8.5", "abc"]) {
      expect(maxParticipantsError(bad), bad).not.toBeNull();
    }
  });
});

describe("fieldMessage", () => {
  it("completes server fragments with the label and keeps sentences", () => {
    expect(fieldMessage("Password", "is too common or too easy to guess")).toBe(
      "Password is too common or too easy to guess",
    );
    expect(fieldMessage("Email", "Email is taken")).toBe("Email is taken");
  });
});
