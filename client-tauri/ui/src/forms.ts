// Form fields with a label, an optional hint and an error line wired through
// aria-describedby / aria-invalid, and helpers to show client or server field errors.

import { ApiError } from "./api";
import { h } from "./dom";
import { fieldMessage } from "./validation";

type InputAttrs = Record<string, string | number | boolean | null | undefined>;

export interface FieldSpec {
  id: string;
  label: string;
  hint?: string;
  attrs?: InputAttrs;
}

export interface Field {
  wrap: HTMLElement;
  input: HTMLInputElement;
  error: HTMLElement;
}

export function field(spec: FieldSpec): Field {
  const errorId = `${spec.id}-error`;
  const hintId = spec.hint ? `${spec.id}-hint` : null;
  const input = h("input", {
    id: spec.id,
    name: spec.id,
    type: "text",
    "aria-describedby": hintId ? `${hintId} ${errorId}` : errorId,
    ...spec.attrs,
  });
  const error = h("p", { id: errorId, class: "field-error" });
  const wrap = h(
    "div",
    { class: "field" },
    h("label", { for: spec.id }, spec.label),
    input,
    hintId ? h("p", { id: hintId, class: "field-hint" }, spec.hint) : null,
    error,
  );
  input.addEventListener("input", () => setFieldError(input, null));
  return { wrap, input, error };
}

export function setFieldError(input: HTMLInputElement, message: string | null): void {
  const error = document.getElementById(`${input.id}-error`);
  if (error) error.textContent = message ?? "";
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

/** The form-level error line (for errors that belong to no single field). */
export function formError(formId: string): HTMLElement {
  return h("p", { id: `${formId}-error`, class: "form-error", role: "alert" });
}

export interface FieldMap {
  /** server field name -> [input, label used to complete server message fragments] */
  [serverName: string]: [HTMLInputElement, string];
}

/**
 * Shows errors (keyed by server field name) on their fields; clears the others. Errors for
 * fields the form does not have go to the form-level line. Focuses the first invalid field.
 * Returns true when any error was shown.
 */
export function showFieldErrors(
  form: HTMLFormElement,
  fields: FieldMap,
  errors: Partial<Record<string, string>>,
  fallback?: string,
): boolean {
  let first: HTMLInputElement | null = null;
  const stray: string[] = [];
  for (const [name, [input, label]] of Object.entries(fields)) {
    const msg = errors[name];
    setFieldError(input, msg ? fieldMessage(label, msg) : null);
    if (msg && !first) first = input;
  }
  for (const [name, msg] of Object.entries(errors)) {
    if (msg && !(name in fields)) stray.push(fieldMessage(name, msg));
  }
  const formLine = document.getElementById(`${form.id}-error`);
  const formText = stray.length > 0 ? stray.join(". ") : first ? "" : (fallback ?? "");
  if (formLine) formLine.textContent = formText;
  first?.focus();
  return first !== null || formText !== "";
}

export function clearFormErrors(form: HTMLFormElement, fields: FieldMap): void {
  showFieldErrors(form, fields, {});
}

/** Shows an ApiError on a form: field errors on fields, anything else on the form line. */
export function showApiError(form: HTMLFormElement, fields: FieldMap, err: unknown): void {
  const e = err instanceof ApiError ? err.error : null;
  if (e && (e.kind === "invalid" || e.kind === "conflict") && Object.keys(e.fields).length > 0) {
    showFieldErrors(form, fields, e.fields);
    return;
  }
  showFieldErrors(form, fields, {}, describeError(err));
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const e = err.error;
    if (e.kind === "rateLimited" && e.retryAfterSecs) {
      return `${e.message} (try again in ${e.retryAfterSecs} s)`;
    }
    return e.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export function setBusy(form: HTMLFormElement, busy: boolean): void {
  form.setAttribute("aria-busy", String(busy));
  for (const b of form.querySelectorAll<HTMLButtonElement>("button[type=submit]")) {
    b.disabled = busy;
  }
}

/** Runs a form's submission with the form marked busy; a failure goes to `onError`. */
export async function whileBusy(
  form: HTMLFormElement,
  action: () => Promise<void>,
  onError: (err: unknown) => void,
): Promise<void> {
  setBusy(form, true);
  try {
    await action();
  } catch (err) {
    onError(err);
  } finally {
    setBusy(form, false);
  }
}

/** Like showApiError, but a signed-out error goes to the app (which shows the Auth screen). */
export function reportFormError(
  app: { fail(err: unknown): void },
  form: HTMLFormElement,
  fields: FieldMap,
  err: unknown,
): void {
  if (err instanceof ApiError && err.kind === "signedOut") app.fail(err);
  else showApiError(form, fields, err);
}
