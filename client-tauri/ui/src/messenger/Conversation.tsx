// The open conversation: header (title, presence, call buttons, settings), the virtualized
// timeline with jumps to the first unread and to the newest, the typing line and the
// composer.

import { createEffect, createMemo, createSignal, on, onCleanup, Show } from "solid-js";
import { canWrite, channelOf, createChannelMentions, ReadOnlyNote } from "../communities/channel";
import { onFileDrop } from "../files/api";
import { createUploads } from "../files/uploads";
import type { Focus } from "../shell/context";
import { useShell } from "../shell/context";
import { toastInfo } from "../toasts";
import { LIMITS } from "../validation";
import { Composer } from "./Composer";
import { plainText } from "./format";
import { GroupSettings } from "./GroupSettings";
import { type MessageActions, MessageItem } from "./MessageItem";
import { buildRows, type Row, tickFor } from "./rows";
import type { Timeline } from "./store";
import type { MessageView, UserView } from "./types";
import { VirtualList, type VirtualListHandle } from "./VirtualList";

declare global {
  interface Window {
    /** Set after a room is opened and painted (read by the desktop bench). */
    __confabOpenTimings?: {
      roomId: string;
      messages: number;
      rowsInDom: number;
      answeredMs: number;
      paintedMs: number;
    };
  }
}

export function typingLine(users: readonly UserView[]): string {
  const names = users.map((u) => u.name);
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "Several people are typing…";
}

function estimate(row: Row | undefined): number {
  if (!row) return 40;
  if (row.kind !== "message") return 36;
  return row.message.replyTo ? 88 : row.grouped ? 30 : 58;
}

export function PresenceDot(props: { presence: string | null | undefined }) {
  return (
    <Show when={props.presence}>
      {(p) => (
        <span
          class={`presence presence-${p()}`}
          data-testid="presence-dot"
          data-presence={p()}
          role="img"
          aria-label={p()}
        />
      )}
    </Show>
  );
}

