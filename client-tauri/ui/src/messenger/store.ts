// The messenger's state in the webview: conversations, open timelines, contacts, typing,
// receipts, ringing calls and the connection, kept up to date from the messenger event
// stream. Rust owns the truth (and the cache); this is the projection the UI draws.

import { type Accessor, batch, createMemo, createSignal, type Setter } from "solid-js";
import { createStore, produce, reconcile } from "solid-js/store";
import type { Listenable } from "../api";
import { subscribe } from "../api";
import { unreachable } from "../errors";
import { LIMITS } from "../validation";
import type { Messenger } from "./api";
import type {
  ConnectionState,
  ContactsView,
  ConversationView,
  MessageView,
  MessengerEvent,
  ReceiptsView,
  RingView,
  RoomId,
  TimelinePage,
  UserView,
} from "./types";

declare global {
  interface Window {
    /** How long applying each older page took (reactive updates and DOM), for the bench. */
    __confabPrependMs?: number[];
  }
}

export interface Timeline {
  roomId: RoomId;
  messages: Accessor<MessageView[]>;
  setMessages: Setter<MessageView[]>;
  hasMoreBefore: Accessor<boolean>;
  hasMoreAfter: Accessor<boolean>;
  loadingOlder: Accessor<boolean>;
  /** The page was kept by an earlier run (shown before the catch-up, which replaces it). */
  cached: Accessor<boolean>;
  /** The read marker when the room was opened: the "new messages" divider goes after it. */
  readAtOpen: number;
}

export interface MessengerState {
  rooms: Record<RoomId, ConversationView>;
  contacts: ContactsView;
  connection: ConnectionState;
  reconnectAttempt: number | null;
  typing: Record<RoomId, UserView[]>;
  receipts: Record<RoomId, ReceiptsView>;
  ringing: RingView[];
  notificationsMuted: boolean;
}

export interface MessengerHooks {
  /** Rust asks to show a room (tray, notification click). */
  openRoom?(roomId: RoomId): void;
  /** Something the user should hear about (a missed or declined call). */
  notice?(text: string): void;
  /** An invite link was opened: take it (`takeInviteLink`) and join. */
  inviteLink?(): void;
  fail?(err: unknown): void;
}

/** Older messages come this many at a time (the server's largest page). */
export const OLDER_PAGE = LIMITS.messagePageMax;

const EMPTY_CONTACTS: ContactsView = { contacts: [], incoming: [], outgoing: [] };

function byActivity(a: ConversationView, b: ConversationView): number {
  return b.lastActivity < a.lastActivity ? -1 : b.lastActivity > a.lastActivity ? 1 : 0;
}

/** Inserts or replaces `m` (matched by key, or by id) in seq order; pending ones stay last. */
export function upsertMessage(list: MessageView[], m: MessageView): MessageView[] {
  const i = list.findIndex((x) => x.key === m.key || (m.id !== null && x.id === m.id));
  if (i >= 0) {
    // sendMessage's answer (pending) and the "sent" event race over IPC: a pending copy
    // never replaces one the server has already confirmed.
    const had = list[i];
    if (had && had.seq !== null && m.seq === null && m.state === "pending") return list;
    const next = list.slice();
    next[i] = m;
    return next;
  }
  if (m.seq === null) return [...list, m];
  // Confirmed messages go before pending ones, in seq order (usually at the end).
  let at = list.length;
  while (at > 0) {
    const prev = list[at - 1];
    if (prev && prev.seq !== null && prev.seq < m.seq) break;
    at--;
  }
  return [...list.slice(0, at), m, ...list.slice(at)];
}

