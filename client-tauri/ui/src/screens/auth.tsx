// Auth screen: "Sign up" and "Log in" forms on tabs, and a way back to the Server screen.

import { createSignal, For, onMount, Show } from "solid-js";
import { ApiError, api } from "../api";
import { useApp } from "../app/state";
import { createForm, Field, FormError, NewPasswordFields } from "../forms";
import {
  emailError,
  LIMITS,
  normalizeUsername,
  validateLogIn,
  validateResetRequest,
  validateSignUp,
} from "../validation";
import { InsecureWarning } from "./insecure";
import { RESET_DONE, ResetPassword } from "./reset";

export type AuthTab = "signup" | "login";

function SignUpForm() {
  const app = useApp();
  const form = createForm("signup-form", {
    username: { id: "signup-username", label: "Username" },
    email: { id: "signup-email", label: "Email" },
    password: { id: "signup-password", label: "Password" },
    confirm_password: { id: "signup-confirm", label: "Confirmation" },
  });
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const values = {
      username: normalizeUsername(form.value("username")),
      email: form.value("email").trim(),
      password: form.value("password"),
      confirmPassword: form.value("confirm_password"),
    };
    if (form.show(validateSignUp(values))) return;
    await form.run(async () => {
      app.setMe(await api.signUp(values));
      app.go({ name: "shell" });
    });
  };
  return (
    <form id="signup-form" class="stack" novalidate onSubmit={onSubmit}>
      <Field
        form={form}
        name="username"
        hint={`${LIMITS.usernameMin}-${LIMITS.usernameMax} characters: lowercase letters a-z, digits and _ . - (capitals are made lowercase).`}
        autocomplete="username"
        autocapitalize="none"
        spellcheck={false}
        required
        onChange={(e) => {
          e.currentTarget.value = normalizeUsername(e.currentTarget.value);
        }}
      />
      <Field form={form} name="email" type="email" autocomplete="email" required />
      <NewPasswordFields form={form} />
      <FormError form={form} />
      <button id="signup-submit" type="submit" class="primary" disabled={form.busy()}>
        Create account
      </button>
    </form>
  );
}

/** What the sign-in form says when the password is right but the address unconfirmed. */
export const UNCONFIRMED = "Confirm your address first";

/** What a resend is answered with (the server says the same for any address). */
export const RESEND_SENT = (email: string) =>
  `If an account at ${email} waits for confirmation, a new link is on its way. Open it, then log in. The links mailed before no longer work.`;

/**
 * "Confirm your address first" with a "Send the confirmation again" button. Signing in
 * with an email address sends to it; with a username, the address is asked for.
 */
function ResendConfirmation(props: { login: string }) {
  const form = createForm("resend-form", {
    email: { id: "resend-email", label: "Your account's email" },
  });
  const [sent, setSent] = createSignal("");
  // Signed in with an address (a username holds no "@"): send to it, no need to ask.
  const known = () => (props.login.includes("@") && !emailError(props.login) ? props.login : null);
  onMount(() => (form.input("email") ?? document.getElementById("resend-submit"))?.focus());
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const email = known() ?? form.value("email").trim();
    setSent("");
    if (form.show(validateResetRequest(email))) return;
    await form.run(async () => {
      await api.resendEmailVerification(email);
      setSent(RESEND_SENT(email));
    });
  };
  return (
    <form
      id="resend-form"
      class="stack auth-unconfirmed"
      novalidate
      aria-labelledby="resend-heading"
      onSubmit={onSubmit}
    >
      <h2 id="resend-heading">{UNCONFIRMED}</h2>
      <p class="muted">
        Your password is right, but this account's email address is not confirmed yet. Open the link
        we mailed you when you signed up, or ask for a new one.
      </p>
      <Show when={!known()}>
        <Field form={form} name="email" type="email" autocomplete="email" required />
      </Show>
      <FormError form={form} />
      <Show when={sent()}>
        <p id="resend-sent" class="auth-note" role="status">
          {sent()}
        </p>
      </Show>
      <button id="resend-submit" type="submit" disabled={form.busy()}>
        Send the confirmation again
      </button>
    </form>
  );
}

