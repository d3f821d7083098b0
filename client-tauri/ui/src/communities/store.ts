// My communities in the webview, kept from the messenger event stream: each with its
// channels in order. Channel conversations (unread counts, previews) live in the
// messenger store like any room; a community's unread badge sums its channels there.

import { createMemo, createSignal } from "solid-js";
import { createStore, produce, reconcile } from "solid-js/store";
import { type Listenable, subscribe } from "../api";
import type {
  ConversationView,
  MessengerEvent,
  PresenceStatus,
  RoomId,
  UserId,
} from "../messenger/types";
import type { Communities, CommunityId, CommunityMemberView, CommunityView } from "./api";

export interface CommunityHooks {
  /** I was taken out of a community (kicked, banned, deleted). */
  removed?(community: CommunityView | undefined, reason: string): void;
  /** Members of an open member list changed. */
  membersChanged?(id: CommunityId): void;
}

export function createCommunities(
  api: Communities,
  events: Listenable<MessengerEvent>,
  rooms: () => Record<RoomId, ConversationView>,
  hooks: CommunityHooks = {},
) {
  const [state, setState] = createStore<{ byId: Record<CommunityId, CommunityView> }>({
    byId: {},
  });

  /** Bumped when members join, leave or change roles anywhere: member lists reload. */
  const [membersVersion, setMembersVersion] = createSignal(0);

  /**
   * Presence as the events said it last, with when the event came (a member list only
   * believes events newer than its page: an older event may be stale by then).
   */
  const [presence, setPresence] = createStore<
    Record<UserId, { status: PresenceStatus; at: number }>
  >({});
  /** Someone's presence from an event after `since` (ms, `Date.now()`), else undefined. */
  const presenceSince = (userId: UserId, since: number): PresenceStatus | undefined => {
    const p = presence[userId];
    return p && p.at >= since ? p.status : undefined;
  };

  const list = createMemo(() =>
    Object.values(state.byId)
      .slice()
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0)),
  );

  const put = (c: CommunityView) => setState("byId", c.id, reconcile(c));
  const drop = (id: CommunityId) =>
    setState(
      "byId",
      produce((all) => {
        delete all[id];
      }),
    );

  /** Unread and mention counts of a community: the sums over its channels' rooms. */
  const counts = (id: CommunityId): { unread: number; mentions: number } => {
    const c = state.byId[id];
    let unread = 0;
    let mentions = 0;
    for (const ch of c?.channels ?? []) {
      const r = rooms()[ch.id];
      if (!r || r.muted) continue;
      unread += r.unread;
      mentions += r.mentions;
    }
    return { unread, mentions };
  };

  /** The community a channel room belongs to. */
  const ofRoom = (roomId: RoomId): CommunityView | undefined =>
    list().find((c) => c.channels.some((ch) => ch.id === roomId));

  const onEvent = (e: MessengerEvent) => {
    switch (e.type) {
      case "communityUpserted":
        put(e.community);
        break;
      case "communityRemoved": {
        const before = state.byId[e.communityId];
        drop(e.communityId);
        hooks.removed?.(before, e.reason);
        break;
      }
      case "communityMemberJoined":
      case "communityMemberLeft":
      case "communityRoleChanged":
        setMembersVersion((v) => v + 1);
        hooks.membersChanged?.(e.communityId);
        break;
      case "presence":
        setPresence(e.userId, { status: e.status, at: Date.now() });
        break;
      case "synced":
        void load();
        break;
    }
  };

  const load = async () => {
    const all = await api.list();
    setState("byId", reconcile(Object.fromEntries(all.map((c) => [c.id, c]))));
  };

  return {
    state,
    list,
    get: (id: CommunityId) => state.byId[id],
    put,
    drop,
    counts,
    ofRoom,
    membersVersion,
    presenceSince,
    load,
    listen: () => subscribe(events, onEvent),
  };
}

export type CommunityStore = ReturnType<typeof createCommunities>;

/** Members sorted as the server sends them (owner, admins, then by join time). */
export function roleRank(m: Pick<CommunityMemberView, "role">): number {
  return m.role === "owner" ? 0 : m.role === "admin" ? 1 : 2;
}
