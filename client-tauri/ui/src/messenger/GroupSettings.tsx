// Group settings (#group-settings): the title (admins rename), members with their roles,
// adding one of my contacts, removing members (admins), the invite link, and leaving.

import { createResource, createSignal, For, Show } from "solid-js";
import { Avatar } from "../avatar/Avatar";
import { copyText } from "../platform";
import { useShell } from "../shell/context";
import { toastError, toastSuccess } from "../toasts";
import { LIMITS, roomTitleError } from "../validation";
import type { ConversationView, MemberView } from "./types";

const ROLE_LABEL: Record<MemberView["role"], string> = {
  owner: "Owner",
  admin: "Admin",
  member: "Member",
};

export function GroupSettings(props: { room: ConversationView; onClose(): void }) {
  const shell = useShell();
  const { api } = shell;
  const [members, { mutate }] = createResource(
    () => props.room.id,
    (id) => api.roomMembers(id),
  );
  const [titleError, setTitleError] = createSignal("");
  const [confirmLeave, setConfirmLeave] = createSignal(false);
  const [adding, setAdding] = createSignal("");
  const isAdmin = () => props.room.myRole === "owner" || props.room.myRole === "admin";
  const memberIds = () => new Set((members() ?? []).map((m) => m.user.id));
  const addable = () =>
    shell.store.state.contacts.contacts.filter((c) => !memberIds().has(c.user.id));

  let title!: HTMLInputElement;
  const rename = async (e: SubmitEvent) => {
    e.preventDefault();
    const value = title.value.trim();
    const err = roomTitleError(value);
    setTitleError(err ?? "");
    if (err || value === props.room.title) return;
    try {
      shell.store.putRoom(await api.renameGroup(props.room.id, value));
      toastSuccess("Group renamed");
    } catch (e2) {
      shell.fail(e2);
    }
  };

  return (
    <aside
      id="group-settings"
      class="side-panel group-settings"
      data-testid="group-settings"
      aria-labelledby="group-settings-heading"
    >
      <div class="row spread">
        <h2 id="group-settings-heading">Group settings</h2>
        <button
          type="button"
          class="ghost"
          aria-label="Close settings"
          onClick={() => props.onClose()}
        >
          ×
        </button>
      </div>
      <form class="stack" novalidate onSubmit={rename}>
        <div class="field">
          <label for="group-title">Title</label>
          <input
            ref={title}
            id="group-title"
            value={props.room.title}
            maxLength={LIMITS.roomTitleMax}
            disabled={!isAdmin()}
            aria-describedby="group-title-error"
            aria-invalid={titleError() ? "true" : undefined}
          />
          <p id="group-title-error" class="field-error">
            {titleError()}
          </p>
        </div>
        <Show when={isAdmin()}>
          <button type="submit">Rename</button>
        </Show>
      </form>
      <h3>Members ({members()?.length ?? props.room.memberCount})</h3>
      <ul class="members" data-testid="members">
        <For each={members() ?? []}>
          {(m) => (
            <li data-testid="member" data-user-id={m.user.id}>
              <Avatar size="small" name={m.user.name} url={m.user.avatarUrl} />{" "}
              <span>{m.user.name}</span> <span class="muted">@{m.user.username}</span>{" "}
              <span class="badge">{ROLE_LABEL[m.role]}</span>
              <Show when={isAdmin() && m.role !== "owner" && m.user.id !== shell.me()?.id}>
                <button
                  type="button"
                  class="ghost danger"
                  aria-label={`Remove ${m.user.name}`}
                  onClick={() =>
                    api.removeMember(props.room.id, m.user.id).then((ms) => mutate(ms), shell.fail)
                  }
                >
                  Remove
                </button>
              </Show>
            </li>
          )}
        </For>
      </ul>
      <Show when={isAdmin()}>
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            const id = adding();
            if (!id) return;
            api.addMember(props.room.id, id).then((ms) => {
              mutate(ms);
              setAdding("");
            }, shell.fail);
          }}
        >
          <label for="add-member">Add a contact</label>
          <select
            id="add-member"
            value={adding()}
            onChange={(e) => setAdding(e.currentTarget.value)}
          >
            <option value="">Choose…</option>
            <For each={addable()}>{(c) => <option value={c.user.id}>{c.user.name}</option>}</For>
          </select>
          <button type="submit" disabled={adding() === ""}>
            Add
          </button>
        </form>
      </Show>
      <div class="row">
        <button
          type="button"
          class="room-invite"
          onClick={async () => {
            try {
              const link = await api.createInvite(props.room.id);
              try {
                await copyText(link.url);
                toastSuccess("Invite link copied");
              } catch {
                toastError(`Could not copy to the clipboard. The invite link is: ${link.url}`);
              }
            } catch (err) {
              shell.fail(err);
            }
          }}
        >
          Copy invite link
        </button>
        <Show
          when={confirmLeave()}
          fallback={
            <button type="button" class="danger room-leave" onClick={() => setConfirmLeave(true)}>
              Leave group
            </button>
          }
        >
          <span>
            Leave this group?{" "}
            <button
              type="button"
              class="danger room-leave-confirm"
              onClick={async () => {
                try {
                  await api.leaveRoom(props.room.id);
                  toastSuccess(`You left ${props.room.title}`);
                  shell.go({ kind: "home" });
                } catch (err) {
                  setConfirmLeave(false);
                  shell.fail(err);
                }
              }}
            >
              Leave
            </button>{" "}
            <button type="button" class="room-leave-cancel" onClick={() => setConfirmLeave(false)}>
              Cancel
            </button>
          </span>
        </Show>
      </div>
    </aside>
  );
}
