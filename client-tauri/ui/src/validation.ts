// Client-side checks mirroring the server's rules (signal-server/src/auth/validate.rs and
// shared/src/api.rs). Keys of the returned maps are the server's field names, so client and
// server errors land on the same fields. The server still decides (and also refuses
// easily guessed passwords, which is not checked here).

import { SERVER_LIMITS, type SignUpForm } from "./api";

// The server's limits, exported by Rust through the bindings (so they cannot drift), plus
// the room form's default size.
export const LIMITS = { ...SERVER_LIMITS, roomDefaultParticipants: 8 } as const;

export type FieldErrors = Record<string, string>;

/** Length in Unicode code points, as the server counts (Rust's chars().count()). */
export function charCount(s: string): number {
  return Array.from(s).length;
}

/** The server trims and lowercases usernames before checking them. */
export function normalizeUsername(raw: string): string {
  return raw.trim().toLowerCase();
}

export function usernameError(raw: string): string | null {
  const name = normalizeUsername(raw);
  const len = charCount(name);
  if (len === 0) return "Username is required";
  if (len < LIMITS.usernameMin || len > LIMITS.usernameMax) {
    return `Username must be ${LIMITS.usernameMin} to ${LIMITS.usernameMax} characters long`;
  }
  if (!/^[a-z0-9_.-]+$/.test(name)) {
    return "Username may contain only lowercase letters a-z, digits and _ . -";
  }
  return null;
}

export function emailError(raw: string): string | null {
  const email = raw.trim();
  if (email === "") return "Email is required";
  const parts = email.split("@");
  const local = parts[0] ?? "";
  const domain = parts[1] ?? "";
  const dot = domain.lastIndexOf(".");
  const ok =
    email.length <= LIMITS.emailMax &&
    !/\s/.test(email) &&
    parts.length === 2 &&
    local !== "" &&
    dot > 0 &&
    dot < domain.length - 1;
  return ok ? null : "Email is not a valid email address";
}

export function passwordError(password: string): string | null {
  const len = charCount(password);
  if (len === 0) return "Password is required";
  if (len < LIMITS.passwordMin || len > LIMITS.passwordMax) {
    return `Password must be ${LIMITS.passwordMin} to ${LIMITS.passwordMax} characters long`;
  }
  return null;
}

export function confirmError(password: string, confirm: string): string | null {
  if (confirm === "" && password !== "") return "Repeat the password to confirm it";
  return confirm === password ? null : "Passwords do not match";
}

function collect(entries: [string, string | null][]): FieldErrors {
  const errors: FieldErrors = {};
  for (const [field, message] of entries) if (message) errors[field] = message;
  return errors;
}

export function validateSignUp(form: SignUpForm): FieldErrors {
  return collect([
    ["username", usernameError(form.username)],
    ["email", emailError(form.email)],
    ["password", passwordError(form.password)],
    ["confirm_password", confirmError(form.password, form.confirmPassword)],
  ]);
}

export function validateLogIn(login: string, password: string): FieldErrors {
  return collect([
    ["login", login.trim() === "" ? "Enter your username or email" : null],
    ["password", password === "" ? "Password is required" : null],
  ]);
}

export function validateResetRequest(email: string): FieldErrors {
  return collect([["email", emailError(email)]]);
}

/** The new-password form of a reset: keys are the server's (token = the mailed code). */
export function validateReset(code: string, password: string, confirm: string): FieldErrors {
  return collect([
    ["token", code.trim() === "" ? "Paste the code or the link from the mail" : null],
    ["password", passwordError(password)],
    ["confirm_password", confirmError(password, confirm)],
  ]);
}

export function roomTitleError(title: string): string | null {
  const len = charCount(title.trim());
  if (len === 0) return "Title is required";
  if (len > LIMITS.roomTitleMax)
    return `Title must be at most ${LIMITS.roomTitleMax} characters long`;
  return null;
}

export function maxParticipantsError(raw: string): string | null {
  const n = Number(raw);
  if (
    raw.trim() === "" ||
    !Number.isInteger(n) ||
    n < LIMITS.roomMinParticipants ||
    n > LIMITS.roomMaxParticipants
  ) {
    return `Choose a whole number from ${LIMITS.roomMinParticipants} to ${LIMITS.roomMaxParticipants}`;
  }
  return null;
}

/**
 * Server field messages are fragments ("is too common or too easy to guess"): prefix them
 * with the field's label. Full sentences are kept as they are.
 */
export function fieldMessage(label: string, message: string): string {
  return /^[a-z]/.test(message) ? `${label} ${message}` : message;
}
