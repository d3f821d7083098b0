// The composer's uploads: each file starts uploading as soon as it is attached (from
// the dialog, a drop or a paste), shows its progress, can be cancelled or removed, and
// the message goes out with the ids of the finished ones.

import { createStore, produce } from "solid-js/store";
import { type AttachmentView, files as filesApi, onProgress, transferId } from "./api";

export interface UploadItem {
  key: string;
  name: string;
  done: number;
  total: number | null;
  state: "uploading" | "done" | "failed";
  error: string | null;
  attachment: AttachmentView | null;
}

/** Most files one message carries (the server's rule). */
export const ATTACHMENTS_MAX = 10;

export function createUploads(
  api: typeof filesApi = filesApi,
  fail: (e: unknown) => void = () => undefined,
) {
  const [items, setItems] = createStore<UploadItem[]>([]);

  const update = (key: string, f: (u: UploadItem) => void) =>
    setItems(
      produce((list) => {
        const u = list.find((x) => x.key === key);
        if (u) f(u);
      }),
    );

  const run = async (
    name: string,
    size: number | null,
    start: (key: string) => Promise<AttachmentView>,
  ) => {
    if (items.length >= ATTACHMENTS_MAX) {
      fail(new Error(`A message carries at most ${ATTACHMENTS_MAX} files.`));
      return;
    }
    const key = transferId();
    setItems(items.length, {
      key,
      name,
      done: 0,
      total: size,
      state: "uploading",
      error: null,
      attachment: null,
    });
    const stop = onProgress(key, (done, total) =>
      update(key, (u) => {
        u.done = done;
        u.total = total ?? u.total;
      }),
    );
    try {
      const a = await start(key);
      update(key, (u) => {
        u.state = "done";
        u.attachment = a;
        u.done = a.size;
        u.total = a.size;
      });
    } catch (e) {
      // Cancelled ones are gone already; anything else stays, marked, until removed.
      if (items.some((u) => u.key === key)) {
        update(key, (u) => {
          u.state = "failed";
          u.error = e instanceof Error ? e.message : String(e);
        });
      }
    } finally {
      stop();
    }
  };

  return {
    items,
    /** Files by path (dialog, Tauri drop). */
    addPaths(paths: string[]) {
      for (const path of paths) {
        const name = path.split(/[\\/]/).pop() || "file";
        void run(name, null, (key) => api.uploadFile(key, path));
      }
    },
    /** Files as bytes (paste, DOM drop). */
    async addFiles(list: File[]) {
      for (const f of list) {
        const bytes = Array.from(new Uint8Array(await f.arrayBuffer()));
        void run(f.name || "pasted", f.size, (key) =>
          api.uploadBytes(key, f.name || "pasted", bytes),
        );
      }
    },
    /** Stops an upload, or takes a finished or failed one off the message. */
    remove(key: string) {
      const u = items.find((x) => x.key === key);
      if (u?.state === "uploading") void api.cancel(key).catch(() => undefined);
      setItems((list) => list.filter((x) => x.key !== key));
    },
    busy: () => items.some((u) => u.state === "uploading"),
    ids: () =>
      items.filter((u) => u.state === "done" && u.attachment).map((u) => u.attachment?.id ?? ""),
    clear: () => setItems([]),
  };
}

export type Uploads = ReturnType<typeof createUploads>;
