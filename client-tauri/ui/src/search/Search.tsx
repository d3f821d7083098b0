// Message search (#search): the words and the filters GET /api/search takes (a
// conversation or channel, an author, a span of days, newest or best match first), then
// hits from every conversation and channel with the author's avatar and the matched words
// marked; a hit opens its conversation at the message. Bodies are text nodes, never HTML.

import { createMemo, createSignal, For, Show } from "solid-js";
import { Avatar } from "../avatar/Avatar";
import { useShell } from "../shell/context";
import { shortTime } from "../shell/Rail";
import {
  filtersOf,
  pieces,
  type SearchFilters,
  type SearchHit,
  type SearchOrder,
  search as searchApi,
} from "./api";
import "./search.css";

export const QUERY_MAX = 200;

interface Choice {
  id: string;
  label: string;
}

const byLabel = (a: Choice, b: Choice) => a.label.localeCompare(b.label);

export function Search(props: { api?: typeof searchApi }) {
  const shell = useShell();
  const api = props.api ?? searchApi;
  const [hits, setHits] = createSignal<SearchHit[]>([]);
  const [cursor, setCursor] = createSignal<string | null>(null);
  // The words and filters of the hits shown (More asks for the same).
  const [asked, setAsked] = createSignal<{ q: string; filters: SearchFilters } | null>(null);
  const [busy, setBusy] = createSignal(false);
  const [problem, setProblem] = createSignal<{ field: "after" | "before"; text: string } | null>(
    null,
  );
  const [roomId, setRoomId] = createSignal("");
  const [authorId, setAuthorId] = createSignal("");
  const [after, setAfter] = createSignal("");
  const [before, setBefore] = createSignal("");
  const [order, setOrder] = createSignal<SearchOrder>("newest");
  let input!: HTMLInputElement;

  /** Every conversation and channel I am in: channels named with their community. */
  const rooms = createMemo<Choice[]>(() =>
    Object.values(shell.store.state.rooms)
      .map((r) => {
        const community = r.kind === "channel" ? shell.communities.ofRoom(r.id) : undefined;
        const label =
          r.kind === "channel"
            ? `# ${r.title}${community ? ` · ${community.name}` : ""}`
            : r.title || "Conversation";
        return { id: r.id, label };
      })
      .sort(byLabel),
  );

  /** People whose messages I may see: me, my contacts and the people I talk with. */
  const people = createMemo<Choice[]>(() => {
    const seen = new Map<string, string>();
    const me = shell.me();
    for (const c of shell.store.state.contacts.contacts) seen.set(c.user.id, c.user.name);
    for (const r of Object.values(shell.store.state.rooms)) {
      if (r.otherUser) seen.set(r.otherUser.id, r.otherUser.name);
    }
    if (me) seen.delete(me.id);
    const others = Array.from(seen, ([id, label]) => ({ id, label })).sort(byLabel);
    return me ? [{ id: me.id, label: "Me" }, ...others] : others;
  });

  const run = async (more: boolean) => {
    let q: string;
    let filters: SearchFilters;
    const previous = asked();
    if (more && previous) {
      ({ q, filters } = previous);
    } else {
      q = input.value.trim();
      if (!q) return;
      const checked = filtersOf({
        roomId: roomId(),
        authorId: authorId(),
        after: after(),
        before: before(),
        order: order(),
      });
      if ("error" in checked) {
        setProblem({ field: checked.field, text: checked.error });
        document.getElementById(`search-${checked.field}`)?.focus();
        return;
      }
      filters = checked.filters;
    }
    setProblem(null);
    setBusy(true);
    try {
      const page = await api.messages(q, filters, more ? cursor() : null);
      setHits((now) => (more ? [...now, ...page.hits] : page.hits));
      setCursor(page.nextCursor ?? null);
      setAsked({ q, filters });
    } catch (e) {
      shell.fail(e);
    } finally {
      setBusy(false);
    }
  };

  const avatarOf = (h: SearchHit) => {
    const me = shell.me();
    return me && h.authorId === me.id ? (me.avatarUrl ?? h.authorAvatarUrl) : h.authorAvatarUrl;
  };

  const filtered = () => {
    const f = asked()?.filters;
    return !!f && Object.keys(f).some((k) => k !== "order");
  };

  return (
    <section class="home search" id="search" data-testid="search" aria-labelledby="search-heading">
      <h1 id="search-heading" tabIndex={-1}>
        Search messages
      </h1>
      <form
        class="stack search-form"
        aria-label="Search messages"
        onSubmit={(e) => {
          e.preventDefault();
          void run(false);
        }}
      >
        <div class="row">
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
        </div>
        <fieldset class="search-filters" data-testid="search-filters">
          <legend class="visually-hidden">Filters</legend>
          <label>
            <span>In</span>
            <select
              id="search-room"
              data-testid="search-room"
              value={roomId()}
              onChange={(e) => setRoomId(e.currentTarget.value)}
            >
              <option value="">All conversations and channels</option>
              <For each={rooms()}>{(r) => <option value={r.id}>{r.label}</option>}</For>
            </select>
          </label>
          <label>
            <span>From</span>
            <select
              id="search-author"
              data-testid="search-author"
              value={authorId()}
              onChange={(e) => setAuthorId(e.currentTarget.value)}
            >
              <option value="">Anyone</option>
              <For each={people()}>{(p) => <option value={p.id}>{p.label}</option>}</For>
            </select>
          </label>
          <label>
            <span>On or after</span>
            <input
              id="search-after"
              data-testid="search-after"
              type="date"
              value={after()}
              aria-invalid={problem()?.field === "after" ? "true" : undefined}
              aria-describedby="search-problem"
              onInput={(e) => setAfter(e.currentTarget.value)}
            />
          </label>
          <label>
            <span>Before</span>
            <input
              id="search-before"
              data-testid="search-before"
              type="date"
              value={before()}
              aria-invalid={problem()?.field === "before" ? "true" : undefined}
              aria-describedby="search-problem"
              onInput={(e) => setBefore(e.currentTarget.value)}
            />
          </label>
          <label>
            <span>Order</span>
            <select
              id="search-order"
              data-testid="search-order"
              value={order()}
              onChange={(e) => setOrder(e.currentTarget.value === "best" ? "best" : "newest")}
            >
              <option value="newest">Newest first</option>
              <option value="best">Best match first</option>
            </select>
          </label>
        </fieldset>
        <p id="search-problem" class="form-error" role="alert" data-testid="search-problem">
          {problem()?.text ?? ""}
        </p>
      </form>
      <ol class="search-hits" data-testid="search-hits" aria-busy={busy() ? "true" : "false"}>
        <For
          each={hits()}
          fallback={
            <Show when={asked() !== null && !busy()}>
              <li class="muted">
                Nothing found for “{asked()?.q}”{filtered() ? " with these filters" : ""}.
              </li>
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
                <Avatar size="small" name={h.authorName ?? "?"} url={avatarOf(h)} />
                <span class="search-hit-text">
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
