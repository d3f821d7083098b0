// A community's pane (#community-settings): about (name, description, visibility; the
// owner deletes it), channels (admins create, edit, move and delete them), members with
// roles and presence, bans and invite links (admins).

import { createResource, createSignal, For, type JSX, Match, Show, Switch } from "solid-js";
import { files, pickPicture } from "../files/api";
import { copyText } from "../platform";
import { useShell } from "../shell/context";
import { toastSuccess } from "../toasts";
import {
  byCategory,
  type ChannelView,
  type CommunityView,
  isAdmin,
  type NewInviteView,
  type Visibility,
} from "./api";
import { DESCRIPTION_MAX, NAME_MAX } from "./Discover";
import { Members } from "./Members";
import { CommunityIcon } from "./Spaces";

type Tab = "about" | "channels" | "members" | "bans" | "invites";

export function CommunitySettings(props: { community: CommunityView }) {
  const c = () => props.community;
  const [tab, setTab] = createSignal<Tab>("members");
  const tabs = (): [Tab, string][] => [
    ["about", "About"],
    ...(isAdmin(c()) ? ([["channels", "Channels"]] as [Tab, string][]) : []),
    ["members", "Members"],
    ...(isAdmin(c())
      ? ([
          ["bans", "Bans"],
          ["invites", "Invites"],
        ] as [Tab, string][])
      : []),
  ];
  return (
    <section
      class="home community-settings"
      id="community-settings"
      data-testid="community-settings"
    >
      <header class="row">
        <CommunityIcon community={c()} />
        <h1 tabIndex={-1}>{c().name}</h1>
      </header>
      <div class="tabs" role="tablist" aria-label="Community settings">
        <For each={tabs()}>
          {([id, label]) => (
            <button
              type="button"
              role="tab"
              data-testid={`community-tab-${id}`}
              aria-selected={tab() === id ? "true" : "false"}
              onClick={() => setTab(id)}
            >
              {label}
            </button>
          )}
        </For>
      </div>
      <div role="tabpanel">
        <Switch>
          <Match when={tab() === "about"}>
            <About community={c()} />
          </Match>
          <Match when={tab() === "channels"}>
            <Channels community={c()} />
          </Match>
          <Match when={tab() === "members"}>
            <Members community={c()} />
          </Match>
          <Match when={tab() === "bans"}>
            <Bans community={c()} />
          </Match>
          <Match when={tab() === "invites"}>
            <Invites community={c()} />
          </Match>
        </Switch>
      </div>
    </section>
  );
}

function About(props: { community: CommunityView }) {
  const shell = useShell();
  const c = () => props.community;
  const [confirmDelete, setConfirmDelete] = createSignal(false);
  const [error, setError] = createSignal("");
  let name!: HTMLInputElement;
  let description!: HTMLTextAreaElement;
  let visibility!: HTMLSelectElement;
  const save = async (e: SubmitEvent) => {
    e.preventDefault();
    const n = name.value.trim();
    if (n.length === 0 || n.length > NAME_MAX) {
      setError(`A name is 1-${NAME_MAX} characters.`);
      return;
    }
    setError("");
    try {
      const next = await shell.cApi.update(
        c().id,
        n === c().name ? null : n,
        description.value.trim() === c().description ? null : description.value,
        c().myRole === "owner" && visibility.value !== c().visibility
          ? (visibility.value as Visibility)
          : null,
      );
      shell.communities.put(next);
      toastSuccess("Saved");
    } catch (err) {
      shell.fail(err);
    }
  };
  const setIcon = async (path: string | null) => {
    try {
      shell.communities.put(await files.setCommunityIcon(c().id, path));
    } catch (err) {
      shell.fail(err);
    }
  };
  // PNG, JPEG, WebP, or an SVG of at most 70x70 (the server checks and renders it).
  const changeIcon = async () => {
    const [path] = await pickPicture();
    if (path) await setIcon(path);
  };
  const remove = async () => {
    try {
      await shell.cApi.remove(c().id);
      shell.communities.drop(c().id);
      shell.setSpace(null);
      shell.go({ kind: "home" });
    } catch (err) {
      shell.fail(err);
    }
  };
  return (
    <Show
      when={isAdmin(c())}
      fallback={
        <div data-testid="community-about">
          <p>{c().description || "No description."}</p>
          <p class="muted">
            {c().visibility === "public" ? "Public: anyone can join." : "Private: by invite only."}
          </p>
        </div>
      }
    >
      <div class="row" data-testid="community-icon">
        <CommunityIcon community={c()} />
        <button type="button" data-testid="community-icon-change" onClick={() => void changeIcon()}>
          Change icon
        </button>
        <Show when={c().iconUrl}>
          <button type="button" class="ghost" onClick={() => void setIcon(null)}>
            Remove icon
          </button>
        </Show>
      </div>
      <form class="stack" data-testid="community-about" onSubmit={(e) => void save(e)}>
        <label for="cs-name">Name</label>
        <input
          id="cs-name"
          data-testid="community-edit-name"
          ref={name}
          value={c().name}
          maxLength={NAME_MAX}
        />
        <span class="field-error" role="alert">
          {error()}
        </span>
        <label for="cs-description">Description</label>
        <textarea
          id="cs-description"
          ref={description}
          value={c().description}
          maxLength={DESCRIPTION_MAX}
          rows={3}
        />
        <label for="cs-visibility">Who can join</label>
        <select
          id="cs-visibility"
          data-testid="community-edit-visibility"
          ref={visibility}
          value={c().visibility}
          disabled={c().myRole !== "owner"}
        >
          <option value="public">Anyone (listed in discover)</option>
          <option value="private">Only people with an invite</option>
        </select>
        <button type="submit" class="primary" data-testid="community-save">
          Save
        </button>
      </form>
      <Show when={c().myRole === "owner"}>
        <Show
          when={confirmDelete()}
          fallback={
            <button
              type="button"
              class="danger"
              data-testid="community-delete"
              onClick={() => setConfirmDelete(true)}
            >
              Delete community
            </button>
          }
        >
          <div class="confirm" role="alertdialog" aria-label="Delete the community">
            <p>Delete {c().name} with all its channels and messages?</p>
            <button
              type="button"
              class="danger"
              data-testid="community-delete-confirm"
              onClick={() => void remove()}
            >
              Delete
            </button>
            <button type="button" onClick={() => setConfirmDelete(false)}>
              Cancel
            </button>
          </div>
        </Show>
      </Show>
    </Show>
  );
}

