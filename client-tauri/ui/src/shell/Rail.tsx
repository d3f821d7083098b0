// The left rail: direct messages and groups sorted by activity, each with its unread and
// mention badges, presence dot, last message and its time (channels are in their
// communities' lists, communities/ChannelList.tsx); the contacts entry (with the
// count of incoming requests) and the quick-switcher button.

import { For, Show } from "solid-js";
import { Avatar } from "../files/Avatar";
import { PresenceDot } from "../messenger/Conversation";
import { plainText } from "../messenger/format";
import type { ConversationView } from "../messenger/types";
import { useShell } from "./context";

/** "14:05" today, "Mon" this week, "3 Feb" this year, else "3 Feb 2024". */
export function shortTime(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const sameDay = d.toDateString() === now.toDateString();
  if (sameDay) return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const days = (now.getTime() - d.getTime()) / 86_400_000;
  if (days < 6) return d.toLocaleDateString(undefined, { weekday: "short" });
  if (d.getFullYear() === now.getFullYear()) {
    return d.toLocaleDateString(undefined, { day: "numeric", month: "short" });
  }
  return d.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
}

export function previewText(r: ConversationView): string {
  const m = r.lastMessage;
  if (!m) return "No messages yet";
  if (m.authorBlocked) return "Message from someone you blocked";
  if (m.kind === "missed_call") return m.body || "Missed call";
  const who = m.mine ? "You: " : r.kind === "direct" ? "" : m.authorName ? `${m.authorName}: ` : "";
  return `${who}${plainText(m.body)}`;
}

function RailRow(props: { room: ConversationView; active: boolean; onOpen(): void }) {
  const r = () => props.room;
  const label = () => {
    const parts = [r().title];
    if (r().unread > 0) parts.push(`${r().unread} unread`);
    if (r().mentions > 0) parts.push(`${r().mentions} mentioning you`);
    if (r().callParticipants > 0) parts.push("call running");
    return parts.join(", ");
  };
  return (
    <li
      data-testid="rail-room"
      data-room-id={r().id}
      data-kind={r().kind}
      data-unread={String(r().unread)}
      classList={{ "rail-room": true, active: props.active, unread: r().unread > 0 }}
    >
      <button
        type="button"
        class="rail-open"
        aria-current={props.active ? "page" : undefined}
        aria-label={label()}
        onClick={() => props.onOpen()}
      >
        <Avatar name={r().title || "#"} url={r().otherUser?.avatarUrl}>
          <Show when={r().kind === "direct"}>
            <PresenceDot presence={r().presence} />
          </Show>
        </Avatar>
        <span class="rail-text">
          <span class="rail-line">
            <span class="rail-room-title" data-testid="rail-room-title">
              {r().title}
            </span>
            <Show when={r().lastMessage}>
              {(m) => (
                <time class="rail-time" dateTime={m().createdAt}>
                  {shortTime(m().createdAt)}
                </time>
              )}
            </Show>
          </span>
          <span class="rail-line">
            <span class="rail-room-preview" data-testid="rail-room-preview">
              {previewText(r())}
            </span>
            <Show when={r().callParticipants > 0}>
              <span class="badge call-badge" aria-hidden="true">
                call
              </span>
            </Show>
            <Show when={r().mentions > 0}>
              <span class="badge mention-badge" data-testid="mention-badge" aria-hidden="true">
                @{r().mentions}
              </span>
            </Show>
            <Show when={r().unread > 0}>
              <span
                class="badge unread-badge"
                classList={{ muted: r().muted }}
                data-testid="unread-badge"
                aria-hidden="true"
              >
                {r().unread}
              </span>
            </Show>
          </span>
        </span>
      </button>
    </li>
  );
}

export function Rail(props: { onSwitcher(): void }) {
  const shell = useShell();
  const openId = () => {
    const v = shell.view();
    return v.kind === "room" ? v.roomId : null;
  };
  const direct = () => shell.store.conversations().filter((r) => r.kind === "direct");
  const groups = () => shell.store.conversations().filter((r) => r.kind === "group");
  const incoming = () => shell.store.state.contacts.incoming.length;
  return (
    <nav class="rail" data-testid="rail" aria-label="Conversations">
      <div class="rail-top">
        <button
          type="button"
          class="rail-search"
          aria-keyshortcuts="Control+K"
          onClick={() => props.onSwitcher()}
        >
          Find or start a conversation <kbd>Ctrl K</kbd>
        </button>
        <button
          type="button"
          data-testid="contacts-entry"
          class="rail-entry"
          aria-current={shell.view().kind === "contacts" ? "page" : undefined}
          onClick={() => shell.go({ kind: "contacts" })}
        >
          Contacts
          <Show when={incoming() > 0}>
            <span class="badge unread-badge">
              {incoming()}
              <span class="visually-hidden"> requests</span>
            </span>
          </Show>
        </button>
        <button
          type="button"
          class="rail-entry"
          data-testid="search-entry"
          aria-current={shell.view().kind === "search" ? "page" : undefined}
          onClick={() => shell.go({ kind: "search" })}
        >
          Search messages
        </button>
        <button
          type="button"
          class="rail-entry"
          id="rail-home"
          aria-current={shell.view().kind === "home" ? "page" : undefined}
          onClick={() => shell.go({ kind: "home" })}
        >
          New group or join
        </button>
      </div>
      <h2 class="rail-heading" id="rail-direct">
        Direct messages
      </h2>
      <ul class="rail-list" aria-labelledby="rail-direct">
        <For each={direct()} fallback={<li class="muted rail-empty">No direct messages yet</li>}>
          {(r) => (
            <RailRow room={r} active={openId() === r.id} onOpen={() => shell.openRoom(r.id)} />
          )}
        </For>
      </ul>
      <h2 class="rail-heading" id="rail-groups">
        Groups
      </h2>
      <ul class="rail-list" aria-labelledby="rail-groups">
        <For each={groups()} fallback={<li class="muted rail-empty">No groups yet</li>}>
          {(r) => (
            <RailRow room={r} active={openId() === r.id} onOpen={() => shell.openRoom(r.id)} />
          )}
        </For>
      </ul>
    </nav>
  );
}
