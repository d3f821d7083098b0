// Files' door to Rust: uploads (path or pasted bytes) with progress and cancel, signed
// links (cached until shortly before they expire), downloads; the OS open/save dialogs.

import { open, save } from "@tauri-apps/plugin-dialog";
import { type Listenable, type OkOf, type PayloadOf, subscribe, unwrap } from "../api";
import { commands, events } from "../bindings";

export type AttachmentView = OkOf<typeof commands.uploadFile>;
export type FileLinks = OkOf<typeof commands.fileLinks>;
export type TransferEvent = PayloadOf<typeof events.transferEvent>;

export const transferEvents: Listenable<TransferEvent> = events.transferEvent;

export const files = {
  uploadFile: (transferId: string, path: string) => unwrap(commands.uploadFile(transferId, path)),
  uploadBytes: (transferId: string, name: string, data: number[]) =>
    unwrap(commands.uploadBytes(transferId, name, data)),
  cancel: (transferId: string) => unwrap(commands.cancelTransfer(transferId)),
  links: (uploadId: string) => unwrap(commands.fileLinks(uploadId)),
  download: (transferId: string, uploadId: string, path: string) =>
    unwrap(commands.downloadFile(transferId, uploadId, path)),
  setAvatar: (path: string) => unwrap(commands.setAvatar(path)),
  clearAvatar: () => unwrap(commands.clearAvatar()),
  setCommunityIcon: (communityId: string, path: string | null) =>
    unwrap(commands.setCommunityIcon(communityId, path)),
};

/** Progress of one transfer, from its events. Returns the unsubscribe. */
export function onProgress(
  transferId: string,
  cb: (done: number, total: number | null) => void,
): () => void {
  return subscribe(transferEvents, (e) => {
    if (e.transferId === transferId) cb(e.done, e.total ?? null);
  });
}

let counter = 0;
/** A transfer id the window makes up (unique in this run). */
export function transferId(): string {
  counter += 1;
  return `t-${Date.now().toString(36)}-${counter}`;
}

/** Links are asked for again this long before they expire. */
const LINK_MARGIN_MS = 60_000;
const linkCache = new Map<string, Promise<FileLinks>>();

/** Signed links to an upload, shared by every view of it until they are near expiry. */
export function linksFor(uploadId: string, now = Date.now()): Promise<FileLinks> {
  const cached = linkCache.get(uploadId);
  if (cached) {
    return cached.then((l) => {
      if (Date.parse(l.expiresAt) - LINK_MARGIN_MS > Date.now()) return l;
      linkCache.delete(uploadId);
      return linksFor(uploadId, now);
    });
  }
  const p = files.links(uploadId);
  linkCache.set(uploadId, p);
  p.catch(() => linkCache.delete(uploadId));
  return p;
}

/** Forgets cached links (tests; a sign-out). */
export function clearLinks(): void {
  linkCache.clear();
}

/** Files to attach, from the OS dialog (none when cancelled or outside Tauri). */
export async function pickFiles(): Promise<string[]> {
  try {
    const chosen = await open({ multiple: true, directory: false, title: "Attach files" });
    if (!chosen) return [];
    return Array.isArray(chosen) ? chosen : [chosen];
  } catch {
    return [];
  }
}

/** One picture (avatar or icon) from the OS dialog. */
export async function pickPicture(): Promise<string[]> {
  try {
    const chosen = await open({
      multiple: false,
      directory: false,
      title: "Choose a picture",
      filters: [{ name: "Pictures", extensions: ["png", "jpg", "jpeg", "webp", "svg"] }],
    });
    if (!chosen) return [];
    return Array.isArray(chosen) ? chosen : [chosen];
  } catch {
    return [];
  }
}

/** Where to save a download, from the OS "save as" dialog (null when cancelled). */
export async function saveAs(name: string): Promise<string | null> {
  try {
    return (await save({ defaultPath: name, title: "Save file" })) ?? null;
  } catch {
    return null;
  }
}

/** "512 B", "3.4 KB", "12 MB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/**
 * Files dropped on the window from the OS (Tauri hands over their paths; the DOM never
 * sees such drops). Returns the unsubscribe; does nothing outside Tauri.
 */
export function onFileDrop(cb: (paths: string[]) => void): () => void {
  let active = true;
  let unlisten: (() => void) | null = null;
  import("@tauri-apps/api/webview")
    .then(({ getCurrentWebview }) =>
      getCurrentWebview().onDragDropEvent((e) => {
        if (active && e.payload.type === "drop" && e.payload.paths.length > 0) cb(e.payload.paths);
      }),
    )
    .then(
      (fn) => {
        if (active) unlisten = fn;
        else fn();
      },
      () => undefined,
    );
  return () => {
    active = false;
    unlisten?.();
  };
}
