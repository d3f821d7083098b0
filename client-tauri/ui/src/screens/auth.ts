// Auth screen: "Sign up" and "Log in" forms on tabs, and a way back to the Server screen.

import { api } from "../api";
import type { App, Screen } from "../app";
import { h } from "../dom";
import {
  type FieldMap,
  field,
  formError,
  showApiError,
  showFieldErrors,
  whileBusy,
} from "../forms";
import {
  normalizeUsername,
  PASSWORD_MAX,
  PASSWORD_MIN,
  USERNAME_MAX,
  USERNAME_MIN,
  validateLogIn,
  validateSignUp,
} from "../validation";

export type AuthTab = "signup" | "login";

function signUpForm(app: App): HTMLFormElement {
  const username = field({
    id: "signup-username",
    label: "Username",
    hint: `${USERNAME_MIN}-${USERNAME_MAX} characters: lowercase letters a-z, digits and _ . - (capitals are made lowercase).`,
    attrs: {
      autocomplete: "username",
      autocapitalize: "none",
      spellcheck: "false",
      required: true,
    },
  });
  const email = field({
    id: "signup-email",
    label: "Email",
    attrs: { type: "email", autocomplete: "email", required: true },
  });
  const password = field({
    id: "signup-password",
    label: "Password",
    hint: `${PASSWORD_MIN}-${PASSWORD_MAX} characters, not easy to guess.`,
    attrs: { type: "password", autocomplete: "new-password", required: true },
  });
  const confirm = field({
    id: "signup-confirm",
    label: "Confirm password",
    attrs: { type: "password", autocomplete: "new-password", required: true },
  });
  const fields: FieldMap = {
    username: [username.input, "Username"],
    email: [email.input, "Email"],
    password: [password.input, "Password"],
    confirm_password: [confirm.input, "Confirmation"],
  };
  username.input.addEventListener("change", () => {
    username.input.value = normalizeUsername(username.input.value);
  });
  const form = h(
    "form",
    { id: "signup-form", class: "stack", novalidate: true },
    username.wrap,
    email.wrap,
    password.wrap,
    confirm.wrap,
    formError("signup-form"),
    h("button", { id: "signup-submit", type: "submit", class: "primary" }, "Create account"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = {
      username: normalizeUsername(username.input.value),
      email: email.input.value.trim(),
      password: password.input.value,
      confirmPassword: confirm.input.value,
    };
    if (showFieldErrors(form, fields, validateSignUp(values))) return;
    await whileBusy(
      form,
      async () => {
        app.me = await api.signUp(values);
        app.go({ name: "rooms" });
      },
      (err) => showApiError(form, fields, err),
    );
  });
  return form;
}

function logInForm(app: App): HTMLFormElement {
  const login = field({
    id: "login-login",
    label: "Username or email",
    attrs: {
      autocomplete: "username",
      autocapitalize: "none",
      spellcheck: "false",
      required: true,
    },
  });
  const password = field({
    id: "login-password",
    label: "Password",
    attrs: { type: "password", autocomplete: "current-password", required: true },
  });
  const fields: FieldMap = {
    login: [login.input, "Username or email"],
    password: [password.input, "Password"],
  };
  const form = h(
    "form",
    { id: "login-form", class: "stack", novalidate: true },
    login.wrap,
    password.wrap,
    formError("login-form"),
    h("button", { id: "login-submit", type: "submit", class: "primary" }, "Log in"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const who = login.input.value.trim();
    if (showFieldErrors(form, fields, validateLogIn(who, password.input.value))) return;
    await whileBusy(
      form,
      async () => {
        app.me = await api.logIn(who, password.input.value);
        app.go({ name: "rooms" });
      },
      (err) => showApiError(form, fields, err),
    );
  });
  return form;
}

function tabs(panels: Record<AuthTab, HTMLElement>, initial: AuthTab): HTMLElement {
  const order: AuthTab[] = ["signup", "login"];
  const labels: Record<AuthTab, string> = { signup: "Sign up", login: "Log in" };
  const buttons = order.map((t) =>
    h(
      "button",
      { type: "button", role: "tab", id: `tab-${t}`, "aria-controls": `panel-${t}` },
      labels[t],
    ),
  );
  const select = (t: AuthTab, focus = false) => {
    order.forEach((name, i) => {
      const on = name === t;
      const b = buttons[i];
      if (!b) return;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
      panels[name].hidden = !on;
      if (on && focus) b.focus();
    });
  };
  buttons.forEach((b, i) => {
    b.addEventListener("click", () => select(order[i] ?? "login"));
    b.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      e.preventDefault();
      select(order[(i + 1) % order.length] ?? "login", true);
    });
  });
  select(initial);
  return h("div", { role: "tablist", "aria-label": "Account", class: "tabs" }, ...buttons);
}

export function authScreen(app: App, tab: AuthTab = "login"): Screen {
  const panels: Record<AuthTab, HTMLElement> = {
    signup: h(
      "div",
      { id: "panel-signup", role: "tabpanel", "aria-labelledby": "tab-signup" },
      signUpForm(app),
    ),
    login: h(
      "div",
      { id: "panel-login", role: "tabpanel", "aria-labelledby": "tab-login" },
      logInForm(app),
    ),
  };
  const change = h(
    "button",
    { id: "change-server", type: "button", class: "link" },
    "Change server",
  );
  change.addEventListener("click", () => app.go({ name: "server", current: app.serverUrl }));
  const el = h(
    "section",
    { id: "auth-screen", class: "screen centered" },
    h("h1", {}, "Welcome to Confab"),
    h(
      "div",
      { class: "card stack" },
      tabs(panels, tab),
      panels.signup,
      panels.login,
      h(
        "p",
        { class: "muted server-line" },
        "Server: ",
        h("span", { id: "auth-server" }, app.serverUrl ?? "not set"),
        " ",
        change,
      ),
    ),
  );
  return { el, title: tab === "signup" ? "Sign up" : "Log in" };
}
