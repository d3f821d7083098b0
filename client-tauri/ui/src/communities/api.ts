// The communities' door to Rust: every community command, unwrapped (the data, or an
// ApiError thrown), and the view types derived from their signatures.

import { type OkOf, unwrap } from "../api";
import { commands } from "../bindings";

export type CommunityView = OkOf<typeof commands.listCommunities>[number];
export type ChannelView = CommunityView["channels"][number];
export type DiscoverPage = OkOf<typeof commands.discoverCommunities>;
export type MemberPage = OkOf<typeof commands.communityMembers>;
export type CommunityMemberView = MemberPage["members"][number];
export type BanView = OkOf<typeof commands.communityBans>[number];
export type CommunityInviteView = OkOf<typeof commands.communityInvites>[number];
export type NewInviteView = OkOf<typeof commands.createCommunityInvite>;
export type CommunityId = CommunityView["id"];
export type Visibility = CommunityView["visibility"];
export type ChannelForm = Parameters<typeof commands.createChannel>[1];
export type ChannelPlace = Parameters<typeof commands.reorderChannels>[1][number];

export const communities = {
  list: () => unwrap(commands.listCommunities()),
  discover: (q: string | null, cursor: string | null) =>
    unwrap(commands.discoverCommunities(q, cursor)),
  create: (...a: Parameters<typeof commands.createCommunity>) =>
    unwrap(commands.createCommunity(...a)),
  update: (...a: Parameters<typeof commands.updateCommunity>) =>
    unwrap(commands.updateCommunity(...a)),
  remove: (id: CommunityId) => unwrap(commands.deleteCommunity(id)),
  join: (id: CommunityId) => unwrap(commands.joinCommunity(id)),
  joinInvite: (invite: string) => unwrap(commands.joinCommunityInvite(invite)),
  leave: (id: CommunityId) => unwrap(commands.leaveCommunity(id)),
  members: (id: CommunityId, cursor: string | null) =>
    unwrap(commands.communityMembers(id, cursor)),
  setRole: (...a: Parameters<typeof commands.setCommunityRole>) =>
    unwrap(commands.setCommunityRole(...a)),
  kick: (...a: Parameters<typeof commands.kickCommunityMember>) =>
    unwrap(commands.kickCommunityMember(...a)),
  bans: (id: CommunityId) => unwrap(commands.communityBans(id)),
  ban: (...a: Parameters<typeof commands.banCommunityMember>) =>
    unwrap(commands.banCommunityMember(...a)),
  unban: (...a: Parameters<typeof commands.unbanCommunityMember>) =>
    unwrap(commands.unbanCommunityMember(...a)),
  invites: (id: CommunityId) => unwrap(commands.communityInvites(id)),
  createInvite: (id: CommunityId) => unwrap(commands.createCommunityInvite(id)),
  revokeInvite: (...a: Parameters<typeof commands.revokeCommunityInvite>) =>
    unwrap(commands.revokeCommunityInvite(...a)),
  createChannel: (...a: Parameters<typeof commands.createChannel>) =>
    unwrap(commands.createChannel(...a)),
  updateChannel: (...a: Parameters<typeof commands.updateChannel>) =>
    unwrap(commands.updateChannel(...a)),
  deleteChannel: (...a: Parameters<typeof commands.deleteChannel>) =>
    unwrap(commands.deleteChannel(...a)),
  reorderChannels: (...a: Parameters<typeof commands.reorderChannels>) =>
    unwrap(commands.reorderChannels(...a)),
};

export type Communities = typeof communities;

/** Whether this role may manage channels, members and invites. */
export function isAdmin(c: Pick<CommunityView, "myRole">): boolean {
  return c.myRole === "owner" || c.myRole === "admin";
}

/** Channels grouped by category, in channel order; uncategorised ones first. */
export function byCategory(
  channels: ChannelView[],
): { category: string | null; channels: ChannelView[] }[] {
  const groups: { category: string | null; channels: ChannelView[] }[] = [];
  const sorted = channels.slice().sort((a, b) => a.position - b.position);
  for (const c of sorted.filter((c) => !c.category)) {
    if (groups[0]?.category !== null) groups.unshift({ category: null, channels: [] });
    groups[0]?.channels.push(c);
  }
  for (const c of sorted.filter((c) => c.category)) {
    let g = groups.find((x) => x.category === c.category);
    if (!g) {
      g = { category: c.category, channels: [] };
      groups.push(g);
    }
    g.channels.push(c);
  }
  return groups;
}
