// A message's files: images inline (their BlurHash placeholder until the preview loads;
// a click opens the lightbox), other files as cards with name, size and a download
// that asks where to save.

import { createResource, createSignal, For, onCleanup, onMount, Show } from "solid-js";
import { FileIcon } from "../icons";
import { toastError, toastSuccess } from "../toasts";
import {
  type AttachmentView,
  files as filesApi,
  formatSize,
  linksFor,
  onProgress,
  saveAs,
  transferId,
} from "./api";
import { decodeBlurhash } from "./blurhash";

/** Largest inline image box, in CSS pixels. */
const INLINE_MAX = 320;

/** The box an image is shown in: its aspect ratio, at most INLINE_MAX on its longer side. */
export function inlineSize(a: Pick<AttachmentView, "width" | "height">): {
  width: number;
  height: number;
} {
  const w = a.width ?? INLINE_MAX;
  const h = a.height ?? INLINE_MAX;
  const scale = Math.min(1, INLINE_MAX / Math.max(w, h, 1));
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
}

function Placeholder(props: { hash: string | null }) {
  let canvas!: HTMLCanvasElement;
  onMount(() => {
    if (!props.hash) return;
    const pixels = decodeBlurhash(props.hash, 32, 32);
    const ctx = canvas.getContext?.("2d");
    if (!pixels || !ctx) return;
    ctx.putImageData(new ImageData(pixels, 32, 32), 0, 0);
  });
  return <canvas ref={canvas} class="image-placeholder" width="32" height="32" />;
}

export async function download(
  a: Pick<AttachmentView, "id" | "name">,
  api = filesApi,
): Promise<void> {
  const path = await saveAs(a.name);
  if (!path) return;
  const id = transferId();
  const stop = onProgress(id, () => undefined);
  try {
    await api.download(id, a.id, path);
    toastSuccess(`Saved ${a.name}`);
  } catch (e) {
    toastError(e instanceof Error ? e.message : String(e));
  } finally {
    stop();
  }
}

function ImageAttachment(props: { a: AttachmentView; onOpen(): void }) {
  const [links] = createResource(
    () => props.a.id,
    (id) => linksFor(id),
  );
  const [loaded, setLoaded] = createSignal(false);
  const size = () => inlineSize(props.a);
  return (
    <button
      type="button"
      class="image-attachment"
      data-testid="image-attachment"
      data-loaded={loaded() ? "true" : "false"}
      style={{ width: `${size().width}px`, height: `${size().height}px` }}
      aria-label={`Image ${props.a.name}: open`}
      onClick={() => props.onOpen()}
    >
      <Show when={!loaded()}>
        <Placeholder hash={props.a.placeholder} />
      </Show>
      <Show when={links()}>
        {(l) => (
          <img
            src={l().previewUrl ?? l().url}
            alt={props.a.name}
            width={size().width}
            height={size().height}
            classList={{ loading: !loaded() }}
            onLoad={() => setLoaded(true)}
          />
        )}
      </Show>
    </button>
  );
}

function FileCard(props: { a: AttachmentView }) {
  return (
    <div class="file-card" data-testid="file-card">
      <span class="file-icon" aria-hidden="true">
        <FileIcon />
      </span>
      <span class="file-text">
        <span class="file-name" data-testid="file-name">
          {props.a.name}
        </span>
        <span class="muted file-size">{formatSize(props.a.size)}</span>
      </span>
      <button type="button" data-testid="file-download" onClick={() => void download(props.a)}>
        Download
      </button>
    </div>
  );
}

export function Lightbox(props: { a: AttachmentView; onClose(): void }) {
  const [links] = createResource(
    () => props.a.id,
    (id) => linksFor(id),
  );
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") props.onClose();
  };
  window.addEventListener("keydown", onKey);
  onCleanup(() => window.removeEventListener("keydown", onKey));
  return (
    <div
      class="lightbox"
      role="dialog"
      aria-modal="true"
      aria-label={props.a.name}
      data-testid="lightbox"
    >
      <div class="lightbox-bar">
        <span>{props.a.name}</span>
        <button
          type="button"
          data-testid="lightbox-download"
          onClick={() => void download(props.a)}
        >
          Download
        </button>
        <button
          type="button"
          data-testid="lightbox-close"
          aria-label="Close"
          onClick={() => props.onClose()}
        >
          ✕
        </button>
      </div>
      <Show when={links()}>
        {(l) => <img src={l().previewUrl ?? l().url} alt={props.a.name} />}
      </Show>
    </div>
  );
}

export function Attachments(props: { items: AttachmentView[] }) {
  const [open, setOpen] = createSignal<AttachmentView | null>(null);
  return (
    <Show when={props.items.length > 0}>
      <div class="attachments" data-testid="attachments">
        <For each={props.items}>
          {(a) =>
            a.image ? <ImageAttachment a={a} onOpen={() => setOpen(a)} /> : <FileCard a={a} />
          }
        </For>
      </div>
      <Show when={open()}>{(a) => <Lightbox a={a()} onClose={() => setOpen(null)} />}</Show>
    </Show>
  );
}
