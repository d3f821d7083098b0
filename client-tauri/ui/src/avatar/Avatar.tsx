// Someone's avatar wherever their name appears (messages, the rail, contacts, member
// lists, search hits): their picture from the server, else their initials. The picture
// path comes from the server (an unguessable /api/pictures/ID that changes with every new
// picture), put after the server's address (or the app's proxy's, when only the app
// trusts the server's CA); a picture that fails to load falls back to the initials too.

import { createEffect, createSignal, type JSX, on, Show } from "solid-js";
import { useApp } from "../app/state";
import "./avatar.css";

/** The absolute address of a picture path on the server (null without one). */
export function pictureSrc(path: string | null | undefined, server: string | null): string | null {
  if (!path) return null;
  try {
    return new URL(path, server ?? undefined).toString();
  } catch {
    return null;
  }
}

/**
 * Up to two initials of a name: the first letter or digit of its first two words
 * ("Ana Bell" -> "AB", "ana" -> "A", "# general" -> "G"), "?" when it has none.
 * Whole characters, so an emoji or a non-Latin letter is never cut in half.
 */
export function initials(name: string): string {
  const words = name
    .split(/[\s._\-·#@]+/u)
    .map((w) => Array.from(w).find((c) => /[\p{L}\p{N}]/u.test(c)))
    .filter((c): c is string => c !== undefined);
  const picked = words.slice(0, 2).join("");
  return picked ? picked.toLocaleUpperCase() : "?";
}

export type AvatarSize = "small" | "normal" | "big";

export function Avatar(props: {
  name: string;
  url?: string | null;
  size?: AvatarSize;
  children?: JSX.Element;
}) {
  const app = useApp();
  const src = () => pictureSrc(props.url, app.pictureBase());
  const [broken, setBroken] = createSignal(false);
  // A new picture gets its own chance to load.
  createEffect(on(src, () => setBroken(false), { defer: true }));
  const size = () => (props.size && props.size !== "normal" ? ` ${props.size}` : "");
  return (
    <span class={`avatar${size()}`} aria-hidden="true" data-testid="avatar">
      <Show
        when={!broken() && src()}
        fallback={<span class="avatar-initials">{initials(props.name)}</span>}
      >
        {(s) => (
          <img
            class="avatar-img"
            src={s()}
            alt=""
            width="32"
            height="32"
            onError={() => setBroken(true)}
          />
        )}
      </Show>
      {props.children}
    </span>
  );
}
