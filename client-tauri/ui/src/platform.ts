// OS integrations from Tauri plugins: clipboard, desktop notifications and opening links.
// They fail soft
// (outside Tauri, e.g. in `npm run dev` in a browser, they do nothing or report false).

import { writeText } from "@tauri-apps/plugin-clipboard-manager";
import {
  isPermissionGranted,
  requestPermission,
  sendNotification,
} from "@tauri-apps/plugin-notification";
import { api } from "./api";
import { describeError } from "./errors";
import { safeUrl } from "./messenger/format";
import { toastError } from "./toasts";

export async function copyText(text: string): Promise<void> {
  await writeText(text);
}

let permission: Promise<boolean> | null = null;

function notificationsAllowed(): Promise<boolean> {
  // Ask once per run; later calls reuse the answer.
  permission ??= (async () => {
    try {
      if (await isPermissionGranted()) return true;
      return (await requestPermission()) === "granted";
    } catch {
      return false;
    }
  })();
  return permission;
}

/** Sends an OS notification, but only while the window is not focused. */
export async function notifyIfUnfocused(title: string, body: string): Promise<void> {
  if (document.hasFocus()) return;
  if (!(await notificationsAllowed())) return;
  try {
    sendNotification({ title, body });
  } catch {
    // No notification service: the in-app toast is still there.
  }
}

/**
 * Opens a link in the OS's browser or mail client. Only http, https and mailto links are
 * handed over (Rust's openLink checks again and opens it; the window itself may open
 * nothing).
 */
export async function openLink(href: string): Promise<void> {
  const url = safeUrl(href);
  if (!url) return;
  try {
    await api.openLink(url);
  } catch (err) {
    toastError(`Could not open the link: ${describeError(err)}`);
  }
}
