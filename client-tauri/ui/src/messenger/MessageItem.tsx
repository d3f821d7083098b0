// One message row: the author's avatar, name and time (unless grouped under the previous one), the quoted
// message it replies to, the formatted body, reactions, the tick of my own messages, and
// actions (reply, react, edit and delete my own; retry or discard a failed one).

import { createSignal, For, Show } from "solid-js";
import { useApp } from "../app/state";
import { Avatar } from "../avatar/Avatar";
import { Attachments } from "../files/Attachments";
import { ClockIcon } from "../icons";
import { Formatted } from "./Formatted";
import { plainText } from "./format";
import type { Tick } from "./rows";
import type { MessageView } from "./types";

export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

const TICK_LABEL: Record<Tick, string> = {
  pending: "Sending…",
  failed: "Not sent",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
};

/** Moves the focus to the message `step` rows away from `from` (among the rendered ones). */
export function focusSibling(from: HTMLElement, step: -1 | 1): void {
  const list = from.closest(".vlist");
  if (!list) return;
  const all = Array.from(list.querySelectorAll<HTMLElement>("[data-testid='message']"));
  const next = all[all.indexOf(from) + step];
  next?.focus();
}

export function timeOf(iso: string): string {
  const d = new Date(iso);
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function TickMark(props: { tick: Tick }) {
  return (
    <span
      class={`tick tick-${props.tick}`}
      data-testid="tick"
      role="img"
      aria-label={TICK_LABEL[props.tick]}
      title={TICK_LABEL[props.tick]}
    >
      {props.tick === "pending" ? (
        <ClockIcon />
      ) : props.tick === "failed" ? (
        "!"
      ) : props.tick === "sent" ? (
        "✓"
      ) : (
        "✓✓"
      )}
    </span>
  );
}

export interface MessageActions {
  reply(m: MessageView): void;
  react(m: MessageView, emoji: string, on: boolean): void;
  edit(m: MessageView, body: string): Promise<void>;
  remove(m: MessageView): Promise<void>;
  retry(m: MessageView): void;
  discard(m: MessageView): void;
}

export function MessageItem(props: {
  message: MessageView;
  grouped: boolean;
  tick: Tick | null;
  quoted?: MessageView | null;
  me?: string;
  actions: MessageActions;
  /** The message a search hit led to: marked until another is. */
  focused?: boolean;
}) {
  const app = useApp();
  const m = () => props.message;
  const [editing, setEditing] = createSignal(false);
  const [confirmDelete, setConfirmDelete] = createSignal(false);
  const [picking, setPicking] = createSignal(false);
  let editor!: HTMLTextAreaElement;
  const canAct = () => m().state === "sent" && !m().deleted && m().id !== null;

  const saveEdit = async () => {
    const body = editor.value.trim();
    if (body === "" || body === m().body) {
      setEditing(false);
      return;
    }
    await props.actions.edit(m(), body);
    setEditing(false);
  };

  return (
    <article
      ref={(el) => {
        // Reached with the arrow keys from the list (roving focus, see onKeyDown); Tab then
        // goes to its actions, which appear with :focus-within.
        el.tabIndex = -1;
      }}
      onKeyDown={(e) => {
        if (e.target !== e.currentTarget) return;
        if (e.key === "ArrowUp" || e.key === "ArrowDown") {
          e.preventDefault();
          focusSibling(e.currentTarget, e.key === "ArrowUp" ? -1 : 1);
        } else if (e.key === "Escape") {
          e.currentTarget
            .closest("[data-testid='conversation']")
            ?.querySelector<HTMLElement>("[data-testid='composer-input']")
            ?.focus();
        }
      }}
      class="message"
      classList={{
        grouped: props.grouped,
        mine: m().mine,
        deleted: m().deleted,
        mentioned: m().mentionsMe,
        system: m().kind !== "text",
        focused: props.focused ?? false,
      }}
      data-testid="message"
      data-focused={props.focused ? "true" : undefined}
      data-key={m().key}
      data-message-id={m().id ?? ""}
      data-seq={m().seq ?? ""}
      data-state={m().state}
      data-mine={m().mine ? "true" : "false"}
      data-tick={props.tick ?? undefined}
    >
      <Show when={!props.grouped}>
        <div class="message-head">
          <Show when={m().kind === "text"}>
            <Avatar
              size="small"
              name={m().authorName ?? "?"}
              url={m().mine ? (app.me()?.avatarUrl ?? m().authorAvatarUrl) : m().authorAvatarUrl}
            />
          </Show>
          <span class="message-author">{m().mine ? "You" : (m().authorName ?? "Unknown")}</span>
          <time class="message-time" dateTime={m().createdAt}>
            {timeOf(m().createdAt)}
          </time>
        </div>
      </Show>
      <Show when={m().replyTo !== null && !m().deleted}>
        <blockquote class="message-quote" data-testid="message-quote">
          <Show when={props.quoted} fallback={<span class="muted">A message not loaded</span>}>
            {(q) => (
              <>
                <span class="quote-author">{q().mine ? "You" : (q().authorName ?? "Unknown")}</span>{" "}
                <span class="quote-body">
                  {q().deleted ? "Deleted message" : plainText(q().body).slice(0, 140)}
                </span>
              </>
            )}
          </Show>
        </blockquote>
      </Show>
      <div class="message-body" data-testid="message-body">
        <Show
          when={!m().deleted}
          fallback={<p class="muted message-para">This message was deleted</p>}
        >
          <Show
            when={m().kind === "text"}
            fallback={
              <p class="message-para system-line" data-testid="missed-call">
                {m().body || "Missed call"}
              </p>
            }
          >
            <Show
              when={!m().authorBlocked}
              fallback={<p class="muted message-para">Message from someone you blocked</p>}
            >
              <Show when={editing()} fallback={<Formatted body={m().body} me={props.me} />}>
                <div class="message-edit">
                  <label class="visually-hidden" for={`edit-${m().key}`}>
                    Edit message
                  </label>
                  <textarea
                    ref={editor}
                    id={`edit-${m().key}`}
                    class="composer-input"
                    value={m().body}
                    onKeyDown={(e) => {
                      if (e.key === "Escape") setEditing(false);
                      if (e.key === "Enter" && !e.shiftKey) {
                        e.preventDefault();
                        void saveEdit();
                      }
                    }}
                  />
                  <div class="row">
                    <button type="button" class="primary" onClick={() => void saveEdit()}>
                      Save
                    </button>
                    <button type="button" onClick={() => setEditing(false)}>
                      Cancel
                    </button>
                  </div>
                </div>
              </Show>
            </Show>
          </Show>
          <Show when={m().editedAt}>
            <span class="edited muted"> (edited)</span>
          </Show>
          <Show when={!m().authorBlocked}>
            <Attachments items={m().attachments} />
          </Show>
        </Show>
        <Show when={props.tick}>{(t) => <TickMark tick={t()} />}</Show>
      </div>
      <Show when={m().reactions.length > 0 && !m().deleted}>
        <div class="reactions" role="toolbar" aria-label="Reactions">
          <For each={m().reactions}>
            {(r) => (
              <button
                type="button"
                class="reaction"
                data-testid="reaction"
                aria-pressed={r.mine ? "true" : "false"}
                aria-label={`${r.emoji} ${r.count}${r.mine ? ", including you" : ""}`}
                onClick={() => props.actions.react(m(), r.emoji, !r.mine)}
              >
                {r.emoji} {r.count}
              </button>
            )}
          </For>
        </div>
      </Show>
      <Show when={m().state === "failed"}>
        <div class="message-failed" role="alert">
          <span>{m().error ?? "Not sent"}</span>
          <button
            type="button"
            data-testid="retry-message"
            onClick={() => props.actions.retry(m())}
          >
            Retry
          </button>
          <button type="button" class="ghost" onClick={() => props.actions.discard(m())}>
            Discard
          </button>
        </div>
      </Show>
      <Show when={canAct() && m().kind === "text"}>
        <div class="message-actions" role="toolbar" aria-label="Message actions">
          <button type="button" class="ghost" onClick={() => props.actions.reply(m())}>
            Reply
          </button>
          <button
            type="button"
            class="ghost"
            aria-expanded={picking() ? "true" : "false"}
            onClick={() => setPicking((v) => !v)}
          >
            React
          </button>
          <Show when={m().mine}>
            <button type="button" class="ghost" onClick={() => setEditing(true)}>
              Edit
            </button>
            <Show
              when={confirmDelete()}
              fallback={
                <button type="button" class="ghost danger" onClick={() => setConfirmDelete(true)}>
                  Delete
                </button>
              }
            >
              <span>Delete?</span>
              <button
                type="button"
                class="danger"
                onClick={async () => {
                  setConfirmDelete(false);
                  await props.actions.remove(m());
                }}
              >
                Delete
              </button>
              <button type="button" onClick={() => setConfirmDelete(false)}>
                Keep
              </button>
            </Show>
          </Show>
          <Show when={picking()}>
            <div class="reaction-picker" role="toolbar" aria-label="Pick a reaction">
              <For each={QUICK_REACTIONS}>
                {(emoji) => (
                  <button
                    type="button"
                    class="ghost"
                    aria-label={`React with ${emoji}`}
                    onClick={() => {
                      setPicking(false);
                      const mine = m().reactions.find((r) => r.emoji === emoji)?.mine ?? false;
                      props.actions.react(m(), emoji, !mine);
                    }}
                  >
                    {emoji}
                  </button>
                )}
              </For>
            </div>
          </Show>
        </div>
      </Show>
    </article>
  );
}
