// Forms: labelled fields with a hint and an error line wired through aria-describedby /
// aria-invalid; client or server field errors shown on their fields (keyed by the server's
// field names); a form-level error line; a busy state while the form is submitted.

import { createSignal, type JSX, Show, splitProps } from "solid-js";
import { createStore } from "solid-js/store";
import { ApiError } from "./api";
import { describeError } from "./errors";
import { fieldMessage, LIMITS } from "./validation";

export interface FieldInfo {
  /** The input's element id (its error line is `${id}-error`). */
  id: string;
  /** The label, also used to complete server message fragments ("is already taken"). */
  label: string;
}

export type FieldErrors = Partial<Record<string, string>>;

export interface Form {
  readonly id: string;
  readonly fields: Record<string, FieldInfo>;
  error(name: string): string | undefined;
  formError(): string;
  busy(): boolean;
  register(name: string): (el: HTMLInputElement) => void;
  /** The input's current value ("" before it is mounted). */
  value(name: string): string;
  input(name: string): HTMLInputElement | undefined;
  clear(name: string): void;
  /**
   * Shows errors (keyed by server field name) on their fields and clears the others; errors
   * for fields the form does not have go to the form line; focuses the first invalid field.
   * Returns true when any error was shown.
   */
  show(errors: FieldErrors, fallback?: string): boolean;
  /** An ApiError on the form: field errors on fields, anything else on the form line. */
  showError(err: unknown): void;
  /** Runs the submission with the form busy; a failure goes to `onError` (default showError). */
  run(action: () => Promise<void>, onError?: (err: unknown) => void): Promise<void>;
}

export function createForm(id: string, fields: Record<string, FieldInfo>): Form {
  const [errors, setErrors] = createStore<Record<string, string | undefined>>({});
  const [formError, setFormError] = createSignal("");
  const [busy, setBusy] = createSignal(false);
  const inputs: Record<string, HTMLInputElement> = {};

  const form: Form = {
    id,
    fields,
    error: (name) => errors[name],
    formError,
    busy,
    register: (name) => (el) => {
      inputs[name] = el;
    },
    value: (name) => inputs[name]?.value ?? "",
    input: (name) => inputs[name],
    clear: (name) => setErrors(name, undefined),
    show(errs, fallback) {
      let first: HTMLInputElement | undefined;
      const stray: string[] = [];
      for (const [name, info] of Object.entries(fields)) {
        const msg = errs[name];
        setErrors(name, msg ? fieldMessage(info.label, msg) : undefined);
        if (msg && !first) first = inputs[name];
      }
      for (const [name, msg] of Object.entries(errs)) {
        if (msg && !(name in fields)) stray.push(fieldMessage(name, msg));
      }
      const line = stray.length > 0 ? stray.join(". ") : first ? "" : (fallback ?? "");
      setFormError(line);
      first?.focus();
      return first !== undefined || line !== "";
    },
    showError(err) {
      const e = err instanceof ApiError ? err.error : null;
      if (e && (e.kind === "invalid" || e.kind === "conflict") && Object.keys(e.fields).length) {
        form.show(e.fields);
        return;
      }
      form.show({}, describeError(err));
    },
    async run(action, onError = form.showError) {
      setBusy(true);
      try {
        await action();
      } catch (err) {
        onError(err);
      } finally {
        setBusy(false);
      }
    },
  };
  return form;
}

type InputProps = Omit<JSX.InputHTMLAttributes<HTMLInputElement>, "id" | "ref" | "form">;

export function Field(props: { form: Form; name: string; hint?: string } & InputProps) {
  const [own, rest] = splitProps(props, ["form", "name", "hint"]);
  const info = () => {
    const f = own.form.fields[own.name];
    if (!f) throw new Error(`no field ${own.name} in ${own.form.id}`);
    return f;
  };
  const errorId = () => `${info().id}-error`;
  const hintId = () => `${info().id}-hint`;
  return (
    <div class="field">
      <label for={info().id}>{info().label}</label>
      <input
        type="text"
        {...rest}
        id={info().id}
        name={info().id}
        ref={own.form.register(own.name)}
        aria-describedby={own.hint ? `${hintId()} ${errorId()}` : errorId()}
        aria-invalid={own.form.error(own.name) ? "true" : undefined}
        onInput={() => own.form.clear(own.name)}
      />
      <Show when={own.hint}>
        <p id={hintId()} class="field-hint">
          {own.hint}
        </p>
      </Show>
      <p id={errorId()} class="field-error">
        {own.form.error(own.name) ?? ""}
      </p>
    </div>
  );
}

export function FormError(props: { form: Form }) {
  return (
    <p id={`${props.form.id}-error`} class="form-error" role="alert">
      {props.form.formError()}
    </p>
  );
}

/** A new password and its confirmation (sign-up and password reset). */
export function NewPasswordFields(props: { form: Form }) {
  return (
    <>
      <Field
        form={props.form}
        name="password"
        hint={`${LIMITS.passwordMin}-${LIMITS.passwordMax} characters, not easy to guess.`}
        type="password"
        autocomplete="new-password"
        required
      />
      <Field
        form={props.form}
        name="confirm_password"
        type="password"
        autocomplete="new-password"
        required
      />
    </>
  );
}