function LogInForm(props: { note: string; onForgot: () => void }) {
  const app = useApp();
  const form = createForm("login-form", {
    login: { id: "login-login", label: "Username or email" },
    password: { id: "login-password", label: "Password" },
  });
  // The login that was refused as unconfirmed (the resend offer shows while it is set).
  const [unconfirmed, setUnconfirmed] = createSignal<string | null>(null);
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const who = form.value("login").trim();
    const password = form.value("password");
    setUnconfirmed(null);
    if (form.show(validateLogIn(who, password))) return;
    await form.run(
      async () => {
        app.setMe(await api.logIn(who, password));
        app.go({ name: "shell" });
      },
      (err) => {
        if (err instanceof ApiError && err.kind === "emailUnverified") {
          form.show({}, `${UNCONFIRMED}.`);
          setUnconfirmed(who);
        } else {
          form.showError(err);
        }
      },
    );
  };
  return (
    <>
      <form id="login-form" class="stack" novalidate onSubmit={onSubmit}>
        <Show when={props.note}>
          <p id="login-note" class="auth-note" role="status">
            {props.note}
          </p>
        </Show>
        <Field
          form={form}
          name="login"
          autocomplete="username"
          autocapitalize="none"
          spellcheck={false}
          required
        />
        <Field
          form={form}
          name="password"
          type="password"
          autocomplete="current-password"
          required
        />
        <FormError form={form} />
        <button id="login-submit" type="submit" class="primary" disabled={form.busy()}>
          Log in
        </button>
        <button id="forgot-password" type="button" class="link" onClick={props.onForgot}>
          Forgot password?
        </button>
      </form>
      <Show when={unconfirmed()} keyed>
        {(login) => <ResendConfirmation login={login} />}
      </Show>
    </>
  );
}

const ORDER: AuthTab[] = ["signup", "login"];
const LABELS: Record<AuthTab, string> = { signup: "Sign up", login: "Log in" };

export function AuthScreen(props: { tab?: AuthTab }) {
  const app = useApp();
  const [tab, setTab] = createSignal<AuthTab>(props.tab ?? "login");
  const [resetting, setResetting] = createSignal(false);
  const [note, setNote] = createSignal("");
  const backToLogIn = (message: string) => {
    setResetting(false);
    setNote(message);
    setTab("login");
    queueMicrotask(() => document.getElementById("login-login")?.focus());
  };
  const buttons: Partial<Record<AuthTab, HTMLButtonElement>> = {};
  const onKey = (e: KeyboardEvent, i: number) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    const next = ORDER[(i + 1) % ORDER.length] ?? "login";
    setTab(next);
    buttons[next]?.focus();
  };
  return (
    <section id="auth-screen" class="screen centered">
      <h1 tabIndex={-1}>Welcome to Confab</h1>
      <div class="card stack">
        <InsecureWarning />
        <Show when={resetting()}>
          <ResetPassword onDone={() => backToLogIn(RESET_DONE)} onCancel={() => backToLogIn("")} />
        </Show>
        <div role="tablist" hidden={resetting()} aria-label="Account" class="tabs">
          <For each={ORDER}>
            {(t, i) => (
              <button
                ref={(el) => {
                  buttons[t] = el;
                }}
                type="button"
                role="tab"
                id={`tab-${t}`}
                aria-controls={`panel-${t}`}
                aria-selected={tab() === t ? "true" : "false"}
                tabIndex={tab() === t ? 0 : -1}
                onClick={() => setTab(t)}
                onKeyDown={(e) => onKey(e, i())}
              >
                {LABELS[t]}
              </button>
            )}
          </For>
        </div>
        <div
          id="panel-signup"
          role="tabpanel"
          aria-labelledby="tab-signup"
          hidden={resetting() || tab() !== "signup"}
        >
          <SignUpForm />
        </div>
        <div
          id="panel-login"
          role="tabpanel"
          aria-labelledby="tab-login"
          hidden={resetting() || tab() !== "login"}
        >
          <LogInForm
            note={note()}
            onForgot={() => {
              setNote("");
              setResetting(true);
            }}
          />
        </div>
        <p class="muted server-line">
          Server: <span id="auth-server">{app.serverUrl() ?? "not set"}</span>{" "}
          <button
            id="change-server"
            type="button"
            class="link"
            onClick={() => app.go({ name: "server", current: app.serverUrl() })}
          >
            Change server
          </button>
        </p>
      </div>
    </section>
  );
}