export function Conversation(props: { roomId: string; focus?: Focus }) {
  const shell = useShell();
  const { store, api } = shell;
  const [timeline, setTimeline] = createSignal<Timeline | null>(null);
  const [replyTo, setReplyTo] = createSignal<MessageView | null>(null);
  const [atBottom, setAtBottom] = createSignal(true);
  const [settingsOpen, setSettingsOpen] = createSignal(false);
  const [members, setMembers] = createSignal<UserView[]>([]);
  const [loadError, setLoadError] = createSignal<string | null>(null);
  let list: VirtualListHandle | undefined;

  const room = () => store.state.rooms[props.roomId];
  // Files being attached: dropped from the OS (paths) or from the page (bytes), picked
  // or pasted in the composer. Another room starts with none.
  const uploads = createUploads(undefined, (e) => shell.fail(e));
  createEffect(
    on(
      () => props.roomId,
      () => uploads.clear(),
      { defer: true },
    ),
  );
  onCleanup(onFileDrop((paths) => uploads.addPaths(paths)));
  const isDirect = () => room()?.kind === "direct";
  // A channel's "@" offers its community's members (and @everyone to admins); an
  // announcement channel shows non-admins a note instead of the composer.
  const channelMentions = createChannelMentions(shell, () => props.roomId);
  const readOnlyIn = () => {
    const c = channelOf(shell, props.roomId);
    return c && !canWrite(c) ? c.community : undefined;
  };
  const showTicks = () =>
    isDirect() || (room()?.memberCount ?? Number.POSITIVE_INFINITY) <= LIMITS.receiptsMaxMembers;

  createEffect(
    on(
      () => props.roomId,
      (roomId) => {
        setTimeline(null);
        setReplyTo(null);
        setSettingsOpen(false);
        setLoadError(null);
        setMembers([]);
        const started = performance.now();
        store.open(roomId).then(
          (t) => {
            if (props.roomId !== roomId) return;
            const answered = performance.now();
            setTimeline(t);
            // For the desktop bench: when the opened room's rows were first painted.
            requestAnimationFrame(() => {
              window.__confabOpenTimings = {
                roomId,
                messages: t.messages().length,
                rowsInDom: document.querySelectorAll(".vrow").length,
                answeredMs: answered - started,
                paintedMs: performance.now() - started,
              };
            });
          },
          (err: unknown) => {
            setLoadError(err instanceof Error ? err.message : String(err));
            shell.fail(err);
          },
        );
        // Group members come from the room; a channel's members are its community's.
        if (store.state.rooms[roomId]?.kind === "group") {
          api.roomMembers(roomId).then(
            (ms) => {
              const myId = shell.me()?.id;
              if (props.roomId === roomId) {
                setMembers(ms.map((m) => m.user).filter((u) => u.id !== myId));
              }
            },
            () => undefined,
          );
        }
      },
    ),
  );
  onCleanup(() => void store.close().catch(() => undefined));

  // Removed from the room elsewhere (left on another device, removed by an admin).
  createEffect(
    on(room, (now, before) => {
      if (before && !now) {
        toastInfo(`You are no longer in “${before.title}”`);
        shell.go({ kind: "home" });
      }
    }),
  );

  const messages = () => timeline()?.messages() ?? [];
  const rows = createMemo(() => {
    const t = timeline();
    if (!t) return [];
    const lastSeq = room()?.lastSeq ?? 0;
    return buildRows(t.messages(), t.readAtOpen < lastSeq ? t.readAtOpen : null);
  });
  const rowMap = createMemo(() => new Map(rows().map((r) => [r.key, r])));
  const keys = createMemo(() => rows().map((r) => r.key));
  const byId = createMemo(() => {
    const map = new Map<string, MessageView>();
    for (const m of messages()) if (m.id) map.set(m.id, m);
    return map;
  });

  const newestSeq = () => {
    const list = messages();
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]?.seq;
      if (s != null) return s;
    }
    return 0;
  };

  // Read up to the newest message while it is in view and the window has focus.
  const markRead = () => {
    const t = timeline();
    if (!t || !atBottom() || t.hasMoreAfter() || !document.hasFocus()) return;
    const seq = newestSeq();
    if (seq > (room()?.lastReadSeq ?? 0)) void store.markRead(props.roomId, seq);
  };
  createEffect(on([messages, atBottom], markRead));
  const onFocus = () => markRead();
  window.addEventListener("focus", onFocus);
  onCleanup(() => window.removeEventListener("focus", onFocus));

  const [inView, setInView] = createSignal<[string | undefined, string | undefined]>([
    undefined,
    undefined,
  ]);
  const firstUnreadKnown = () => rowMap().has("new-messages");
  // "Jump to first unread" while the divider is above the rows in view, or not loaded.
  const hasUnreadAbove = () => {
    const t = timeline();
    if (!t) return false;
    if (firstUnreadKnown()) {
      const ks = keys();
      const [first] = inView();
      return first !== undefined && ks.indexOf("new-messages") < ks.indexOf(first);
    }
    const oldest = messages().find((m) => m.seq !== null)?.seq;
    return oldest != null && t.readAtOpen > 0 && t.readAtOpen + 1 < oldest;
  };

  const jumpToUnread = async () => {
    const t = timeline();
    if (!t) return;
    if (!firstUnreadKnown()) await store.loadAround(props.roomId, t.readAtOpen + 1);
    queueMicrotask(() => list?.scrollToKey("new-messages"));
  };
  // A search hit: load the page around it unless it is loaded, then bring it into view.
  const [focusedId, setFocusedId] = createSignal<string | null>(null);
  createEffect(
    on([timeline, () => props.focus] as const, ([t, focus]) => {
      if (!t || !focus) return;
      setFocusedId(focus.messageId);
      const show = () => {
        const m = t.messages().find((x) => x.id === focus.messageId);
        if (m) queueMicrotask(() => list?.scrollToKey(m.key));
      };
      if (t.messages().some((x) => x.id === focus.messageId)) show();
      else store.loadAround(props.roomId, focus.seq).then(show, shell.fail);
    }),
  );

  const jumpToNewest = async () => {
    const t = timeline();
    if (t?.hasMoreAfter()) await store.loadLatest(props.roomId);
    list?.scrollToBottom();
    setAtBottom(true);
  };

  const actions: MessageActions = {
    reply: (m) => setReplyTo(m),
    react: (m, emoji, add) => {
      if (!m.id) return;
      const op = add ? api.react : api.unreact;
      op(props.roomId, m.id, emoji).then((u) => store.put(u), shell.fail);
    },
    async edit(m, body) {
      if (!m.id) return;
      try {
        store.put(await api.editMessage(props.roomId, m.id, body));
      } catch (err) {
        shell.fail(err);
      }
    },
    async remove(m) {
      if (!m.id) return;
      try {
        store.put(await api.deleteMessage(props.roomId, m.id));
      } catch (err) {
        shell.fail(err);
      }
    },
    retry(m) {
      if (!m.clientId) return;
      // The retry is a new pending message (a new key): it replaces the failed one.
      api.retryMessage(m.clientId).then((u) => {
        timeline()?.setMessages((list) => list.filter((x) => x.key !== m.key));
        store.put(u);
      }, shell.fail);
    },
    discard(m) {
      if (!m.clientId) return;
      api.discardMessage(m.clientId).then(() => {
        timeline()?.setMessages((list) => list.filter((x) => x.key !== m.key));
      }, shell.fail);
    },
  };

  const send = (body: string, reply: MessageView | null, attachments: string[]) => {
    setReplyTo(null);
    list?.scrollToBottom();
    api
      .sendMessage(props.roomId, body, reply?.id ?? null, attachments)
      .then((m) => store.put(m), shell.fail);
  };

  let lastTyping = 0;
  const onTyping = () => {
    // Rust throttles too; this just avoids an IPC call per keystroke.
    const now = Date.now();
    if (now - lastTyping < 2000) return;
    lastTyping = now;
    api.typing(props.roomId).catch(() => undefined);
  };

  const typing = () => typingLine(store.state.typing[props.roomId] ?? []);
  // Screen readers hear new messages from others as they arrive (the list itself is not
  // a live region: it re-renders rows while scrolling).
  const [announce, setAnnounce] = createSignal("");
  createEffect(
    on(
      () => messages()[messages().length - 1],
      (last, prev) => {
        if (!last || !prev || last.key === prev.key || last.mine || last.kind !== "text") return;
        setAnnounce(`${last.authorName ?? "Someone"}: ${plainText(last.body).slice(0, 200)}`);
      },
    ),
  );
  const inCall = () => shell.calls.session()?.room.id === props.roomId;

  return (
    <section
      onDragOver={(e) => {
        if (e.dataTransfer?.types.includes("Files")) e.preventDefault();
      }}
      onDrop={(e) => {
        const dropped = Array.from(e.dataTransfer?.files ?? []);
        if (dropped.length === 0) return;
        e.preventDefault();
        void uploads.addFiles(dropped);
      }}
      class="conversation"
      data-testid="conversation"
      data-room-id={props.roomId}
      aria-labelledby="conversation-title"
    >
      <header class="conversation-header">
        <h1 id="conversation-title" data-testid="conversation-title" tabIndex={-1}>
          <Show when={isDirect()}>
            <PresenceDot presence={room()?.presence} />
          </Show>
          {room()?.kind === "channel" ? `# ${room()?.title ?? ""}` : (room()?.title ?? "")}
        </h1>
        <Show when={isDirect() && room()?.otherUser?.statusText}>
          <span class="muted status-text">{room()?.otherUser?.statusText}</span>
        </Show>
        <div class="conversation-actions">
          <Show when={isDirect() && !inCall()}>
            <button
              type="button"
              data-testid="call-video"
              aria-label="Video call"
              title="Video call"
              onClick={() => void shell.calls.start(props.roomId, room()?.title ?? "", true)}
            >
              Video call
            </button>
            <button
              type="button"
              data-testid="call-audio"
              aria-label="Audio call"
              title="Audio call"
              onClick={() => void shell.calls.start(props.roomId, room()?.title ?? "", false)}
            >
              Audio call
            </button>
            <button
              type="button"
              class="ghost"
              data-testid="call-check-devices"
              aria-label="Check camera and microphone, then call"
              title="Check camera and microphone, then call"
              onClick={() =>
                shell.go({
                  kind: "prejoin",
                  roomId: props.roomId,
                  title: room()?.title ?? "",
                  audioOnly: false,
                })
              }
            >
              Devices…
            </button>
          </Show>
          <Show when={!isDirect() && !inCall()}>
            <Show
              when={(room()?.callParticipants ?? 0) > 0}
              fallback={
                <button
                  type="button"
                  class="room-call"
                  onClick={() =>
                    shell.go({
                      kind: "prejoin",
                      roomId: props.roomId,
                      title: room()?.title ?? "",
                      audioOnly: false,
                    })
                  }
                >
                  Start call
                </button>
              }
            >
              <button
                type="button"
                class="primary room-call"
                data-testid="join-running-call"
                onClick={() =>
                  shell.go({
                    kind: "prejoin",
                    roomId: props.roomId,
                    title: room()?.title ?? "",
                    audioOnly: false,
                  })
                }
              >
                Join call ({room()?.callParticipants})
              </button>
            </Show>
          </Show>
          <Show when={inCall()}>
            <button type="button" class="primary" onClick={() => shell.go({ kind: "call" })}>
              Return to call
            </button>
          </Show>
          <button
            type="button"
            class="ghost"
            aria-pressed={room()?.muted ? "true" : "false"}
            data-testid="room-mute"
            aria-label={room()?.muted ? "Unmute this room" : "Mute this room"}
            title={
              room()?.muted
                ? "Notifications are off for this room: turn them on"
                : "Turn notifications off for this room"
            }
            onClick={() =>
              api
                .setRoomMuted(props.roomId, !room()?.muted)
                .then((r) => store.putRoom(r), shell.fail)
            }
          >
            {room()?.muted ? "Unmute" : "Mute"}
          </button>
          <Show when={room()?.kind === "group"}>
            <button
              type="button"
              class="ghost"
              data-testid="group-settings-open"
              aria-expanded={settingsOpen() ? "true" : "false"}
              aria-controls="group-settings"
              onClick={() => setSettingsOpen((v) => !v)}
            >
              Settings
            </button>
          </Show>
        </div>
      </header>
      <div class="conversation-body">
        <div class="timeline">
          <Show
            when={timeline()}
            fallback={
              <p class="empty" aria-busy={loadError() ? "false" : "true"}>
                {loadError() ?? "Loading messages…"}
              </p>
            }
          >
            <Show when={timeline()?.loadingOlder()}>
              <p class="loading-older muted" role="status">
                Loading older messages…
              </p>
            </Show>
            <VirtualList
              keys={keys}
              estimate={(k) => estimate(rowMap().get(k))}
              class="message-list"
              data-testid="message-list"
              aria-label="Messages"
              handle={(h) => {
                list = h;
              }}
              onAtBottom={(b) => {
                setAtBottom(b);
                if (b && timeline()?.hasMoreAfter()) void store.loadNewer(props.roomId);
              }}
              onNearTop={() => void store.loadOlder(props.roomId).catch(shell.fail)}
              onRange={(first, last) => setInView([first, last])}
              onFocusList={(scroller) => {
                // Tab into the timeline lands on the newest message in view; the arrow
                // keys then move between messages.
                const box = scroller.getBoundingClientRect();
                const shown = Array.from(
                  scroller.querySelectorAll<HTMLElement>("[data-testid='message']"),
                ).filter((m) => m.getBoundingClientRect().top <= box.bottom);
                shown[shown.length - 1]?.focus();
              }}
            >
              {(key) => {
                const row = () => rowMap().get(key);
                return (
                  <Show when={row()}>
                    {(r) => {
                      const x = r();
                      if (x.kind === "day") {
                        return (
                          <div class="day-separator" data-testid="day-separator">
                            <span>{x.label}</span>
                          </div>
                        );
                      }
                      if (x.kind === "divider") {
                        return (
                          <div class="new-divider" data-testid="new-divider">
                            <span>New messages</span>
                          </div>
                        );
                      }
                      // Memos: a new message elsewhere rebuilds the rows, but this row's
                      // parts only update when its own message or grouping changes.
                      const row = () => {
                        const cur = rowMap().get(key);
                        return cur?.kind === "message" ? cur : x;
                      };
                      const message = createMemo(() => row().message);
                      const grouped = createMemo(() => row().grouped);
                      const tick = createMemo(() =>
                        showTicks() ? tickFor(message(), store.state.receipts[props.roomId]) : null,
                      );
                      const quoted = createMemo(() => {
                        const id = message().replyTo;
                        return id ? byId().get(id) : null;
                      });
                      return (
                        <MessageItem
                          message={message()}
                          grouped={grouped()}
                          tick={tick()}
                          quoted={quoted()}
                          me={shell.me()?.username}
                          actions={actions}
                          focused={focusedId() !== null && message().id === focusedId()}
                        />
                      );
                    }}
                  </Show>
                );
              }}
            </VirtualList>
            <Show when={messages().length === 0}>
              <p class="empty" data-testid="empty-conversation">
                No messages yet. Say hello!
              </p>
            </Show>
          </Show>
          <Show when={hasUnreadAbove()}>
            <button
              type="button"
              class="jump-unread"
              data-testid="jump-unread"
              onClick={() => void jumpToUnread()}
            >
              ↑ Jump to first unread
            </button>
          </Show>
          <Show when={!atBottom() || timeline()?.hasMoreAfter()}>
            <button
              type="button"
              class="jump-newest"
              data-testid="jump-newest"
              onClick={() => void jumpToNewest()}
            >
              ↓ Jump to newest
            </button>
          </Show>
          <p class="visually-hidden" aria-live="polite" data-testid="new-message-announcement">
            {announce()}
          </p>
          <p class="typing-line" data-testid="typing-line" aria-live="polite">
            {typing()}
          </p>
          <Show
            when={readOnlyIn()}
            fallback={
              <Composer
                roomId={props.roomId}
                drafts={shell.drafts}
                replyTo={replyTo()}
                members={
                  isDirect()
                    ? undefined
                    : room()?.kind === "channel"
                      ? channelMentions()
                      : members()
                }
                uploads={uploads}
                onCancelReply={() => setReplyTo(null)}
                onSend={send}
                onTyping={onTyping}
              />
            }
          >
            {(community) => <ReadOnlyNote community={community()} />}
          </Show>
        </div>
        <Show when={settingsOpen() && room()}>
          {(r) => <GroupSettings room={r()} onClose={() => setSettingsOpen(false)} />}
        </Show>
      </div>
    </section>
  );
}
