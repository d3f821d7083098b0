// Toast messages in the #toasts live region. Errors use role="alert" (announced at once),
// the others role="status". Each dismisses itself after a while, or with its close button.

import { h } from "./dom";

export type ToastKind = "success" | "error" | "info";

export const TOAST_MS: Record<ToastKind, number> = { success: 4000, info: 5000, error: 8000 };
const MAX_TOASTS = 5;

function region(): HTMLElement {
  let el = document.getElementById("toasts");
  if (!el) {
    el = h("div", { id: "toasts", "aria-live": "polite" });
    document.body.append(el);
  }
  return el;
}

export function toast(
  message: string,
  kind: ToastKind = "info",
  timeoutMs: number = TOAST_MS[kind],
): HTMLElement {
  const root = region();
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
  const el = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { class: "toast-text" }, message),
    close,
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const dismiss = () => {
    if (timer !== undefined) clearTimeout(timer);
    el.remove();
  };
  close.addEventListener("click", dismiss);
  if (timeoutMs > 0) timer = setTimeout(dismiss, timeoutMs);
  root.append(el);
  while (root.children.length > MAX_TOASTS) root.firstElementChild?.remove();
  return el;
}

export const toastSuccess = (message: string) => toast(message, "success");
export const toastInfo = (message: string) => toast(message, "info");
export const toastError = (message: string) => toast(message, "error");
