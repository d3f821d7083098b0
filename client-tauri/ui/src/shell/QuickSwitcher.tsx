// The quick switcher (Ctrl+K): type to find a conversation or a contact, arrows to move,
// Enter to open (a contact opens the direct chat with them), Escape to close. Tab stays
// inside the dialog (its one tab stop is the search box; the matches are reached by the
// arrows), as in any modal dialog.

import { createMemo, createSignal, For, onMount, Show } from "solid-js";
import type { ContactView, ConversationView } from "../messenger/types";
import { trapTab } from "./focus";

export type SwitchItem =
  | { kind: "room"; id: string; label: string; detail: string; room: ConversationView }
  | { kind: "contact"; id: string; label: string; detail: string; contact: ContactView };

/** 0: no match; higher is better (prefix of the name, then of a word, then anywhere). */
export function matchScore(text: string, query: string): number {
  const t = text.toLowerCase();
  const q = query.toLowerCase().trim();
  if (q === "") return 1;
  if (t.startsWith(q)) return 4;
  if (t.split(/[\s._-]+/).some((w) => w.startsWith(q))) return 3;
  if (t.includes(q)) return 2;
  return 0;
}

export function switcherItems(
  rooms: readonly ConversationView[],
  contacts: readonly ContactView[],
  query: string,
  limit = 20,
): SwitchItem[] {
  const scored: [number, number, SwitchItem][] = [];
  rooms.forEach((r, i) => {
    const s = Math.max(matchScore(r.title, query), matchScore(r.otherUser?.username ?? "", query));
    if (s > 0) {
      scored.push([
        s,
        -i,
        {
          kind: "room",
          id: r.id,
          label: r.title,
          detail: r.kind === "direct" ? "Direct" : "Group",
          room: r,
        },
      ]);
    }
  });
  const direct = new Set(rooms.map((r) => r.otherUser?.id).filter(Boolean));
  contacts.forEach((c, i) => {
    if (direct.has(c.user.id)) return; // already listed as its direct room
    const s = Math.max(matchScore(c.user.name, query), matchScore(c.user.username, query));
    if (s > 0) {
      scored.push([
        s,
        -i - rooms.length,
        {
          kind: "contact",
          id: c.user.id,
          label: c.user.name,
          detail: `@${c.user.username}`,
          contact: c,
        },
      ]);
    }
  });
  scored.sort((a, b) => b[0] - a[0] || b[1] - a[1]);
  return scored.slice(0, limit).map(([, , item]) => item);
}

export function QuickSwitcher(props: {
  rooms: readonly ConversationView[];
  contacts: readonly ContactView[];
  onPick(item: SwitchItem): void;
  onClose(): void;
}) {
  let input!: HTMLInputElement;
  const [query, setQuery] = createSignal("");
  const [active, setActive] = createSignal(0);
  const items = createMemo(() => switcherItems(props.rooms, props.contacts, query()));
  onMount(() => input.focus());
  const pick = (i: number) => {
    const item = items()[i];
    if (item) props.onPick(item);
  };
  return (
    <div class="overlay">
      <div
        class="dialog switcher"
        role="dialog"
        aria-modal="true"
        aria-label="Quick switcher"
        data-testid="quick-switcher"
        onKeyDown={(e) => trapTab(e, e.currentTarget)}
        onFocusOut={(e) => {
          // Clicking or tabbing outside closes it.
          const to = e.relatedTarget as Node | null;
          if (to && !e.currentTarget.contains(to)) props.onClose();
        }}
      >
        <input
          ref={input}
          type="text"
          role="combobox"
          aria-expanded="true"
          aria-controls="switcher-list"
          aria-activedescendant={items()[active()] ? `switch-${active()}` : undefined}
          aria-label="Find a conversation or contact"
          placeholder="Find a conversation or contact"
          data-testid="switcher-input"
          value={query()}
          onInput={(e) => {
            setQuery(e.currentTarget.value);
            setActive(0);
          }}
          onKeyDown={(e) => {
            const n = items().length;
            if (e.key === "ArrowDown" && n > 0) {
              e.preventDefault();
              setActive((a) => (a + 1) % n);
            } else if (e.key === "ArrowUp" && n > 0) {
              e.preventDefault();
              setActive((a) => (a - 1 + n) % n);
            } else if (e.key === "Enter") {
              e.preventDefault();
              pick(active());
            } else if (e.key === "Escape") {
              e.preventDefault();
              props.onClose();
            }
          }}
        />
        <div id="switcher-list" role="listbox" aria-label="Matches">
          <For each={items()}>
            {(item, i) => (
              <div
                id={`switch-${i()}`}
                role="option"
                tabIndex={-1}
                data-testid="switcher-item"
                data-kind={item.kind}
                data-id={item.id}
                aria-selected={i() === active() ? "true" : "false"}
                onMouseEnter={() => setActive(i())}
                onClick={() => pick(i())}
                onKeyDown={(e) => {
                  if (e.key === "Enter") pick(i());
                }}
              >
                <span>{item.label}</span> <span class="muted">{item.detail}</span>
              </div>
            )}
          </For>
        </div>
        <Show when={items().length === 0}>
          <p class="muted">Nothing matches “{query()}”.</p>
        </Show>
      </div>
    </div>
  );
}
