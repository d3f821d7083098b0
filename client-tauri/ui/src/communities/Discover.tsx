// Discover (#discover): public communities found by a text query, a page at a time, with
// join (or open, for mine); creating a community; joining a private one by invite.

import { createSignal, For, onMount, Show } from "solid-js";
import { useShell } from "../shell/context";
import type { CommunityView, Visibility } from "./api";
import { CommunityIcon } from "./Spaces";

export const NAME_MAX = 100;
export const DESCRIPTION_MAX = 1000;

export function Discover() {
  const shell = useShell();
  const [results, setResults] = createSignal<CommunityView[]>([]);
  const [cursor, setCursor] = createSignal<string | null>(null);
  const [busy, setBusy] = createSignal(false);
  const [searched, setSearched] = createSignal<string | null>(null);
  const [nameError, setNameError] = createSignal("");
  let query!: HTMLInputElement;
  let name!: HTMLInputElement;
  let description!: HTMLTextAreaElement;
  let visibility!: HTMLSelectElement;
  let invite!: HTMLInputElement;

  const search = async (more: boolean) => {
    const q = query.value.trim() || null;
    setBusy(true);
    try {
      const page = await shell.cApi.discover(q, more ? cursor() : null);
      setResults((now) => (more ? [...now, ...page.communities] : page.communities));
      setCursor(page.nextCursor);
      setSearched(q ?? "");
    } catch (e) {
      shell.fail(e);
    } finally {
      setBusy(false);
    }
  };
  onMount(() => void search(false));

  /** Into the community: its space, and its first channel. */
  const enter = (c: CommunityView) => {
    shell.communities.put(c);
    shell.setSpace(c.id);
    const first = c.channels.slice().sort((a, b) => a.position - b.position)[0];
    if (first) shell.openRoom(first.id);
  };

  const join = async (c: CommunityView) => {
    try {
      enter(await shell.cApi.join(c.id));
    } catch (e) {
      shell.fail(e);
    }
  };

  const create = async (e: SubmitEvent) => {
    e.preventDefault();
    const value = name.value.trim();
    if (value.length === 0 || value.length > NAME_MAX) {
      setNameError(`A name is 1-${NAME_MAX} characters.`);
      return;
    }
    setNameError("");
    try {
      const c = await shell.cApi.create(
        value,
        description.value.trim() || null,
        visibility.value as Visibility,
      );
      name.value = "";
      description.value = "";
      enter(c);
    } catch (err) {
      shell.fail(err);
    }
  };

  const joinInvite = async (e: SubmitEvent) => {
    e.preventDefault();
    if (!invite.value.trim()) return;
    try {
      enter(await shell.cApi.joinInvite(invite.value));
      invite.value = "";
    } catch (err) {
      shell.fail(err);
    }
  };

  return (
    <section
      class="home discover"
      id="discover"
      data-testid="discover"
      aria-labelledby="discover-heading"
    >
      <h1 id="discover-heading" tabIndex={-1}>
        Communities
      </h1>
      <form
        class="row"
        aria-label="Find public communities"
        onSubmit={(e) => {
          e.preventDefault();
          void search(false);
        }}
      >
        <label class="visually-hidden" for="discover-query">
          Find public communities
        </label>
        <input
          id="discover-query"
          data-testid="discover-query"
          ref={query}
          type="search"
          maxLength={100}
          placeholder="Find public communities by name or description"
        />
        <button type="submit" disabled={busy()}>
          Search
        </button>
      </form>
      <ul
        class="discover-results"
        data-testid="discover-results"
        aria-busy={busy() ? "true" : "false"}
      >
        <For
          each={results()}
          fallback={
            <Show when={searched() !== null && !busy()}>
              <li class="muted">
                {searched()
                  ? `No public community matches “${searched()}”.`
                  : "No public communities yet."}
              </li>
            </Show>
          }
        >
          {(c) => (
            <li class="discover-result" data-testid="discover-result" data-community-id={c.id}>
              <CommunityIcon community={c} />
              <div class="discover-text">
                <strong>{c.name}</strong>
                <span class="muted">
                  {c.memberCount} {c.memberCount === 1 ? "member" : "members"}
                </span>
                <Show when={c.description}>
                  <p class="discover-description">{c.description}</p>
                </Show>
              </div>
              <Show
                when={c.myRole || shell.communities.get(c.id)}
                fallback={
                  <button
                    type="button"
                    class="primary"
                    data-testid="discover-join"
                    onClick={() => void join(c)}
                  >
                    Join
                  </button>
                }
              >
                <button
                  type="button"
                  data-testid="discover-open"
                  onClick={() => enter(shell.communities.get(c.id) ?? c)}
                >
                  Open
                </button>
              </Show>
            </li>
          )}
        </For>
      </ul>
      <Show when={cursor()}>
        <button
          type="button"
          data-testid="discover-more"
          disabled={busy()}
          onClick={() => void search(true)}
        >
          More communities
        </button>
      </Show>

      <h2>Create a community</h2>
      <form class="stack" data-testid="community-create" onSubmit={(e) => void create(e)}>
        <label for="community-name">Name</label>
        <input
          id="community-name"
          data-testid="community-create-name"
          ref={name}
          maxLength={NAME_MAX}
          aria-invalid={nameError() ? "true" : undefined}
          aria-describedby="community-name-error"
        />
        <span id="community-name-error" class="field-error" role="alert">
          {nameError()}
        </span>
        <label for="community-description">Description (optional)</label>
        <textarea
          id="community-description"
          ref={description}
          maxLength={DESCRIPTION_MAX}
          rows={2}
        />
        <label for="community-visibility">Who can join</label>
        <select
          id="community-visibility"
          data-testid="community-create-visibility"
          ref={visibility}
        >
          <option value="public">Anyone (listed here)</option>
          <option value="private">Only people with an invite</option>
        </select>
        <button type="submit" class="primary" data-testid="community-create-submit">
          Create community
        </button>
      </form>

      <h2>Join by invite</h2>
      <form class="row" onSubmit={(e) => void joinInvite(e)}>
        <label class="visually-hidden" for="community-invite">
          Invite link or code
        </label>
        <input
          id="community-invite"
          data-testid="community-invite"
          ref={invite}
          placeholder="Invite link or code"
        />
        <button type="submit">Join</button>
      </form>
    </section>
  );
}
