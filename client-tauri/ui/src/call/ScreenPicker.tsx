// The screen-share picker (#screen-picker): every monitor and window Rust can capture,
// each with a thumbnail, as buttons; picking one shares it. Thumbnails arrive as PNG
// data: URLs (the CSP allows data: images), so nothing is fetched.

import { createResource, For, onCleanup, onMount, Show } from "solid-js";
import type { ScreenView } from "../api";

export function screenLabel(s: ScreenView): string {
  const name = s.name.trim() || (s.kind === "monitor" ? "Screen" : "Untitled window");
  return s.primary ? `${name} (main screen)` : name;
}

function Choice(props: { screen: ScreenView; onPick(id: string): void }) {
  const label = () => screenLabel(props.screen);
  return (
    <li>
      <button
        type="button"
        class="screen-choice"
        data-screen-id={props.screen.id}
        aria-label={`Share ${label()}`}
        onClick={() => props.onPick(props.screen.id)}
      >
        <Show
          when={props.screen.thumbnail}
          fallback={
            <span class="screen-thumb screen-thumb-missing" aria-hidden="true">
              No preview
            </span>
          }
        >
          {(src) => <img class="screen-thumb" src={src()} alt="" />}
        </Show>
        <span class="screen-name">{label()}</span>
        <span class="screen-size muted">
          {props.screen.width}×{props.screen.height}
        </span>
      </button>
    </li>
  );
}

export function ScreenPicker(props: {
  load: () => Promise<ScreenView[]>;
  onPick(id: string): void;
  onClose(): void;
}) {
  const [screens] = createResource(() => props.load());
  const monitors = () => (screens() ?? []).filter((s) => s.kind === "monitor");
  const windows = () => (screens() ?? []).filter((s) => s.kind === "window");
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") {
      e.preventDefault();
      props.onClose();
    }
  };
  onMount(() => window.addEventListener("keydown", onKey));
  onCleanup(() => window.removeEventListener("keydown", onKey));
  return (
    <section
      id="screen-picker"
      class="screen-picker"
      role="dialog"
      aria-modal="false"
      aria-labelledby="screen-picker-heading"
    >
      <header class="screen-picker-header">
        <h2 id="screen-picker-heading">Share your screen</h2>
        <button type="button" id="screen-picker-close" onClick={() => props.onClose()}>
          Cancel
        </button>
      </header>
      <Show when={!screens.loading} fallback={<p aria-busy="true">Looking for screens…</p>}>
        <Show
          when={!screens.error}
          fallback={
            <p class="error" role="alert">
              Cannot list screens: {String(screens.error?.message ?? screens.error)}
            </p>
          }
        >
          <Show
            when={monitors().length + windows().length > 0}
            fallback={<p class="empty">There is no screen or window to share.</p>}
          >
            <Show when={monitors().length > 0}>
              <h3>Screens</h3>
              <ul class="screen-choices" aria-label="Screens">
                <For each={monitors()}>{(s) => <Choice screen={s} onPick={props.onPick} />}</For>
              </ul>
            </Show>
            <Show when={windows().length > 0}>
              <h3>Windows</h3>
              <ul class="screen-choices" aria-label="Windows">
                <For each={windows()}>{(s) => <Choice screen={s} onPick={props.onPick} />}</For>
              </ul>
            </Show>
          </Show>
        </Show>
      </Show>
    </section>
  );
}
