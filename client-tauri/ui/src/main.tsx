// Entry point: theme, then where to start (Server, Auth or the Shell).

import "./styles/base.css";
import "./styles/screens.css";
import "./styles/call.css";
import "./styles/shell.css";
import "./styles/communities.css";
import "./styles/files.css";
import { render } from "solid-js/web";
import { api } from "./api";
import { App } from "./app/App";
import { createAppState } from "./app/state";
import { describeError } from "./errors";
import { renderStats } from "./media/renderer";
import { installProbe } from "./messenger/probe";
import { applyTheme, loadTheme } from "./theme";
import { toast, toastError } from "./toasts";

async function boot(): Promise<void> {
  applyTheme(loadTheme());
  renderStats(); // window.__confabRenderStats exists (at 0) before the first frame
  installProbe(); // window.__confabMeasureScroll, for the desktop bench
  const root = document.getElementById("app");
  if (!root) throw new Error("#app missing");
  root.replaceChildren();
  const state = createAppState();
  render(() => <App state={state} />, root);

  let info: Awaited<ReturnType<typeof api.appInfo>>;
  try {
    info = await api.appInfo();
  } catch (err) {
    toastError(`Could not reach the app core: ${describeError(err)}`);
    state.go({ name: "server" });
    return;
  }
  // Worth reading: sessions will not survive a restart.
  if (!info.secureStorage && info.storageNote) toast(info.storageNote, "info", 15000);
  state.setServerUrl(info.serverUrl, info.pictureBase);
  state.setInsecure(info.insecure);
  if (info.serverUrl === null) {
    state.go({ name: "server" });
    return;
  }
  try {
    state.setMe(await api.restoreSession());
  } catch (err) {
    toastError(describeError(err));
  }
  state.go(state.me() ? { name: "shell" } : { name: "auth", tab: "login" });
}

void boot();
