// A community's members with their avatars, roles and presence (live: presence events
// after the page was loaded win over its rows), a page at a time. The owner
// changes roles (and may hand the community over); admins remove or ban members below
// them. Reloads when anyone joins, leaves or changes role.

import { createResource, createSignal, For, Show } from "solid-js";
import { Avatar } from "../avatar/Avatar";
import { PresenceDot } from "../messenger/Conversation";
import type { RoomRole } from "../messenger/types";
import { useShell } from "../shell/context";
import { toastSuccess } from "../toasts";
import { type CommunityMemberView, type CommunityView, isAdmin } from "./api";
import { roleRank } from "./store";

export const ROLE_LABEL: Record<RoomRole, string> = {
  owner: "Owner",
  admin: "Admin",
  member: "Member",
};

export function Members(props: { community: CommunityView }) {
  const shell = useShell();
  const c = () => props.community;
  const [more, setMore] = createSignal<CommunityMemberView[]>([]);
  const [cursor, setCursor] = createSignal<string | null>(null);
  // When the first page was asked for: presence events from then on win over its rows.
  let since = Date.now();
  const [page] = createResource(
    () => [c().id, shell.communities.membersVersion()] as const,
    async ([id]) => {
      since = Date.now();
      const p = await shell.cApi.members(id, null);
      setMore([]);
      setCursor(p.nextCursor);
      return p.members;
    },
  );
  const members = () => [...(page() ?? []), ...more()];
  /** A member's presence now: the latest event's, else what their row said. */
  const presenceOf = (m: CommunityMemberView) =>
    shell.communities.presenceSince(m.user.id, since) ?? m.presence;
  const online = () => members().filter((m) => presenceOf(m) !== "offline").length;
  const meId = () => shell.me()?.id;
  const myRank = () => roleRank({ role: c().myRole ?? "member" });

  const loadMore = async () => {
    const at = cursor();
    if (!at) return;
    try {
      const p = await shell.cApi.members(c().id, at);
      setMore((m) => [...m, ...p.members]);
      setCursor(p.nextCursor);
    } catch (e) {
      shell.fail(e);
    }
  };
  const act = async (work: () => Promise<unknown>, done: string) => {
    try {
      await work();
      toastSuccess(done);
    } catch (e) {
      shell.fail(e);
    }
  };

  const [handover, setHandover] = createSignal<CommunityMemberView | null>(null);

  return (
    <section class="community-members" data-testid="community-members" aria-label="Members">
      <Show when={handover()}>
        {(m) => (
          <div
            class="confirm"
            role="alertdialog"
            aria-label="Hand over the community"
            data-testid="handover-confirm"
          >
            <p>
              Hand {c().name} over to {m().user.name}? You become an admin.
            </p>
            <button
              type="button"
              class="primary"
              onClick={() => {
                const who = m();
                setHandover(null);
                void act(
                  () => shell.cApi.setRole(c().id, who.user.id, "owner"),
                  `${who.user.name} owns it now`,
                );
              }}
            >
              Hand over
            </button>
            <button type="button" onClick={() => setHandover(null)}>
              Cancel
            </button>
          </div>
        )}
      </Show>
      <p class="muted" data-testid="members-count">
        {c().memberCount} {c().memberCount === 1 ? "member" : "members"}
        <Show when={page()}> · {online()} online</Show>
      </p>
      <ul class="member-list">
        <For each={members()}>
          {(m) => {
            const canModerate = () =>
              isAdmin(c()) && m.user.id !== meId() && roleRank(m) > myRank();
            return (
              <li
                class="member"
                data-testid="community-member"
                data-user-id={m.user.id}
                data-role={m.role}
                data-presence={presenceOf(m)}
              >
                <Avatar name={m.user.name} url={m.user.avatarUrl}>
                  <PresenceDot presence={presenceOf(m)} />
                </Avatar>
                <span class="member-name">{m.user.name}</span>
                <span class="visually-hidden">, {presenceOf(m)}</span>
                <Show
                  when={c().myRole === "owner" && m.user.id !== meId()}
                  fallback={
                    <span class="role" data-testid="member-role">
                      {ROLE_LABEL[m.role]}
                    </span>
                  }
                >
                  <label class="visually-hidden" for={`role-${m.user.id}`}>
                    Role of {m.user.name}
                  </label>
                  <select
                    id={`role-${m.user.id}`}
                    data-testid="member-role-select"
                    value={m.role}
                    onChange={(e) => {
                      const role = e.currentTarget.value as RoomRole;
                      if (role === "owner") {
                        // Handing over is not undone by the old owner: ask first.
                        e.currentTarget.value = m.role;
                        setHandover(m);
                        return;
                      }
                      void act(
                        () => shell.cApi.setRole(c().id, m.user.id, role),
                        `${m.user.name} is now ${ROLE_LABEL[role].toLowerCase()}`,
                      );
                    }}
                  >
                    <option value="member">Member</option>
                    <option value="admin">Admin</option>
                    <option value="owner">Owner (hand over)</option>
                  </select>
                </Show>
                <Show when={canModerate()}>
                  <button
                    type="button"
                    class="ghost"
                    data-testid="member-kick"
                    onClick={() =>
                      void act(
                        () => shell.cApi.kick(c().id, m.user.id),
                        `${m.user.name} was removed`,
                      )
                    }
                  >
                    Remove
                  </button>
                  <button
                    type="button"
                    class="ghost danger"
                    data-testid="member-ban"
                    onClick={() =>
                      void act(
                        () => shell.cApi.ban(c().id, m.user.id, null),
                        `${m.user.name} was banned`,
                      )
                    }
                  >
                    Ban
                  </button>
                </Show>
              </li>
            );
          }}
        </For>
      </ul>
      <Show when={cursor()}>
        <button type="button" onClick={() => void loadMore()}>
          More members
        </button>
      </Show>
    </section>
  );
}
