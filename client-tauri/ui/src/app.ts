// The app shell: which screen is shown (one at a time in <main id="app">), who is signed in,
// and the shared error path (signed out -> Auth; anything else -> toast + OS notification).

import { ApiError, type CallSettings, type Me, type RoomView } from "./api";
import { describeError } from "./forms";
import { notifyIfUnfocused } from "./platform";
import { toastError, toastInfo } from "./toasts";

export type Route =
  | { name: "server"; current?: string | null }
  | { name: "auth"; tab?: "signup" | "login" }
  | { name: "rooms" }
  | { name: "prejoin"; room: RoomView }
  | { name: "call"; room: RoomView; settings: CallSettings };

export interface Screen {
  el: HTMLElement;
  title: string;
  destroy?: () => void;
}

export interface App {
  me: Me | null;
  serverUrl: string | null;
  go(route: Route): void;
  /** Reports an error: a signed-out error sends the user to Auth, others become a toast. */
  fail(err: unknown): void;
  /** The session ended outside the user's action (signed out elsewhere, refresh failed). */
  signedOut(reason: string): void;
}

export type ScreenFactory = (app: App, route: Route) => Screen;

export function createApp(root: HTMLElement, render: ScreenFactory): App {
  let current: Screen | null = null;

  const app: App = {
    me: null,
    serverUrl: null,
    go(route) {
      try {
        current?.destroy?.();
      } catch (e) {
        console.error(e);
      }
      current = render(app, route);
      root.replaceChildren(current.el);
      root.dataset.screen = route.name;
      document.title = `${current.title} · Confab`;
      const heading = current.el.querySelector<HTMLElement>("h1");
      if (heading) {
        heading.tabIndex = -1;
        heading.focus({ preventScroll: true });
      }
    },
    fail(err) {
      if (err instanceof ApiError && err.kind === "signedOut") {
        app.signedOut(err.error.message);
        return;
      }
      const msg = describeError(err);
      toastError(msg);
      void notifyIfUnfocused("Confab", msg);
    },
    signedOut(reason) {
      app.me = null;
      app.go({ name: "auth", tab: "login" });
      toastInfo(`You were signed out: ${reason}`);
      void notifyIfUnfocused("Signed out", reason);
    },
  };
  return app;
}