export function createMessenger(
  api: Messenger,
  events: Listenable<MessengerEvent>,
  hooks: MessengerHooks = {},
) {
  const [state, setState] = createStore<MessengerState>({
    rooms: {},
    contacts: EMPTY_CONTACTS,
    connection: "online",
    reconnectAttempt: null,
    typing: {},
    receipts: {},
    ringing: [],
    notificationsMuted: false,
  });
  const timelines = new Map<RoomId, TimelineInternal>();
  const [openRoomId, setOpenRoomId] = createSignal<RoomId | null>(null);

  const fail = (err: unknown) => (hooks.fail ? hooks.fail(err) : console.warn(err));

  const conversations = createMemo(() => Object.values(state.rooms).slice().sort(byActivity));
  const totalUnread = createMemo(() =>
    Object.values(state.rooms).reduce((n, r) => n + (r.muted ? 0 : r.unread), 0),
  );

  /** A timeline plus the setters only the store uses. */
  type TimelineInternal = Timeline & {
    setBefore: Setter<boolean>;
    setAfter: Setter<boolean>;
    setLoadingOlder: Setter<boolean>;
    setCached: Setter<boolean>;
  };

  function timelineFrom(page: TimelinePage, readAtOpen: number): TimelineInternal {
    const [messages, setMessages] = createSignal(page.messages);
    const [hasMoreBefore, setBefore] = createSignal(page.hasMoreBefore);
    const [hasMoreAfter, setAfter] = createSignal(page.hasMoreAfter);
    const [loadingOlder, setLoadingOlder] = createSignal(false);
    const [cached, setCached] = createSignal(page.cached);
    return {
      roomId: page.roomId,
      messages,
      setMessages,
      hasMoreBefore,
      hasMoreAfter,
      loadingOlder,
      cached,
      readAtOpen,
      setBefore,
      setAfter,
      setLoadingOlder,
      setCached,
    };
  }

  function applyPage(page: TimelinePage) {
    setState("receipts", page.roomId, page.receipts);
    setState("typing", page.roomId, page.typing);
  }

  const store = {
    state,
    conversations,
    totalUnread,
    openRoomId,
    timeline: (roomId: RoomId): Timeline | undefined => timelines.get(roomId),

    async load(): Promise<void> {
      const [rooms, contacts, ringing, connection, muted] = await Promise.all([
        api.listConversations(),
        api.contacts(),
        api.ringing(),
        api.connectionState(),
        api.notificationsMuted(),
      ]);
      batch(() => {
        const map: Record<RoomId, ConversationView> = {};
        for (const r of rooms) map[r.id] = r;
        setState("rooms", reconcile(map));
        setState("contacts", contacts);
        setState("ringing", ringing);
        setState("connection", connection);
        setState("notificationsMuted", muted);
      });
    },

    /** Opens a room: its latest page (cached in Rust), and tells Rust it is on screen. */
    async open(roomId: RoomId): Promise<Timeline> {
      setOpenRoomId(roomId);
      const readAtOpen = state.rooms[roomId]?.lastReadSeq ?? 0;
      const page = await api.openConversation(roomId);
      applyPage(page);
      const t = timelineFrom(page, readAtOpen);
      timelines.set(roomId, t);
      return t;
    },

    async close(): Promise<void> {
      setOpenRoomId(null);
      await api.closeConversation();
    },

    /** Loads the page before the oldest loaded message. */
    async loadOlder(roomId: RoomId): Promise<void> {
      const t = timelines.get(roomId);
      if (!t?.hasMoreBefore() || t.loadingOlder()) return;
      const oldest = t.messages().find((m) => m.seq !== null)?.seq;
      if (oldest == null) return;
      t.setLoadingOlder(true);
      try {
        const page = await api.loadMessages(roomId, { kind: "before", seq: oldest }, OLDER_PAGE);
        const known = new Set(t.messages().map((m) => m.key));
        const older = page.messages.filter((m) => !known.has(m.key));
        const started = performance.now();
        batch(() => {
          t.setMessages((list) => [...older, ...list]);
          t.setBefore(page.hasMoreBefore);
        });
        window.__confabPrependMs ??= [];
        window.__confabPrependMs.push(performance.now() - started);
      } finally {
        t.setLoadingOlder(false);
      }
    },

    /** Replaces the loaded window with the page around `seq` (jump to first unread). */
    async loadAround(roomId: RoomId, seq: number): Promise<void> {
      const t = timelines.get(roomId);
      if (!t) return;
      const page = await api.loadMessages(roomId, { kind: "around", seq }, null);
      batch(() => {
        t.setMessages(page.messages);
        t.setBefore(page.hasMoreBefore);
        t.setAfter(page.hasMoreAfter);
      });
    },

    /** Replaces the loaded window with the newest page (jump to newest). */
    async loadLatest(roomId: RoomId): Promise<void> {
      const t = timelines.get(roomId);
      if (!t) return;
      const page = await api.loadMessages(roomId, { kind: "latest" }, null);
      applyPage(page);
      batch(() => {
        t.setMessages(page.messages);
        t.setBefore(page.hasMoreBefore);
        t.setAfter(page.hasMoreAfter);
        t.setCached(page.cached);
      });
    },

    /** Loads the page after the newest loaded message (after a jump back in time). */
    async loadNewer(roomId: RoomId): Promise<void> {
      const t = timelines.get(roomId);
      if (!t?.hasMoreAfter()) return;
      const newest = [...t.messages()].reverse().find((m) => m.seq !== null)?.seq;
      if (newest == null) return;
      const page = await api.loadMessages(roomId, { kind: "after", seq: newest }, null);
      const known = new Set(t.messages().map((m) => m.key));
      batch(() => {
        t.setMessages((list) => {
          let next = list;
          for (const m of page.messages) if (!known.has(m.key)) next = upsertMessage(next, m);
          return next;
        });
        t.setAfter(page.hasMoreAfter);
      });
    },

    /** Puts a message (pending from sendMessage, or any answer) into its room's timeline. */
    put(m: MessageView): void {
      const t = timelines.get(m.roomId);
      if (!t) return;
      t.setMessages((list) => upsertMessage(list, m));
    },

    async markRead(roomId: RoomId, seq: number): Promise<void> {
      const room = state.rooms[roomId];
      if (!room || seq <= room.lastReadSeq) return;
      setState("rooms", roomId, (r) => ({ ...r, lastReadSeq: seq, unread: 0, mentions: 0 }));
      try {
        await api.markRead(roomId, seq);
      } catch (err) {
        fail(err);
      }
    },

    setContacts(c: ContactsView): void {
      setState("contacts", c);
    },

    putRoom(r: ConversationView): void {
      setState("rooms", r.id, r);
    },

    dropRing(roomId: RoomId): void {
      setState("ringing", (list) => list.filter((r) => r.roomId !== roomId));
    },

    setNotificationsMuted(muted: boolean): void {
      setState("notificationsMuted", muted);
    },

    apply(ev: MessengerEvent): void {
      switch (ev.type) {
        case "connection":
          setState("connection", ev.state);
          setState("reconnectAttempt", ev.attempt);
          break;
        case "synced":
          void store.load().catch(fail);
          {
            const open = openRoomId();
            const t = open ? timelines.get(open) : undefined;
            // A page kept by the last run is replaced whole by the server's newest.
            // (A live page needs nothing: the catch-up's messages arrive as events.)
            if (open && t?.cached()) void store.loadLatest(open).catch(fail);
          }
          break;
        case "roomUpserted":
          setState("rooms", ev.room.id, reconcile(ev.room));
          break;
        case "roomRemoved":
          setState(
            "rooms",
            produce((rooms) => {
              delete rooms[ev.roomId];
            }),
          );
          timelines.delete(ev.roomId);
          break;
        case "messageCreated": {
          const t = timelines.get(ev.message.roomId);
          // A timeline showing an older window learns of it when it scrolls down.
          if (t && !t.hasMoreAfter()) store.put(ev.message);
          break;
        }
        case "messageUpdated":
        case "messageDeleted":
        case "messageFailed":
          store.put(ev.message);
          break;
        case "messageSent":
          store.put(ev.message);
          break;
        case "reactions": {
          const t = timelines.get(ev.roomId);
          t?.setMessages((list) =>
            list.map((m) => (m.id === ev.messageId ? { ...m, reactions: ev.reactions } : m)),
          );
          break;
        }
        case "typing":
          setState("typing", ev.roomId, ev.typing);
          break;
        case "receipts":
          setState("receipts", ev.receipts.roomId, ev.receipts);
          break;
        case "presence":
          batch(() => {
            for (const r of Object.values(state.rooms)) {
              if (r.otherUser?.id === ev.userId) setState("rooms", r.id, "presence", ev.status);
            }
            setState("contacts", "contacts", (c) => c.user.id === ev.userId, "presence", ev.status);
          });
          break;
        case "contactsChanged":
          setState("contacts", reconcile(ev.contacts));
          break;
        case "ringing":
          setState("ringing", (list) => [
            ...list.filter((r) => r.roomId !== ev.ring.roomId),
            ev.ring,
          ]);
          break;
        case "ringStopped":
          store.dropRing(ev.roomId);
          break;
        case "callMissed": {
          const title = state.rooms[ev.roomId]?.title;
          hooks.notice?.(title ? `Missed call with ${title}` : "Missed call");
          break;
        }
        case "callDeclined": {
          const title = state.rooms[ev.roomId]?.title;
          hooks.notice?.(title ? `${title} declined the call` : "The call was declined");
          break;
        }
        case "callStarted":
          if (state.rooms[ev.roomId]) {
            setState("rooms", ev.roomId, "callParticipants", ev.participantCount);
          }
          break;
        case "callEnded":
          if (state.rooms[ev.roomId]) setState("rooms", ev.roomId, "callParticipants", 0);
          break;
        case "notificationsMuted":
          setState("notificationsMuted", ev.muted);
          break;
        case "openRoom":
          hooks.openRoom?.(ev.roomId);
          break;
        case "inviteLinkOpened":
          hooks.inviteLink?.();
          break;
        case "communityUpserted":
        case "communityRemoved":
        case "communityMemberJoined":
        case "communityMemberLeft":
        case "communityRoleChanged":
          // The community store's (communities/store.ts); channel rooms come as rooms.
          break;
        default:
          unreachable(ev);
      }
    },

    /** Follows the event stream; returns the unsubscribe. */
    listen(): () => void {
      return subscribe(events, (ev) => store.apply(ev));
    },
  };
  return store;
}

export type MessengerStore = ReturnType<typeof createMessenger>;
