// Message search (#search): the words, then hits from every conversation and channel
// (newest first) with the matched words marked; a hit opens its conversation at the
// message. Bodies are text nodes, never HTML.

import { createSignal, For, Show } from "solid-js";
import { useShell } from "../shell/context";
import { shortTime } from "../shell/Rail";
import { pieces, type SearchHit, search as searchApi } from "./api";

export const QUERY_MAX = 200;

export function Search(props: { api?: typeof searchApi }) {
  const shell = useShell();
  const api = props.api ?? searchApi;
  const [hits, setHits] = createSignal<SearchHit[]>([]);
  const [cursor, setCursor] = createSignal<string | null>(null);
  const [asked, setAsked] = createSignal<string | null>(null);
  const [busy, setBusy] = createSignal(false);
  let input!: HTMLInputElement;

  const run = async (more: boolean) => {
    const q = more ? (asked() ?? "") : input.value.trim();
    if (!q) return;
    setBusy(true);
    try {
      const page = await api.messages(q, null, more ? cursor() : null);
      setHits((now) => (more ? [...now, ...page.hits] : page.hits));
      setCursor(page.nextCursor);
      setAsked(q);
    } catch (e) {
      shell.fail(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="home search" id="search" data-testid="search" aria-labelledby="search-heading">
      <h1 id="search-heading" tabIndex={-1}>
        Search messages
      </h1>
      <form
        class="row"
        aria-label="Search messages"
        onSubmit={(e) => {
          e.preventDefault();
          void run(false);
        }}
      >
        <label class="visually-hidden" for="search-query">
          Words to find
        </label>
        <input
          id="search-query"
          data-testid="search-query"
          ref={input}
          type="search"
          maxLength={QUERY_MAX}
          placeholder="Words to find in your conversations and channels"
        />
        <button type="submit" data-testid="search-submit" disabled={busy()}>
          Search
        </button>
      </form>
      <ol class="search-hits" data-testid="search-hits" aria-busy={busy() ? "true" : "false"}>
        <For
          each={hits()}
          fallback={
            <Show when={asked() !== null && !busy()}>
              <li class="muted">Nothing found for “{asked()}”.</li>
            </Show>
          }
        >
          {(h) => (
            <li>
              <button
                type="button"
                class="search-hit"
                data-testid="search-hit"
                data-message-id={h.messageId}
                onClick={() => shell.openRoom(h.roomId, { seq: h.seq, messageId: h.messageId })}
              >
                <span class="rail-line">
                  <strong class="search-room">{h.roomTitle}</strong>
                  <time class="rail-time" dateTime={h.createdAt}>
                    {shortTime(h.createdAt)}
                  </time>
                </span>
                <span class="search-body" data-testid="search-body">
                  <Show when={h.authorName}>
                    <span class="muted">{h.authorName}: </span>
                  </Show>
                  <For each={pieces(h.body, h.marks)}>
                    {(p) => (p.marked ? <mark>{p.text}</mark> : p.text)}
                  </For>
                </span>
              </button>
            </li>
          )}
        </For>
      </ol>
      <Show when={cursor()}>
        <button
          type="button"
          data-testid="search-more"
          disabled={busy()}
          onClick={() => void run(true)}
        >
          More results
        </button>
      </Show>
    </section>
  );
}
