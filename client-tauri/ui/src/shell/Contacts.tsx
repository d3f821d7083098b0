// Contacts (each person with their avatar): search people and send requests; incoming and outgoing requests (accept,
// decline, cancel; they come and go live); friends with presence, with chat, call,
// remove and block; the block list with unblock.

import { createResource, createSignal, For, onCleanup, Show } from "solid-js";
import { Avatar } from "../avatar/Avatar";
import { PresenceDot } from "../messenger/Conversation";
import type { BlockedView, ContactsView, UserView } from "../messenger/types";
import { toastSuccess } from "../toasts";
import { LIMITS } from "../validation";
import { useShell } from "./context";

export function Contacts() {
  const shell = useShell();
  const { api, store } = shell;
  const [query, setQuery] = createSignal("");
  const [results, setResults] = createSignal<UserView[]>([]);
  const [searching, setSearching] = createSignal(false);
  const [searchNote, setSearchNote] = createSignal("");
  const [confirm, setConfirm] = createSignal<{ userId: string; what: "remove" | "block" } | null>(
    null,
  );
  const [blocked, { refetch: refetchBlocked }] = createResource<BlockedView[]>(() =>
    api.blockedUsers(),
  );

  const c = () => store.state.contacts;
  const contactIds = () => new Set(c().contacts.map((x) => x.user.id));
  const pendingIds = () => new Set([...c().incoming, ...c().outgoing].map((r) => r.user.id));

  const update = (p: Promise<ContactsView>, done?: string) =>
    p.then((v) => {
      store.setContacts(v);
      if (done) toastSuccess(done);
    }, shell.fail);

  let timer: ReturnType<typeof setTimeout> | undefined;
  onCleanup(() => clearTimeout(timer));
  const search = (q: string) => {
    setQuery(q);
    clearTimeout(timer);
    const trimmed = q.trim();
    if (Array.from(trimmed).length < LIMITS.userSearchMin) {
      setResults([]);
      setSearchNote(trimmed === "" ? "" : `Type at least ${LIMITS.userSearchMin} characters`);
      return;
    }
    timer = setTimeout(async () => {
      setSearching(true);
      try {
        const found = await api.searchUsers(trimmed);
        if (query().trim() !== trimmed) return;
        const myId = shell.me()?.id;
        setResults(found.filter((u) => u.id !== myId));
        setSearchNote(found.length === 0 ? "Nobody found" : "");
      } catch (err) {
        shell.fail(err);
      } finally {
        setSearching(false);
      }
    }, 250);
  };

  const chat = async (userId: string) => {
    try {
      const room = await api.openDirect(userId);
      store.putRoom(room);
      shell.openRoom(room.id);
    } catch (err) {
      shell.fail(err);
    }
  };

  return (
    <section class="contacts screen" data-testid="contacts-view" aria-labelledby="contacts-heading">
      <h1 id="contacts-heading" tabIndex={-1}>
        Contacts
      </h1>
      <div class="card stack">
        <label for="user-search">Find people</label>
        <input
          id="user-search"
          type="text"
          enterkeyhint="search"
          data-testid="user-search"
          aria-label="Search people"
          placeholder="Username or name"
          autocomplete="off"
          spellcheck={false}
          value={query()}
          onInput={(e) => search(e.currentTarget.value)}
        />
        <p class="muted" role="status" aria-busy={searching() ? "true" : "false"}>
          {searching() ? "Searching…" : searchNote()}
        </p>
        <ul class="people" aria-label="Search results">
          <For each={results()}>
            {(u) => (
              <li data-testid="user-result" data-username={u.username}>
                <span class="person">
                  <Avatar size="small" name={u.name} url={u.avatarUrl} />
                  <strong>{u.name}</strong> <span class="muted">@{u.username}</span>
                </span>
                <Show
                  when={!contactIds().has(u.id) && !pendingIds().has(u.id)}
                  fallback={
                    <span class="muted">
                      {contactIds().has(u.id) ? "In your contacts" : "Request pending"}
                    </span>
                  }
                >
                  <button
                    type="button"
                    data-testid="send-request"
                    onClick={() =>
                      update(api.sendContactRequest(u.id), `Contact request sent to ${u.name}`)
                    }
                  >
                    Add contact
                  </button>
                </Show>
              </li>
            )}
          </For>
        </ul>
      </div>

      <Show when={c().incoming.length > 0}>
        <div class="card stack">
          <h2>Requests for you</h2>
          <ul class="people" aria-label="Incoming requests">
            <For each={c().incoming}>
              {(r) => (
                <li data-testid="incoming-request" data-username={r.user.username}>
                  <span class="person">
                    <Avatar size="small" name={r.user.name} url={r.user.avatarUrl} />
                    <strong>{r.user.name}</strong> <span class="muted">@{r.user.username}</span>
                  </span>
                  <button
                    type="button"
                    class="primary"
                    data-testid="accept-request"
                    onClick={() =>
                      update(api.acceptRequest(r.id), `${r.user.name} is a contact now`)
                    }
                  >
                    Accept
                  </button>
                  <button
                    type="button"
                    data-testid="decline-request"
                    onClick={() => update(api.declineRequest(r.id))}
                  >
                    Decline
                  </button>
                </li>
              )}
            </For>
          </ul>
        </div>
      </Show>

      <Show when={c().outgoing.length > 0}>
        <div class="card stack">
          <h2>Requests you sent</h2>
          <ul class="people" aria-label="Outgoing requests">
            <For each={c().outgoing}>
              {(r) => (
                <li data-testid="outgoing-request" data-username={r.user.username}>
                  <span class="person">
                    <Avatar size="small" name={r.user.name} url={r.user.avatarUrl} />
                    <strong>{r.user.name}</strong> <span class="muted">@{r.user.username}</span>
                  </span>
                  <button
                    type="button"
                    data-testid="cancel-request"
                    onClick={() => update(api.cancelRequest(r.id))}
                  >
                    Cancel
                  </button>
                </li>
              )}
            </For>
          </ul>
        </div>
      </Show>

      <div class="card stack">
        <h2>Your contacts ({c().contacts.length})</h2>
        <ul class="people" aria-label="Contacts">
          <For
            each={c().contacts}
            fallback={<li class="muted">No contacts yet. Find people above.</li>}
          >
            {(x) => (
              <li data-testid="contact" data-username={x.user.username} data-user-id={x.user.id}>
                <span class="person">
                  <Avatar size="small" name={x.user.name} url={x.user.avatarUrl} />
                  <PresenceDot presence={x.presence} />
                  <strong>{x.user.name}</strong> <span class="muted">@{x.user.username}</span>
                  <Show when={x.user.statusText}>
                    <span class="muted status-text"> · {x.user.statusText}</span>
                  </Show>
                </span>
                <span class="row">
                  <button
                    type="button"
                    data-testid="contact-chat"
                    aria-label={`Chat with ${x.user.name}`}
                    onClick={() => void chat(x.user.id)}
                  >
                    Chat
                  </button>
                  <button
                    type="button"
                    data-testid="contact-call"
                    aria-label={`Call ${x.user.name}`}
                    onClick={() => void shell.calls.ring(x.user.id, x.user.name, true)}
                  >
                    Call
                  </button>
                  <Show
                    when={confirm()?.userId === x.user.id}
                    fallback={
                      <>
                        <button
                          type="button"
                          class="ghost"
                          data-testid="contact-remove"
                          onClick={() => setConfirm({ userId: x.user.id, what: "remove" })}
                        >
                          Remove
                        </button>
                        <button
                          type="button"
                          class="ghost danger"
                          data-testid="contact-block"
                          onClick={() => setConfirm({ userId: x.user.id, what: "block" })}
                        >
                          Block
                        </button>
                      </>
                    }
                  >
                    <span>
                      {confirm()?.what === "block"
                        ? `Block ${x.user.name}?`
                        : `Remove ${x.user.name}?`}{" "}
                      <button
                        type="button"
                        class="danger"
                        data-testid="confirm-contact-action"
                        onClick={() => {
                          const what = confirm()?.what;
                          setConfirm(null);
                          if (what === "block") {
                            void update(api.block(x.user.id), `${x.user.name} is blocked`).then(
                              () => void refetchBlocked(),
                            );
                          } else {
                            void update(api.removeContact(x.user.id));
                          }
                        }}
                      >
                        Yes
                      </button>{" "}
                      <button type="button" onClick={() => setConfirm(null)}>
                        No
                      </button>
                    </span>
                  </Show>
                </span>
              </li>
            )}
          </For>
        </ul>
      </div>

      <div class="card stack">
        <h2>Blocked</h2>
        <ul class="people" aria-label="Blocked people" data-testid="block-list">
          <For each={blocked() ?? []} fallback={<li class="muted">Nobody is blocked.</li>}>
            {(b) => (
              <li data-testid="blocked" data-username={b.user.username}>
                <span class="person">
                  <Avatar size="small" name={b.user.name} url={b.user.avatarUrl} />
                  <strong>{b.user.name}</strong> <span class="muted">@{b.user.username}</span>
                </span>
                <button
                  type="button"
                  data-testid="unblock"
                  onClick={() =>
                    void update(api.unblock(b.user.id), `${b.user.name} is unblocked`).then(
                      () => void refetchBlocked(),
                    )
                  }
                >
                  Unblock
                </button>
              </li>
            )}
          </For>
        </ul>
      </div>
    </section>
  );
}
