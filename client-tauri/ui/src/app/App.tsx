// The window's top level: Server, Auth or the signed-in Shell, by route.

import { createEffect, Match, on, Switch } from "solid-js";
import { AuthScreen } from "../screens/auth";
import { ServerScreen } from "../screens/server";
import { Shell } from "../shell/Shell";
import { AppProvider, type AppState } from "./state";

const TITLES = { booting: "Starting", server: "Server", auth: "Welcome", shell: "Confab" };

export function App(props: { state: AppState }) {
  const s = props.state;
  // Each screen's heading takes the focus, so screen readers announce the new screen.
  createEffect(
    on(
      () => s.route().name,
      (name) => {
        document.getElementById("app")?.setAttribute("data-screen", name);
        if (name !== "shell") document.title = `${TITLES[name]} · Confab`;
        queueMicrotask(() =>
          document.querySelector<HTMLElement>("#app h1")?.focus({ preventScroll: true }),
        );
      },
    ),
  );
  return (
    <AppProvider state={s}>
      <Switch>
        <Match when={s.route().name === "booting"}>
          <main>
            <p class="boot">Starting Confab…</p>
          </main>
        </Match>
        <Match
          when={(() => {
            const r = s.route();
            return r.name === "server" ? r : null;
          })()}
        >
          {(r) => (
            <main>
              <ServerScreen current={r().current ?? null} />
            </main>
          )}
        </Match>
        <Match
          when={(() => {
            const r = s.route();
            return r.name === "auth" ? r : null;
          })()}
        >
          {(r) => (
            <main>
              <AuthScreen tab={r().tab} />
            </main>
          )}
        </Match>
        <Match when={s.route().name === "shell"}>
          <Shell />
        </Match>
      </Switch>
    </AppProvider>
  );
}
