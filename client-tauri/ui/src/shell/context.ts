// What the shell's parts share: the messenger store and API, who I am, the error path,
// drafts, navigation and calls.

import { type Accessor, createContext, useContext } from "solid-js";
import type { Me } from "../api";
import type { CallSession } from "../call/session";
import type { Communities, CommunityId } from "../communities/api";
import type { CommunityStore } from "../communities/store";
import type { Messenger } from "../messenger/api";
import type { Drafts } from "../messenger/Composer";
import type { MessengerStore } from "../messenger/store";
import type { RoomId, UserId } from "../messenger/types";

export type View =
  | { kind: "home" }
  | { kind: "room"; roomId: RoomId; focus?: Focus }
  | { kind: "contacts" }
  | { kind: "prejoin"; roomId: RoomId; title: string; audioOnly: boolean }
  | { kind: "call" }
  | { kind: "discover" }
  | { kind: "search" }
  | { kind: "community"; communityId: CommunityId };

/** A message to show when a conversation opens (a search hit). */
export interface Focus {
  seq: number;
  messageId: string;
}

export interface Calls {
  session: Accessor<CallSession | null>;
  /** Starts a call in `roomId` at once with the default devices (direct call buttons). */
  start(roomId: RoomId, title: string, video: boolean): Promise<void>;
  /** Rings a contact (opens the direct room and joins its call). */
  ring(userId: UserId, title: string, video: boolean): Promise<void>;
  /** Answers a ringing call. */
  answer(roomId: RoomId, title: string, video: boolean): Promise<void>;
}

export interface Shell {
  api: Messenger;
  store: MessengerStore;
  me: Accessor<Me | null>;
  fail(err: unknown): void;
  drafts: Drafts;
  view: Accessor<View>;
  go(view: View): void;
  openRoom(roomId: RoomId, focus?: Focus): void;
  /** Joins a group by invite link, code or room id, and opens it. */
  join(target: string): Promise<void>;
  calls: Calls;
  /** The community whose channels the rail shows; null: direct messages and groups. */
  space: Accessor<CommunityId | null>;
  setSpace(id: CommunityId | null): void;
  communities: CommunityStore;
  cApi: Communities;
}

export const ShellContext = createContext<Shell>();

export function useShell(): Shell {
  const s = useContext(ShellContext);
  if (!s) throw new Error("useShell outside the shell");
  return s;
}
