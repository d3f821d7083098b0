// "Forgot password?": ask for a mail (the answer is the same whether or not an account has
// the address), then set a new password with the code or the whole link from the mail.

import { createSignal, Match, onMount, Switch } from "solid-js";
import { api } from "../api";
import { createForm, Field, FormError, NewPasswordFields } from "../forms";
import { validateReset, validateResetRequest } from "../validation";

/** What the sign-in form shows once the password is changed. */
export const RESET_DONE =
  "Your password was changed and every session signed out. Log in with the new password.";

export const RESET_SENT =
  "If an account has this address, we sent a link to it. It works for 30 minutes: open the mail, then paste the link (or the code in it) below.";

function RequestForm(props: { onSent: (email: string) => void; onHaveCode: () => void }) {
  const form = createForm("reset-request-form", {
    email: { id: "reset-email", label: "Email" },
  });
  onMount(() => form.input("email")?.focus());
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const email = form.value("email").trim();
    if (form.show(validateResetRequest(email))) return;
    await form.run(async () => {
      await api.requestPasswordReset(email);
      props.onSent(email);
    });
  };
  return (
    <form id="reset-request-form" class="stack" novalidate onSubmit={onSubmit}>
      <p class="muted">Enter your account's email address and we will mail you a reset link.</p>
      <Field form={form} name="email" type="email" autocomplete="email" required />
      <FormError form={form} />
      <button id="reset-request-submit" type="submit" class="primary" disabled={form.busy()}>
        Send reset link
      </button>
      <button id="reset-have-code" type="button" class="link" onClick={props.onHaveCode}>
        I already have a code
      </button>
    </form>
  );
}

function NewPasswordForm(props: { sentTo: string | null; onDone: () => void }) {
  const form = createForm("reset-form", {
    token: { id: "reset-code", label: "Code or link" },
    password: { id: "reset-password", label: "New password" },
    confirm_password: { id: "reset-confirm", label: "Confirmation" },
  });
  onMount(() => form.input("token")?.focus());
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const code = form.value("token").trim();
    const password = form.value("password");
    const confirm = form.value("confirm_password");
    if (form.show(validateReset(code, password, confirm))) return;
    await form.run(async () => {
      await api.confirmPasswordReset(code, password, confirm);
      props.onDone();
    });
  };
  return (
    <form id="reset-form" class="stack" novalidate onSubmit={onSubmit}>
      {props.sentTo !== null && (
        <p id="reset-sent" class="auth-note" role="status">
          {RESET_SENT}
        </p>
      )}
      <Field
        form={form}
        name="token"
        hint="The whole link from the mail, or just the code after token=."
        autocomplete="one-time-code"
        autocapitalize="none"
        spellcheck={false}
        required
      />
      <NewPasswordFields form={form} />
      <FormError form={form} />
      <button id="reset-submit" type="submit" class="primary" disabled={form.busy()}>
        Set new password
      </button>
    </form>
  );
}

export function ResetPassword(props: { onDone: () => void; onCancel: () => void }) {
  const [step, setStep] = createSignal<"request" | "confirm">("request");
  const [sentTo, setSentTo] = createSignal<string | null>(null);
  return (
    <section id="reset-panel" class="stack" aria-labelledby="reset-title">
      <h2 id="reset-title">Reset your password</h2>
      <Switch>
        <Match when={step() === "request"}>
          <RequestForm
            onSent={(email) => {
              setSentTo(email);
              setStep("confirm");
            }}
            onHaveCode={() => setStep("confirm")}
          />
        </Match>
        <Match when={step() === "confirm"}>
          <NewPasswordForm sentTo={sentTo()} onDone={props.onDone} />
        </Match>
      </Switch>
      <button id="reset-cancel" type="button" class="link" onClick={props.onCancel}>
        Back to log in
      </button>
    </section>
  );
}
