// The account menu: who I am, the profile (display name, status text), the theme, muting
// all notifications, and logging out.

import { createSignal, onCleanup, onMount, Show } from "solid-js";
import { api } from "../api";
import { useApp } from "../app/state";
import { Avatar } from "../files/Avatar";
import { files, pickPicture } from "../files/api";
import { createForm, Field, FormError } from "../forms";
import { loadTheme, saveTheme, type ThemeChoice } from "../theme";
import { toastInfo, toastSuccess } from "../toasts";
import { LIMITS } from "../validation";
import { useShell } from "./context";
import { trapTab } from "./focus";

function Profile(props: { onClose(): void }) {
  const app = useApp();
  const shell = useShell();
  const form = createForm("profile-form", {
    displayName: { id: "profile-display-name", label: "Display name" },
    statusText: { id: "profile-status", label: "Status" },
  });
  const me = () => app.me();
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const name = form.value("displayName").trim();
    const status = form.value("statusText").trim();
    const errors: Record<string, string> = {};
    if (Array.from(name).length > LIMITS.displayNameMax) {
      errors.displayName = `Display name must be at most ${LIMITS.displayNameMax} characters long`;
    }
    if (Array.from(status).length > LIMITS.statusTextMax) {
      errors.statusText = `Status must be at most ${LIMITS.statusTextMax} characters long`;
    }
    if (form.show(errors)) return;
    await form.run(async () => {
      app.setMe(await shell.api.updateProfile(name, status));
      toastSuccess("Profile saved");
      props.onClose();
    });
  };
  // A PNG, JPEG, WebP or small SVG; the server checks and resizes it.
  const changePicture = async () => {
    const [path] = await pickPicture();
    const current = me();
    if (!path || !current) return;
    try {
      const url = await files.setAvatar(path);
      app.setMe({ ...current, avatarUrl: url });
      toastSuccess("Picture changed");
    } catch (e) {
      shell.fail(e);
    }
  };
  const removePicture = async () => {
    const current = me();
    if (!current) return;
    try {
      await files.clearAvatar();
      app.setMe({ ...current, avatarUrl: null });
    } catch (e) {
      shell.fail(e);
    }
  };
  let first!: HTMLDivElement;
  onMount(() => first.querySelector("input")?.focus());
  return (
    <div class="overlay">
      <div
        class="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="profile-heading"
        data-testid="profile-dialog"
        onKeyDown={(e) => {
          if (e.key === "Escape") props.onClose();
          trapTab(e, e.currentTarget);
        }}
      >
        <h2 id="profile-heading">Profile</h2>
        <div class="row" data-testid="profile-picture">
          <Avatar name={me()?.displayName ?? me()?.username ?? "?"} url={me()?.avatarUrl} />
          <button type="button" data-testid="avatar-change" onClick={() => void changePicture()}>
            Change picture
          </button>
          <Show when={me()?.avatarUrl}>
            <button
              type="button"
              class="ghost"
              data-testid="avatar-remove"
              onClick={() => void removePicture()}
            >
              Remove picture
            </button>
          </Show>
        </div>
        <form id="profile-form" class="stack" novalidate onSubmit={onSubmit}>
          <div ref={first}>
            <Field
              form={form}
              name="displayName"
              value={me()?.displayName ?? ""}
              maxLength={LIMITS.displayNameMax}
              hint={`Shown instead of @${me()?.username ?? ""}. Empty: your username.`}
            />
          </div>
          <Field
            form={form}
            name="statusText"
            value={me()?.statusText ?? ""}
            maxLength={LIMITS.statusTextMax}
            hint="What your contacts see next to your name."
          />
          <FormError form={form} />
          <div class="row">
            <button type="submit" class="primary" disabled={form.busy()}>
              Save
            </button>
            <button type="button" onClick={() => props.onClose()}>
              Cancel
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}

export function AccountMenu() {
  const app = useApp();
  const shell = useShell();
  const [open, setOpen] = createSignal(false);
  const [profile, setProfile] = createSignal(false);
  const [theme, setTheme] = createSignal<ThemeChoice>(loadTheme());
  const [busy, setBusy] = createSignal(false);
  let root!: HTMLDivElement;
  let toggle!: HTMLButtonElement;

  const onDoc = (e: MouseEvent) => {
    if (open() && !root.contains(e.target as Node)) setOpen(false);
  };
  document.addEventListener("mousedown", onDoc);
  onCleanup(() => document.removeEventListener("mousedown", onDoc));

  const pickTheme = (t: ThemeChoice) => {
    setTheme(t);
    saveTheme(t);
  };
  const logOut = async () => {
    setBusy(true);
    try {
      await api.logOut();
      app.setMe(null);
      app.go({ name: "auth", tab: "login" });
      toastInfo("Logged out");
    } catch (err) {
      setBusy(false);
      app.fail(err);
    }
  };
  const name = () => app.me()?.displayName || app.me()?.username || "";

  return (
    <div class="account" ref={root} data-testid="account-menu">
      <button
        ref={toggle}
        type="button"
        class="account-toggle"
        aria-haspopup="true"
        aria-expanded={open() ? "true" : "false"}
        aria-controls="account-panel"
        onClick={() => setOpen((v) => !v)}
        onKeyDown={(e) => {
          if (e.key === "Escape") setOpen(false);
        }}
      >
        <Avatar name={name()} url={shell.me()?.avatarUrl} />
        <span id="me-name">{name()}</span>
      </button>
      <Show when={open()}>
        <section
          id="account-panel"
          class="account-panel"
          aria-label="Account"
          onKeyDown={(e) => {
            if (e.key === "Escape") {
              setOpen(false);
              toggle.focus();
            }
          }}
        >
          <p class="muted">Signed in as @{app.me()?.username}</p>
          <button
            type="button"
            data-testid="open-profile"
            onClick={() => {
              setOpen(false);
              setProfile(true);
            }}
          >
            Profile…
          </button>
          <fieldset class="theme-choice">
            <legend>Theme</legend>
            {(["system", "light", "dark"] as const).map((t) => (
              <label>
                <input
                  type="radio"
                  name="theme"
                  value={t}
                  checked={theme() === t}
                  onChange={() => pickTheme(t)}
                />{" "}
                {t[0]?.toUpperCase()}
                {t.slice(1)}
              </label>
            ))}
          </fieldset>
          <label class="check">
            <input
              type="checkbox"
              data-testid="mute-notifications"
              checked={shell.store.state.notificationsMuted}
              onChange={(e) => {
                const muted = e.currentTarget.checked;
                shell.api
                  .setNotificationsMuted(muted)
                  .then(() => shell.store.setNotificationsMuted(muted), shell.fail);
              }}
            />{" "}
            Mute all notifications
          </label>
          <button
            id="logout"
            type="button"
            class="danger"
            data-testid="log-out"
            disabled={busy()}
            onClick={() => void logOut()}
          >
            Log out
          </button>
        </section>
      </Show>
      <Show when={profile()}>
        <Profile
          onClose={() => {
            setProfile(false);
            toggle.focus();
          }}
        />
      </Show>
    </div>
  );
}
