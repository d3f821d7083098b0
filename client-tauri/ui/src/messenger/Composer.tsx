// The composer: a textarea whose text is kept per room (drafts), Enter sends (Shift+Enter
// makes a new line), typing is reported as you type, a reply shows what it quotes, and in
// groups "@" offers the members whose name starts with what follows. Files are attached
// by the button (the OS dialog), by pasting, or by dropping them on the conversation;
// each uploads at once with its progress and a cancel, and goes out with the message.

import { createEffect, createMemo, createSignal, For, on, Show } from "solid-js";
import { formatSize, pickFiles } from "../files/api";
import type { Uploads } from "../files/uploads";
import { PaperclipIcon } from "../icons";
import { LIMITS } from "../validation";
import { plainText } from "./format";
import type { MessageView, UserView } from "./types";

/** Drafts by room, kept while the app runs. */
export class Drafts {
  private readonly texts = new Map<string, string>();
  get(room: string): string {
    return this.texts.get(room) ?? "";
  }
  set(room: string, text: string): void {
    if (text === "") this.texts.delete(room);
    else this.texts.set(room, text);
  }
}

/** The "@name" being typed at `caret`, if any: its start and the text after "@". */
export function mentionAt(text: string, caret: number): { start: number; query: string } | null {
  const before = text.slice(0, caret);
  const m = /(^|[\s(])@([a-z0-9_.-]{0,32})$/i.exec(before);
  if (!m) return null;
  const query = m[2] ?? "";
  return { start: caret - query.length - 1, query: query.toLowerCase() };
}

export function Composer(props: {
  roomId: string;
  drafts: Drafts;
  replyTo: MessageView | null;
  members?: UserView[];
  disabled?: boolean;
  uploads?: Uploads;
  onCancelReply(): void;
  onSend(body: string, replyTo: MessageView | null, attachments: string[]): void;
  onTyping(): void;
}) {
  let input!: HTMLTextAreaElement;
  const [text, setText] = createSignal(props.drafts.get(props.roomId));
  const [caret, setCaret] = createSignal(0);
  const [active, setActive] = createSignal(0);
  const [dismissed, setDismissed] = createSignal<number | null>(null);

  // Another room: keep this one's draft, show that one's.
  createEffect(
    on(
      () => props.roomId,
      (room, prev) => {
        if (prev !== undefined) props.drafts.set(prev, input?.value ?? "");
        const draft = props.drafts.get(room);
        setText(draft);
        if (input) {
          input.value = draft;
          grow();
        }
      },
      { defer: true },
    ),
  );

  const mention = createMemo(() => {
    if (!props.members || props.members.length === 0) return null;
    const at = mentionAt(text(), caret());
    if (!at || dismissed() === at.start) return null;
    return at;
  });
  const suggestions = createMemo(() => {
    const at = mention();
    if (!at) return [];
    return (props.members ?? [])
      .filter((u) => u.username.startsWith(at.query) || u.name.toLowerCase().startsWith(at.query))
      .slice(0, 8);
  });

  // Grows with its text up to 12 lines' worth, then scrolls (CSSOM, not a style attribute).
  const grow = () => {
    input.style.setProperty("height", "auto");
    input.style.setProperty("height", `${Math.min(input.scrollHeight, 192)}px`);
  };

  const update = () => {
    grow();
    setText(input.value);
    setCaret(input.selectionStart ?? input.value.length);
    props.drafts.set(props.roomId, input.value);
  };

  const pick = (u: UserView) => {
    const at = mention();
    if (!at) return;
    const value = input.value;
    const end = at.start + 1 + at.query.length;
    const next = `${value.slice(0, at.start)}@${u.username} ${value.slice(end)}`;
    input.value = next;
    const pos = at.start + u.username.length + 2;
    input.setSelectionRange(pos, pos);
    update();
    input.focus();
  };

  const attached = () => props.uploads?.ids() ?? [];
  const uploading = () => props.uploads?.busy() ?? false;
  const send = () => {
    const body = input.value.trim();
    if ((body === "" && attached().length === 0) || props.disabled || uploading()) return;
    if (Array.from(body).length > LIMITS.messageBodyMax) return;
    props.onSend(body, props.replyTo, attached());
    props.uploads?.clear();
    input.value = "";
    update();
  };

  const tooLong = () => Array.from(text()).length > LIMITS.messageBodyMax;
  const listId = () => `mentions-${props.roomId}`;

  return (
    <div class="composer">
      <Show when={props.replyTo}>
        {(r) => (
          <div class="composer-reply" data-testid="composer-reply">
            <span>
              Replying to <strong>{r().mine ? "yourself" : (r().authorName ?? "Unknown")}</strong>:{" "}
              {plainText(r().body).slice(0, 100)}
            </span>
            <button
              type="button"
              class="ghost"
              aria-label="Cancel reply"
              onClick={() => props.onCancelReply()}
            >
              ×
            </button>
          </div>
        )}
      </Show>
      <Show when={suggestions().length > 0}>
        <div id={listId()} class="mention-list" role="listbox" aria-label="Mention someone">
          <For each={suggestions()}>
            {(u, i) => (
              <div
                id={`${listId()}-${u.id}`}
                role="option"
                tabIndex={-1}
                data-testid="mention-option"
                aria-selected={i() === active() ? "true" : "false"}
                onMouseDown={(e) => {
                  e.preventDefault();
                  pick(u);
                }}
              >
                <strong>{u.name}</strong> <span class="muted">@{u.username}</span>
              </div>
            )}
          </For>
        </div>
      </Show>
      <Show when={(props.uploads?.items.length ?? 0) > 0}>
        <ul class="upload-tray" data-testid="upload-tray" aria-label="Files to send">
          <For each={props.uploads?.items ?? []}>
            {(u) => (
              <li class="upload" data-testid="upload" data-state={u.state}>
                <span class="upload-name">{u.name}</span>
                <Show
                  when={u.state === "uploading"}
                  fallback={
                    <span class="muted">
                      {u.state === "failed"
                        ? `Failed: ${u.error ?? ""}`
                        : formatSize(u.attachment?.size ?? 0)}
                    </span>
                  }
                >
                  <progress
                    data-testid="upload-progress"
                    max={u.total ?? Math.max(u.done, 1)}
                    value={u.done}
                    aria-label={`Uploading ${u.name}`}
                  />
                </Show>
                <button
                  type="button"
                  class="ghost"
                  data-testid="upload-remove"
                  aria-label={u.state === "uploading" ? `Cancel ${u.name}` : `Remove ${u.name}`}
                  onClick={() => props.uploads?.remove(u.key)}
                >
                  {u.state === "uploading" ? "Cancel" : "×"}
                </button>
              </li>
            )}
          </For>
        </ul>
      </Show>
      <div class="composer-row">
        <Show when={props.uploads}>
          {(up) => (
            <button
              type="button"
              class="ghost"
              data-testid="composer-attach"
              aria-label="Attach files"
              title="Attach files"
              disabled={props.disabled}
              onClick={() => void pickFiles().then((paths) => up().addPaths(paths))}
            >
              <PaperclipIcon />
            </button>
          )}
        </Show>
        <textarea
          ref={input}
          class="composer-input"
          data-testid="composer-input"
          aria-label="Message"
          placeholder="Write a message"
          rows={1}
          value={text()}
          disabled={props.disabled}
          aria-autocomplete={props.members ? "list" : undefined}
          aria-controls={suggestions().length > 0 ? listId() : undefined}
          aria-activedescendant={
            suggestions()[active()] ? `${listId()}-${suggestions()[active()]?.id}` : undefined
          }
          aria-invalid={tooLong() ? "true" : undefined}
          onInput={() => {
            update();
            setActive(0);
            setDismissed(null);
            if (input.value !== "") props.onTyping();
          }}
          onPaste={(e) => {
            const pasted = Array.from(e.clipboardData?.files ?? []);
            if (pasted.length === 0 || !props.uploads) return;
            e.preventDefault();
            void props.uploads.addFiles(pasted);
          }}
          onKeyUp={() => setCaret(input.selectionStart ?? 0)}
          onClick={() => setCaret(input.selectionStart ?? 0)}
          onKeyDown={(e) => {
            const list = suggestions();
            if (list.length > 0) {
              if (e.key === "ArrowDown" || e.key === "ArrowUp") {
                e.preventDefault();
                const d = e.key === "ArrowDown" ? 1 : -1;
                setActive((a) => (a + d + list.length) % list.length);
                return;
              }
              if (e.key === "Enter" || e.key === "Tab") {
                e.preventDefault();
                const u = list[active()];
                if (u) pick(u);
                return;
              }
              if (e.key === "Escape") {
                e.preventDefault();
                setDismissed(mention()?.start ?? null);
                return;
              }
            }
            if (e.key === "Escape" && props.replyTo) {
              props.onCancelReply();
              return;
            }
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              send();
            }
          }}
        />
        <button
          type="button"
          class="primary"
          data-testid="composer-send"
          disabled={
            props.disabled ||
            uploading() ||
            (text().trim() === "" && attached().length === 0) ||
            tooLong()
          }
          onClick={send}
        >
          Send
        </button>
      </div>
      <Show when={tooLong()}>
        <p class="field-error" role="alert">
          A message can be at most {LIMITS.messageBodyMax} characters long.
        </p>
      </Show>
    </div>
  );
}
