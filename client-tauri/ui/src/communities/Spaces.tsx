// The strip of spaces at the far left: Home (direct messages and groups), then one icon
// per community of mine with its unread (or mention) badge, then "Discover or create".

import { For, Show } from "solid-js";
import { useShell } from "../shell/context";
import type { CommunityView } from "./api";

/** Up to two initials of a community's name, for an icon without a picture. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters =
    words.length > 1 ? [words[0]?.[0], words[1]?.[0]] : [words[0]?.[0], words[0]?.[1]];
  return letters.filter(Boolean).join("").toUpperCase() || "#";
}

export function CommunityIcon(props: { community: Pick<CommunityView, "name" | "iconUrl"> }) {
  return (
    <Show
      when={props.community.iconUrl}
      fallback={
        <span class="community-icon initials" aria-hidden="true">
          {initials(props.community.name)}
        </span>
      }
    >
      {(url) => <img class="community-icon" src={url()} alt="" width="40" height="40" />}
    </Show>
  );
}

export function Spaces() {
  const shell = useShell();
  const current = () => shell.space();
  return (
    <nav class="spaces" data-testid="spaces" aria-label="Communities">
      <button
        type="button"
        class="space"
        classList={{ active: current() === null }}
        data-testid="space-home"
        aria-current={current() === null ? "page" : undefined}
        aria-label="Direct messages and groups"
        title="Direct messages and groups"
        onClick={() => shell.setSpace(null)}
      >
        <span class="community-icon initials" aria-hidden="true">
          ⌂
        </span>
      </button>
      <For each={shell.communities.list()}>
        {(c) => {
          const n = () => shell.communities.counts(c.id);
          const label = () => {
            const parts = [c.name];
            if (n().unread > 0) parts.push(`${n().unread} unread`);
            if (n().mentions > 0) parts.push(`${n().mentions} mentioning you`);
            return parts.join(", ");
          };
          return (
            <button
              type="button"
              class="space"
              classList={{ active: current() === c.id, unread: n().unread > 0 }}
              data-testid="space-community"
              data-community-id={c.id}
              data-unread={String(n().unread)}
              aria-current={current() === c.id ? "page" : undefined}
              aria-label={label()}
              title={c.name}
              onClick={() => shell.setSpace(c.id)}
            >
              <CommunityIcon community={c} />
              <Show
                when={n().mentions > 0}
                fallback={
                  <Show when={n().unread > 0}>
                    <span class="space-dot" data-testid="space-unread" aria-hidden="true" />
                  </Show>
                }
              >
                <span class="badge mention-badge space-badge" aria-hidden="true">
                  @{n().mentions}
                </span>
              </Show>
            </button>
          );
        }}
      </For>
      <button
        type="button"
        class="space"
        data-testid="space-discover"
        aria-current={shell.view().kind === "discover" ? "page" : undefined}
        aria-label="Discover or create a community"
        title="Discover or create a community"
        onClick={() => shell.go({ kind: "discover" })}
      >
        <span class="community-icon initials" aria-hidden="true">
          +
        </span>
      </button>
    </nav>
  );
}