function Channels(props: { community: CommunityView }) {
  const shell = useShell();
  const c = () => props.community;
  const [editing, setEditing] = createSignal<string | null>(null);
  let name!: HTMLInputElement;
  let category!: HTMLInputElement;
  let topic!: HTMLInputElement;
  let announcement!: HTMLInputElement;

  const ordered = () => byCategory(c().channels).flatMap((g) => g.channels);
  const move = async (ch: ChannelView, by: -1 | 1) => {
    const list = ordered();
    const i = list.findIndex((x) => x.id === ch.id);
    const j = i + by;
    if (i < 0 || j < 0 || j >= list.length) return;
    const next = list.slice();
    const other = next[j];
    if (!other) return;
    next[j] = ch;
    next[i] = other;
    try {
      await shell.cApi.reorderChannels(
        c().id,
        // Moving past a neighbour in another category moves it into that category.
        next.map((x) => ({
          channelId: x.id,
          category: x.id === ch.id ? other.category : x.id === other.id ? ch.category : x.category,
        })),
      );
    } catch (e) {
      shell.fail(e);
    }
  };
  const create = async (e: SubmitEvent) => {
    e.preventDefault();
    if (!name.value.trim()) return;
    try {
      await shell.cApi.createChannel(c().id, {
        name: name.value,
        category: category.value || null,
        topic: topic.value || null,
        announcement: announcement.checked,
      });
      name.value = "";
      topic.value = "";
      announcement.checked = false;
      toastSuccess("Channel created");
    } catch (err) {
      shell.fail(err);
    }
  };
  return (
    <div data-testid="community-channels">
      <ul class="channel-admin-list">
        <For each={ordered()}>
          {(ch, i) => (
            <li data-testid="channel-admin-row" data-room-id={ch.id}>
              <Show
                when={editing() === ch.id}
                fallback={
                  <>
                    <span>
                      # {ch.name}
                      <Show when={ch.category}>
                        <span class="muted"> · {ch.category}</span>
                      </Show>
                    </span>
                    <button
                      type="button"
                      class="ghost"
                      aria-label={`Move ${ch.name} up`}
                      disabled={i() === 0}
                      onClick={() => void move(ch, -1)}
                    >
                      ↑
                    </button>
                    <button
                      type="button"
                      class="ghost"
                      aria-label={`Move ${ch.name} down`}
                      disabled={i() === ordered().length - 1}
                      onClick={() => void move(ch, 1)}
                    >
                      ↓
                    </button>
                    <button
                      type="button"
                      class="ghost"
                      data-testid="channel-edit"
                      onClick={() => setEditing(ch.id)}
                    >
                      Edit
                    </button>
                    <button
                      type="button"
                      class="ghost danger"
                      data-testid="channel-delete"
                      onClick={() => void shell.cApi.deleteChannel(c().id, ch.id).catch(shell.fail)}
                    >
                      Delete
                    </button>
                  </>
                }
              >
                <ChannelEditor community={c()} channel={ch} onDone={() => setEditing(null)} />
              </Show>
            </li>
          )}
        </For>
      </ul>
      <h2>New channel</h2>
      <form class="stack" data-testid="channel-create" onSubmit={(e) => void create(e)}>
        <label for="ch-name">Name</label>
        <input id="ch-name" data-testid="channel-create-name" ref={name} maxLength={100} />
        <label for="ch-category">Category (optional)</label>
        <input id="ch-category" ref={category} maxLength={100} />
        <label for="ch-topic">Topic (optional)</label>
        <input id="ch-topic" ref={topic} maxLength={1000} />
        <label>
          <input type="checkbox" ref={announcement} /> Announcements: only admins write
        </label>
        <button type="submit" class="primary" data-testid="channel-create-submit">
          Create channel
        </button>
      </form>
    </div>
  );
}

