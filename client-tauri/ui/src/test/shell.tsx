// Test helper: the signed-in shell on a fake IPC backend, with the commands the shell
// calls at start answered from `setup` (override any with backend.on afterwards).

import { render } from "@solidjs/testing-library";
import { AppProvider, createAppState } from "../app/state";
import type { CommunityView } from "../communities/api";
import type {
  ContactsView,
  ConversationView,
  MessengerEvent,
  TimelinePage,
} from "../messenger/types";
import { Shell } from "../shell/Shell";
import { ME } from "./fixtures";
import { type FakeBackend, flush } from "./ipc";

export interface ShellSetup {
  rooms?: ConversationView[];
  contacts?: ContactsView;
  pages?: Record<string, TimelinePage>;
  communities?: CommunityView[];
  drafts?: { roomId: string; body: string }[];
  /** A `confab://` link opened before the shell mounted (taken once). */
  inviteLink?: string;
}

export async function mountShell(backend: FakeBackend, setup: ShellSetup = {}) {
  const rooms = setup.rooms ?? [];
  backend.on("listConversations", () => rooms);
  backend.on("contacts", () => setup.contacts ?? { contacts: [], incoming: [], outgoing: [] });
  backend.on("ringing", () => []);
  backend.on("connectionState", () => "online");
  backend.plain("notificationsMuted", () => false);
  let link = setup.inviteLink ?? null;
  backend.plain("takeInviteLink", () => {
    const taken = link;
    link = null;
    return taken;
  });
  backend.on("closeConversation", () => undefined);
  backend.on("roomMembers", () => []);
  backend.on("markRead", (_room: string, seq: number) => seq);
  backend.on("typing", () => null);
  backend.on("blockedUsers", () => []);
  backend.on("listCommunities", () => setup.communities ?? []);
  backend.on("drafts", () => setup.drafts ?? []);
  backend.on("setDraft", () => null);
  backend.on("openConversation", (roomId: string) => {
    const p = setup.pages?.[roomId];
    if (!p) throw new Error(`no page for ${roomId}`);
    return p;
  });
  const app = createAppState({ name: "shell" });
  app.setMe(ME);
  app.setServerUrl("http://127.0.0.1:8080");
  const view = render(() => (
    <AppProvider state={app}>
      <Shell />
    </AppProvider>
  ));
  await flush();
  return {
    app,
    view,
    emit: (ev: MessengerEvent) => backend.emit("messengerEvent", ev),
  };
}

export async function openRoom(roomId: string): Promise<void> {
  const row = document.querySelector<HTMLElement>(
    `[data-testid='rail-room'][data-room-id='${roomId}'] button`,
  );
  if (!row) throw new Error(`no rail row for ${roomId}`);
  row.click();
  await flush();
}

export const $ = <T extends HTMLElement = HTMLElement>(sel: string) =>
  document.querySelector(sel) as T;
export const $$ = <T extends HTMLElement = HTMLElement>(sel: string) =>
  Array.from(document.querySelectorAll<T>(sel));
export const byTestId = (id: string) => $(`[data-testid='${id}']`);
export const allByTestId = (id: string) => $$(`[data-testid='${id}']`);
