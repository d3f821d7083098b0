// The messenger's view types, derived from the generated bindings' command and event
// signatures (never copied), so a change on the Rust side fails `tsc` where it matters.

import type { OkOf, PayloadOf } from "../api";
import type { commands, events } from "../bindings";

export type ConversationView = OkOf<typeof commands.openDirect>;
export type TimelinePage = OkOf<typeof commands.openConversation>;
export type MessageView = OkOf<typeof commands.sendMessage>;
export type ReactionView = MessageView["reactions"][number];
export type ReceiptsView = TimelinePage["receipts"];
export type UserView = OkOf<typeof commands.searchUsers>[number];
export type PreviewView = NonNullable<ConversationView["lastMessage"]>;
export type ContactsView = OkOf<typeof commands.contacts>;
export type ContactView = ContactsView["contacts"][number];
export type RequestView = ContactsView["incoming"][number];
export type BlockedView = OkOf<typeof commands.blockedUsers>[number];
export type MemberView = OkOf<typeof commands.roomMembers>[number];
export type RingView = OkOf<typeof commands.ringing>[number];
export type CallStatusView = NonNullable<OkOf<typeof commands.callStatus>>;
export type ConnectionState = OkOf<typeof commands.connectionState>;
export type PageAnchor = Parameters<typeof commands.loadMessages>[1];
export type OwnPresence = Parameters<typeof commands.setPresence>[0];
export type MessengerEvent = PayloadOf<typeof events.messengerEvent>;

export type RoomId = ConversationView["id"];
export type UserId = UserView["id"];
export type MessageId = NonNullable<MessageView["id"]>;
export type ContactRequestId = RequestView["id"];
export type PresenceStatus = ContactView["presence"];
export type RoomKind = ConversationView["kind"];
export type RoomRole = MemberView["role"];
export type MessageKind = MessageView["kind"];
export type MessageState = MessageView["state"];
export type RingEnd = Extract<MessengerEvent, { type: "ringStopped" }>["reason"];