function ChannelEditor(props: { community: CommunityView; channel: ChannelView; onDone(): void }) {
  const shell = useShell();
  let name!: HTMLInputElement;
  let category!: HTMLInputElement;
  let topic!: HTMLInputElement;
  let announcement!: HTMLInputElement;
  const save = async (e: SubmitEvent) => {
    e.preventDefault();
    try {
      await shell.cApi.updateChannel(props.community.id, props.channel.id, {
        name: name.value,
        category: category.value,
        topic: topic.value,
        announcement: announcement.checked,
      });
      props.onDone();
    } catch (err) {
      shell.fail(err);
    }
  };
  return (
    <form class="row" data-testid="channel-editor" onSubmit={(e) => void save(e)}>
      <input
        aria-label="Channel name"
        data-testid="channel-edit-name"
        ref={name}
        value={props.channel.name}
        maxLength={100}
      />
      <input
        aria-label="Category"
        ref={category}
        value={props.channel.category ?? ""}
        maxLength={100}
      />
      <input aria-label="Topic" ref={topic} value={props.channel.topic ?? ""} maxLength={1000} />
      <label>
        <input type="checkbox" ref={announcement} checked={props.channel.announcement} />{" "}
        Announcements
      </label>
      <button type="submit" class="primary" data-testid="channel-edit-save">
        Save
      </button>
      <button type="button" onClick={() => props.onDone()}>
        Cancel
      </button>
    </form>
  );
}

function Bans(props: { community: CommunityView }) {
  const shell = useShell();
  const [bans, { refetch }] = createResource(
    () => [props.community.id, shell.communities.membersVersion()] as const,
    ([id]) => shell.cApi.bans(id),
  );
  return (
    <ul class="ban-list" data-testid="community-bans">
      <For each={bans() ?? []} fallback={<li class="muted">Nobody is banned.</li>}>
        {(b) => (
          <li data-testid="community-ban" data-user-id={b.user.id}>
            <span>{b.user.name}</span>
            <Show when={b.reason}>
              <span class="muted"> — {b.reason}</span>
            </Show>
            <button
              type="button"
              class="ghost"
              data-testid="community-unban"
              onClick={() =>
                shell.cApi
                  .unban(props.community.id, b.user.id)
                  .then(() => void refetch(), shell.fail)
              }
            >
              Unban
            </button>
          </li>
        )}
      </For>
    </ul>
  );
}

function Invites(props: { community: CommunityView }): JSX.Element {
  const shell = useShell();
  const [fresh, setFresh] = createSignal<NewInviteView | null>(null);
  const [invites, { refetch }] = createResource(
    () => props.community.id,
    (id) => shell.cApi.invites(id),
  );
  const create = async () => {
    try {
      const made = await shell.cApi.createInvite(props.community.id);
      setFresh(made);
      void refetch();
    } catch (e) {
      shell.fail(e);
    }
  };
  return (
    <div data-testid="community-invites">
      <button
        type="button"
        class="primary"
        data-testid="invite-create"
        onClick={() => void create()}
      >
        New invite code
      </button>
      <Show when={fresh()}>
        {(f) => (
          <p class="invite-token">
            Share this code (shown once): <code data-testid="invite-token">{f().token}</code>{" "}
            <button
              type="button"
              onClick={() => copyText(f().token).then(() => toastSuccess("Copied"), shell.fail)}
            >
              Copy
            </button>
          </p>
        )}
      </Show>
      <ul class="invite-list">
        <For each={invites() ?? []} fallback={<li class="muted">No invite codes.</li>}>
          {(i) => (
            <li data-testid="invite-row">
              <span>
                Used {i.uses}
                {i.maxUses ? ` of ${i.maxUses}` : ""} times, until{" "}
                {new Date(i.expiresAt).toLocaleDateString()}
              </span>
              <button
                type="button"
                class="ghost"
                data-testid="invite-revoke"
                onClick={() =>
                  shell.cApi
                    .revokeInvite(props.community.id, i.id)
                    .then(() => void refetch(), shell.fail)
                }
              >
                Revoke
              </button>
            </li>
          )}
        </For>
      </ul>
    </div>
  );
}
