// What a community channel changes in its conversation: who "@" offers (the community's
// members, and @everyone only to its admins and owner, the only ones the server lets
// mention everyone), and, in an announcement channel, a read-only note in place of the
// composer for everyone but admins (the server refuses their messages anyway).

import { createResource, type JSX } from "solid-js";
import type { RoomId, UserView } from "../messenger/types";
import type { Shell } from "../shell/context";
import { type ChannelView, type CommunityView, isAdmin } from "./api";
import "./channel.css";
import { MegaphoneIcon } from "../icons";

/** Member pages read for "@" (the server's largest page each): enough for a big list. */
export const MENTION_PAGES = 4;

/** The pseudo-member "@" offers admins: picking it writes "@everyone". */
export const EVERYONE: UserView = {
  id: "everyone",
  username: "everyone",
  name: "Everyone in this community",
  displayName: null,
  statusText: null,
  avatarUrl: null,
};

/** The channel a room is, with its community (undefined for any other room). */
export function channelOf(
  shell: Pick<Shell, "communities">,
  roomId: RoomId,
): { community: CommunityView; channel: ChannelView } | undefined {
  const community = shell.communities.ofRoom(roomId);
  const channel = community?.channels.find((ch) => ch.id === roomId);
  return community && channel ? { community, channel } : undefined;
}

/** Whether I may write in a channel: anyone, except in announcement channels (admins). */
export function canWrite(c: { community: CommunityView; channel: ChannelView }): boolean {
  return !c.channel.announcement || isAdmin(c.community);
}

/**
 * Who "@" offers in a channel: the community's members but me, then @everyone when I
 * am an admin or the owner. Reloads when members change or my role does.
 */
export function createChannelMentions(
  shell: Pick<Shell, "communities" | "cApi" | "me">,
  roomId: () => RoomId,
): () => UserView[] | undefined {
  const [members] = createResource(
    () => {
      const c = channelOf(shell, roomId());
      if (!c) return null;
      return [c.community.id, isAdmin(c.community), shell.communities.membersVersion()] as const;
    },
    async ([id, admin]) => {
      const out: UserView[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < MENTION_PAGES; i++) {
        const page = await shell.cApi.members(id, cursor);
        out.push(...page.members.map((m) => m.user));
        cursor = page.nextCursor ?? null;
        if (!cursor) break;
      }
      const myId = shell.me()?.id;
      const others = out.filter((u) => u.id !== myId);
      return admin ? [...others, EVERYONE] : others;
    },
  );
  return () => (members.error ? undefined : members());
}

/** In place of the composer in an announcement channel, for those who may not write. */
export function ReadOnlyNote(props: { community: CommunityView }): JSX.Element {
  return (
    <p class="composer-readonly" data-testid="composer-readonly" role="note">
      <span aria-hidden="true">
        <MegaphoneIcon />{" "}
      </span>
      This is an announcement channel: only the admins of {props.community.name} write here. You can
      read it.
    </p>
  );
}
