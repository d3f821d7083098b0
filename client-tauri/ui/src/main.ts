// Entry point: theme, then where to start (Server, Auth or Rooms).

import "./styles/base.css";
import "./styles/screens.css";
import "./styles/call.css";
import { api } from "./api";
import { createApp } from "./app";
import { describeError } from "./forms";
import { renderStats } from "./media/renderer";
import { renderScreen } from "./screens";
import { applyTheme, loadTheme } from "./theme";
import { toast, toastError } from "./toasts";

async function boot(): Promise<void> {
  applyTheme(loadTheme());
  renderStats(); // window.__confabRenderStats exists (at 0) before the first frame
  const root = document.getElementById("app");
  if (!root) throw new Error("#app missing");
  const app = createApp(root, renderScreen);

  let info: Awaited<ReturnType<typeof api.appInfo>>;
  try {
    info = await api.appInfo();
  } catch (err) {
    toastError(`Could not reach the app core: ${describeError(err)}`);
    app.go({ name: "server" });
    return;
  }
  // Worth reading: sessions will not survive a restart.
  if (!info.secureStorage && info.storageNote) toast(info.storageNote, "info", 15000);
  app.serverUrl = info.serverUrl;
  if (info.serverUrl === null) {
    app.go({ name: "server" });
    return;
  }
  try {
    app.me = await api.restoreSession();
  } catch (err) {
    toastError(describeError(err));
  }
  app.go(app.me ? { name: "rooms" } : { name: "auth", tab: "login" });
}

void boot();
