// The shell's home pane (no conversation open): start a group with some of my contacts,
// or join one with an invite link.

import { createSignal, For, Show } from "solid-js";
import { createForm, Field, FormError } from "../forms";
import { toastSuccess } from "../toasts";
import { LIMITS, roomTitleError } from "../validation";
import { useShell } from "./context";

function NewGroup() {
  const shell = useShell();
  const form = createForm("create-form", { title: { id: "room-title", label: "Group name" } });
  const [picked, setPicked] = createSignal<Set<string>>(new Set());
  const toggle = (id: string, on: boolean) =>
    setPicked((s) => {
      const next = new Set(s);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const title = form.value("title").trim();
    const err = roomTitleError(title);
    if (form.show(err ? { title: err } : {})) return;
    await form.run(async () => {
      const room = await shell.api.createGroup(title, [...picked()]);
      shell.store.putRoom(room);
      toastSuccess(`Group “${room.title}” created`);
      const input = form.input("title");
      if (input) input.value = "";
      setPicked(new Set<string>());
      shell.openRoom(room.id);
    });
  };
  return (
    <form
      id="create-form"
      class="card stack"
      novalidate
      aria-labelledby="create-heading"
      onSubmit={onSubmit}
    >
      <h2 id="create-heading">New group</h2>
      <Field form={form} name="title" maxLength={LIMITS.roomTitleMax} required autocomplete="off" />
      <fieldset class="stack">
        <legend>Members from your contacts</legend>
        <For
          each={shell.store.state.contacts.contacts}
          fallback={
            <p class="muted">Add contacts to invite them here, or share an invite link later.</p>
          }
        >
          {(c) => (
            <div class="check">
              <input
                id={`new-group-${c.user.id}`}
                type="checkbox"
                checked={picked().has(c.user.id)}
                onChange={(e) => toggle(c.user.id, e.currentTarget.checked)}
              />
              <label for={`new-group-${c.user.id}`}>
                {c.user.name} <span class="muted">@{c.user.username}</span>
              </label>
            </div>
          )}
        </For>
      </fieldset>
      <FormError form={form} />
      <button id="room-create" type="submit" class="primary" disabled={form.busy()}>
        Create group
      </button>
    </form>
  );
}

function JoinGroup() {
  const shell = useShell();
  const form = createForm("join-form", { target: { id: "join-target", label: "Invite link" } });
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const value = form.value("target").trim();
    if (form.show(value ? {} : { target: "Paste an invite link or a room id" })) return;
    await form.run(async () => {
      await shell.join(value);
      const input = form.input("target");
      if (input) input.value = "";
    });
  };
  return (
    <form
      id="join-form"
      class="card stack"
      novalidate
      aria-labelledby="join-heading"
      onSubmit={onSubmit}
    >
      <h2 id="join-heading">Join a group</h2>
      <Field
        form={form}
        name="target"
        hint="Paste an invite link, an invite code or a room id."
        required
        autocomplete="off"
        spellcheck={false}
      />
      <FormError form={form} />
      <button id="join-submit" type="submit" disabled={form.busy()}>
        Join
      </button>
    </form>
  );
}

export function Home() {
  const shell = useShell();
  return (
    <section class="home screen" aria-labelledby="home-heading">
      <h1 id="home-heading" tabIndex={-1}>
        Hello{shell.me() ? `, ${shell.me()?.displayName || shell.me()?.username}` : ""}
      </h1>
      <Show when={shell.store.conversations().length > 0}>
        <p class="muted">Pick a conversation on the left, or press Ctrl+K to find one.</p>
      </Show>
      <div class="home-layout">
        <NewGroup />
        <JoinGroup />
      </div>
    </section>
  );
}
