// Someone's avatar where their name appears: their picture from the server (a path the
// server gave, put after its address), else their initial.

import { type JSX, Show } from "solid-js";
import { useApp } from "../app/state";

/** The absolute address of a picture path on the server (null without one). */
export function pictureSrc(path: string | null | undefined, server: string | null): string | null {
  if (!path) return null;
  try {
    return new URL(path, server ?? undefined).toString();
  } catch {
    return null;
  }
}

export function Avatar(props: { name: string; url?: string | null; children?: JSX.Element }) {
  const app = useApp();
  const src = () => pictureSrc(props.url, app.serverUrl());
  return (
    <span class="avatar" aria-hidden="true" data-testid="avatar">
      <Show when={src()} fallback={(props.name[0] ?? "?").toUpperCase()}>
        {(s) => <img class="avatar-img" src={s()} alt="" width="32" height="32" />}
      </Show>
      {props.children}
    </span>
  );
}
