// Auth screen: "Sign up" and "Log in" forms on tabs, and a way back to the Server screen.

import { createSignal, For, Show } from "solid-js";
import { api } from "../api";
import { useApp } from "../app/state";
import { createForm, Field, FormError, NewPasswordFields } from "../forms";
import { LIMITS, normalizeUsername, validateLogIn, validateSignUp } from "../validation";
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

function LogInForm(props: { note: string; onForgot: () => void }) {
  const app = useApp();
  const form = createForm("login-form", {
    login: { id: "login-login", label: "Username or email" },
    password: { id: "login-password", label: "Password" },
  });
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const who = form.value("login").trim();
    const password = form.value("password");
    if (form.show(validateLogIn(who, password))) return;
    await form.run(async () => {
      app.setMe(await api.logIn(who, password));
      app.go({ name: "shell" });
    });
  };
  return (
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
      <Field form={form} name="password" type="password" autocomplete="current-password" required />
      <FormError form={form} />
      <button id="login-submit" type="submit" class="primary" disabled={form.busy()}>
        Log in
      </button>
      <button id="forgot-password" type="button" class="link" onClick={props.onForgot}>
        Forgot password?
      </button>
    </form>
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
