// The app's top-level state: which screen is shown, who is signed in, which server, and
// the shared error path (signed out -> Auth; anything else -> toast + OS notification).
// One AppState per window, handed down through AppContext (tests make their own).

import { type Accessor, createContext, createSignal, type JSX, useContext } from "solid-js";
import { ApiError, type Me } from "../api";
import { describeError } from "../errors";
import { notifyIfUnfocused } from "../platform";
import { toastError, toastInfo } from "../toasts";

export type Route =
  | { name: "booting" }
  | { name: "server"; current?: string | null }
  | { name: "auth"; tab?: "signup" | "login" }
  | { name: "shell" };

export interface AppState {
  route: Accessor<Route>;
  me: Accessor<Me | null>;
  serverUrl: Accessor<string | null>;
  /** Where pictures' paths are loaded from: the server, or the app's proxy (Rust decides). */
  pictureBase: Accessor<string | null>;
  /** The server is reached over plain http beyond the local network (Rust decides). */
  insecure: Accessor<boolean>;
  setMe(me: Me | null): void;
  /** The server, and where its pictures load from (the server itself by default). */
  setServerUrl(url: string | null, pictureBase?: string | null): void;
  setInsecure(insecure: boolean): void;
  go(route: Route): void;
  /** Reports an error: a signed-out error sends the user to Auth, others become a toast. */
  fail(err: unknown): void;
  /** The session ended outside the user's action (signed out elsewhere, refresh failed). */
  signedOut(reason: string): void;
}

export function createAppState(initial: Route = { name: "booting" }): AppState {
  const [route, setRoute] = createSignal<Route>(initial);
  const [me, setMe] = createSignal<Me | null>(null);
  const [serverUrl, setServerUrl] = createSignal<string | null>(null);
  const [pictureBase, setPictureBase] = createSignal<string | null>(null);
  const [insecure, setInsecure] = createSignal(false);
  const state: AppState = {
    route,
    me,
    serverUrl,
    pictureBase,
    setMe: (m) => setMe(m),
    insecure,
    setServerUrl: (u, base) => {
      setServerUrl(u);
      setPictureBase(base ?? u);
    },
    setInsecure: (i) => setInsecure(i),
    go: (r) => setRoute(r),
    fail(err) {
      if (err instanceof ApiError && err.kind === "signedOut") {
        state.signedOut(err.error.message);
        return;
      }
      const msg = describeError(err);
      toastError(msg);
      void notifyIfUnfocused("Confab", msg);
    },
    signedOut(reason) {
      setMe(null);
      setRoute({ name: "auth", tab: "login" });
      toastInfo(`You were signed out: ${reason}`);
      void notifyIfUnfocused("Signed out", reason);
    },
  };
  return state;
}

const AppContext = createContext<AppState>();

export function AppProvider(props: { state: AppState; children: JSX.Element }): JSX.Element {
  return <AppContext.Provider value={props.state}>{props.children}</AppContext.Provider>;
}

export function useApp(): AppState {
  const s = useContext(AppContext);
  if (!s) throw new Error("useApp outside AppProvider");
  return s;
}
