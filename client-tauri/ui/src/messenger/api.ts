// The messenger's door to Rust: every messenger command, unwrapped (the data, or an
// ApiError), and the one event stream. Components import from here, never from
// bindings.ts.

import { type Listenable, unwrap } from "../api";
import { commands, events } from "../bindings";
import type { MessengerEvent } from "./types";

export const messenger = {
  listConversations: () => unwrap(commands.listConversations()),
  openConversation: (roomId: string) => unwrap(commands.openConversation(roomId)),
  drafts: () => unwrap(commands.drafts()),
  setDraft: (roomId: string, body: string) => unwrap(commands.setDraft(roomId, body)),
  closeConversation: () => commands.closeConversation(),
  loadMessages: (...a: Parameters<typeof commands.loadMessages>) =>
    unwrap(commands.loadMessages(...a)),
  sendMessage: (...a: Parameters<typeof commands.sendMessage>) =>
    unwrap(commands.sendMessage(...a)),
  retryMessage: (clientId: string) => unwrap(commands.retryMessage(clientId)),
  discardMessage: (clientId: string) => unwrap(commands.discardMessage(clientId)),
  editMessage: (...a: Parameters<typeof commands.editMessage>) =>
    unwrap(commands.editMessage(...a)),
  deleteMessage: (...a: Parameters<typeof commands.deleteMessage>) =>
    unwrap(commands.deleteMessage(...a)),
  react: (...a: Parameters<typeof commands.react>) => unwrap(commands.react(...a)),
  unreact: (...a: Parameters<typeof commands.unreact>) => unwrap(commands.unreact(...a)),
  markRead: (...a: Parameters<typeof commands.markRead>) => unwrap(commands.markRead(...a)),
  typing: (roomId: string) => unwrap(commands.typing(roomId)),
  setPresence: (...a: Parameters<typeof commands.setPresence>) =>
    unwrap(commands.setPresence(...a)),
  updateProfile: (...a: Parameters<typeof commands.updateProfile>) =>
    unwrap(commands.updateProfile(...a)),
  setRoomMuted: (...a: Parameters<typeof commands.setRoomMuted>) =>
    unwrap(commands.setRoomMuted(...a)),
  createGroup: (...a: Parameters<typeof commands.createGroup>) =>
    unwrap(commands.createGroup(...a)),
  renameGroup: (...a: Parameters<typeof commands.renameGroup>) =>
    unwrap(commands.renameGroup(...a)),
  roomMembers: (roomId: string) => unwrap(commands.roomMembers(roomId)),
  addMember: (...a: Parameters<typeof commands.addMember>) => unwrap(commands.addMember(...a)),
  removeMember: (...a: Parameters<typeof commands.removeMember>) =>
    unwrap(commands.removeMember(...a)),
  leaveRoom: (roomId: string) => unwrap(commands.leaveRoom(roomId)),
  createInvite: (roomId: string) => unwrap(commands.createInvite(roomId)),
  joinRoom: (target: string) => unwrap(commands.joinRoom(target)),
  searchUsers: (q: string) => unwrap(commands.searchUsers(q)),
  contacts: () => unwrap(commands.contacts()),
  sendContactRequest: (userId: string) => unwrap(commands.sendContactRequest(userId)),
  acceptRequest: (id: string) => unwrap(commands.acceptRequest(id)),
  declineRequest: (id: string) => unwrap(commands.declineRequest(id)),
  cancelRequest: (id: string) => unwrap(commands.cancelRequest(id)),
  removeContact: (userId: string) => unwrap(commands.removeContact(userId)),
  block: (userId: string) => unwrap(commands.block(userId)),
  unblock: (userId: string) => unwrap(commands.unblock(userId)),
  blockedUsers: () => unwrap(commands.blockedUsers()),
  openDirect: (userId: string) => unwrap(commands.openDirect(userId)),
  connectionState: () => unwrap(commands.connectionState()),
  setNotificationsMuted: (muted: boolean) => commands.setNotificationsMuted(muted),
  notificationsMuted: () => commands.notificationsMuted(),
  /** The `confab://invite/…` link opened last and not yet taken, once. */
  takeInviteLink: () => commands.takeInviteLink(),
  ringUser: (...a: Parameters<typeof commands.ringUser>) => unwrap(commands.ringUser(...a)),
  answerCall: (...a: Parameters<typeof commands.answerCall>) => unwrap(commands.answerCall(...a)),
  declineCall: (roomId: string) => unwrap(commands.declineCall(roomId)),
  ringing: () => unwrap(commands.ringing()),
  callStatus: () => unwrap(commands.callStatus()),
};

export type Messenger = typeof messenger;

/** The messenger's event stream ("messenger-event"). */
export const messengerEvents: Listenable<MessengerEvent> = events.messengerEvent;
