// Test helper: messenger and call view objects with sensible defaults.

import type { StatsView } from "../api";
import type { ChannelView, CommunityView } from "../communities/api";
import type {
  ContactView,
  ConversationView,
  MessageView,
  RequestView,
  TimelinePage,
  UserView,
} from "../messenger/types";

export const ME = {
  id: "u-me",
  username: "me",
  email: "me@example.com",
  displayName: null,
  statusText: null,
  avatarUrl: null,
};

export function user(username: string, over: Partial<UserView> = {}): UserView {
  return {
    id: `u-${username}`,
    username,
    displayName: null,
    statusText: null,
    name: over.displayName ?? username,
    avatarUrl: null,
    ...over,
  };
}

export function room(id: string, over: Partial<ConversationView> = {}): ConversationView {
  return {
    id,
    kind: "group",
    title: id,
    otherUser: null,
    presence: null,
    myRole: "member",
    unread: 0,
    mentions: 0,
    lastMessage: null,
    lastActivity: "2026-01-01T10:00:00Z",
    lastReadSeq: 0,
    lastSeq: 0,
    muted: false,
    callParticipants: 0,
    memberCount: 2,
    ...over,
  };
}

export function direct(other: UserView, over: Partial<ConversationView> = {}): ConversationView {
  return room(`dm-${other.username}`, {
    kind: "direct",
    title: other.name,
    otherUser: other,
    presence: "online",
    ...over,
  });
}

let seqClock = Date.parse("2026-01-01T09:00:00Z");

export function message(roomId: string, seq: number, over: Partial<MessageView> = {}): MessageView {
  return {
    key: `m-${roomId}-${seq}`,
    id: `m-${roomId}-${seq}`,
    clientId: null,
    roomId,
    seq,
    kind: "text",
    authorId: "u-ana",
    authorName: "ana",
    authorAvatarUrl: null,
    mine: false,
    body: `message ${seq}`,
    replyTo: null,
    reactions: [],
    mentionsMe: false,
    createdAt: new Date(seqClock + seq * 1000).toISOString(),
    editedAt: null,
    deleted: false,
    authorBlocked: false,
    state: "sent",
    error: null,
    attachments: [],
    ...over,
  };
}

export function resetClock(iso = "2026-01-01T09:00:00Z"): void {
  seqClock = Date.parse(iso);
}

export function page(
  roomId: string,
  messages: MessageView[],
  over: Partial<TimelinePage> = {},
): TimelinePage {
  return {
    roomId,
    messages,
    hasMoreBefore: false,
    hasMoreAfter: false,
    receipts: { roomId, readUpTo: null, deliveredUpTo: null },
    typing: [],
    cached: false,
    ...over,
  };
}

export function contact(u: UserView, over: Partial<ContactView> = {}): ContactView {
  return {
    user: u,
    presence: "online",
    directRoomId: null,
    since: "2026-01-01T00:00:00Z",
    ...over,
  };
}

export function request(id: string, u: UserView, incoming: boolean): RequestView {
  return { id, user: u, incoming, createdAt: "2026-01-01T00:00:00Z" };
}

/** One remote participant's call stats, a healthy 640x480 call unless told otherwise. */
export function statsView(over: Partial<StatsView> = {}): StatsView {
  return {
    participantId: "p",
    userId: "u",
    rttMs: 30,
    sendKbps: 500,
    recvKbps: 500,
    packetsLost: 0,
    jitterMs: 2,
    framesDecoded: 100,
    fps: 30,
    width: 640,
    height: 480,
    estimateKbps: 900,
    sendTargetKbps: 800,
    sendWidth: 640,
    sendHeight: 480,
    sendFps: 30,
    packetsRepaired: 0,
    freezes: 0,
    ...over,
  };
}

export function channel(id: string, over: Partial<ChannelView> = {}): ChannelView {
  return {
    id,
    communityId: "c-1",
    name: id,
    topic: null,
    category: null,
    position: 0,
    announcement: false,
    maxParticipants: 8,
    ...over,
  };
}

/** A community of mine (member unless told) with these channels. */
export function community(id: string, over: Partial<CommunityView> = {}): CommunityView {
  return {
    id,
    name: id,
    description: "",
    iconUrl: null,
    visibility: "public",
    ownerId: "u-owner",
    memberCount: 3,
    myRole: "member",
    unread: 0,
    mentions: 0,
    createdAt: "2026-01-01T00:00:00Z",
    channels: [],
    ...over,
  };
}

/** A channel's conversation, as the messenger store holds it. */
export function channelRoom(id: string, over: Partial<ConversationView> = {}): ConversationView {
  return room(id, { kind: "channel", title: id, ...over });
}
