// The signed-in window: the rail on the left, the open conversation (or contacts, the home
// pane, pre-join or the call) in the main pane, the call bar while a call runs elsewhere,
// the incoming-call overlay, the quick switcher (Ctrl+K), the offline banner and, for a
// server reached over plain http, the same warning the server and sign-in screens show.

import { createEffect, createSignal, Match, on, onCleanup, onMount, Show, Switch } from "solid-js";
import type { Listenable } from "../api";
import { api, type CallSettings } from "../api";
import { useApp } from "../app/state";
import { CallView } from "../call/CallView";
import { type CallSession, startCall } from "../call/session";
import { type Communities, communities as communitiesApi } from "../communities/api";
import { ChannelList } from "../communities/ChannelList";
import { Discover } from "../communities/Discover";
import { CommunitySettings } from "../communities/Settings";
import { Spaces } from "../communities/Spaces";
import { createCommunities } from "../communities/store";
import { audioChoice, initialDeviceState, videoChoice } from "../media/devices";
import { type Messenger, messenger, messengerEvents } from "../messenger/api";
import { Conversation } from "../messenger/Conversation";
import { createMessenger } from "../messenger/store";
import type { MessengerEvent, RoomId } from "../messenger/types";
import { Prejoin } from "../screens/Prejoin";
import { Search } from "../search/Search";
import { toastError, toastInfo, toastSuccess } from "../toasts";
import { AccountMenu } from "./AccountMenu";
import { CallBar } from "./CallBar";
import { Contacts } from "./Contacts";
import { type Calls, type Focus, ShellContext, type View } from "./context";
import { SavedDrafts } from "./drafts";
import { Home } from "./Home";
import { IncomingCall } from "./IncomingCall";
import { QuickSwitcher } from "./QuickSwitcher";
import { Rail } from "./Rail";

/** Without using the window for this long, my presence becomes idle. */
export const IDLE_AFTER_MS = 5 * 60 * 1000;

/** Call settings from the default devices (the test pattern and tone when there are none). */
async function defaultSettings(video: boolean): Promise<CallSettings> {
  let state = initialDeviceState({ cameras: [], microphones: [], speakers: [], notes: [] });
  try {
    state = initialDeviceState(await api.listDevices());
  } catch {
    // No device list: the synthetic sources still make a call.
  }
  return {
    video: video ? videoChoice(state) : { kind: "off" },
    audio: audioChoice(state),
    speaker: null,
    muted: false,
    cameraOff: !video,
  };
}

export function Shell(props: {
  api?: Messenger;
  events?: Listenable<MessengerEvent>;
  communities?: Communities;
}) {
  const app = useApp();
  const mApi = props.api ?? messenger;
  const [view, setView] = createSignal<View>({ kind: "home" });
  const [session, setSession] = createSignal<CallSession | null>(null);
  const [switcher, setSwitcher] = createSignal(false);
  const drafts = new SavedDrafts((roomId, body) => mApi.setDraft(roomId, body));

  const go = (v: View) => setView(v);
  const [space, setSpace] = createSignal<string | null>(null);
  const cApi = props.communities ?? communitiesApi;

  const store = createMessenger(mApi, props.events ?? messengerEvents, {
    openRoom: (roomId) => openRoom(roomId),
    notice: (t) => toastInfo(t),
    fail: (e) => app.fail(e),
    inviteLink: () => joinOpenedLink(),
  });
  const communities = createCommunities(
    cApi,
    props.events ?? messengerEvents,
    () => store.state.rooms,
    {
      removed(c, reason) {
        if (!c) return;
        if (space() === c.id) setSpace(null);
        const v = view();
        const inside =
          (v.kind === "community" && v.communityId === c.id) ||
          (v.kind === "room" && c.channels.some((ch) => ch.id === v.roomId));
        if (inside) setView({ kind: "home" });
        if (reason !== "left") toastInfo(`You are no longer in ${c.name} (${reason})`);
      },
    },
  );
  /** Opening a room shows its space: a channel's community, else direct messages. */
  const openRoom = (roomId: RoomId, focus?: Focus) => {
    setSpace(communities.ofRoom(roomId)?.id ?? null);
    setView({ kind: "room", roomId, focus });
  };

  const join = async (target: string) => {
    const room = await mApi.joinRoom(target);
    toastSuccess(`You joined “${room.title}”`);
    await store.load().catch(() => undefined);
    openRoom(room.id);
  };
  /** A `confab://invite/…` link the OS handed to the app (before sign-in, or now). */
  const joinOpenedLink = () => {
    mApi
      .takeInviteLink()
      .then((link) => (link ? join(link) : undefined))
      .catch((e: unknown) => app.fail(e));
  };

  const begin = (roomId: RoomId, title: string, settings: CallSettings, answer = false) => {
    if (session()) {
      toastInfo("Hang up the current call first");
      return;
    }
    const s = startCall({
      room: { id: roomId, title },
      settings,
      username: app.me()?.username ?? "me",
      fail: (e) => app.fail(e),
      connect: answer ? (id, st) => mApi.answerCall(id, st) : undefined,
      onEnded: (message) => {
        setSession(null);
        if (view().kind === "call") openRoom(roomId);
        if (message) toastInfo(message);
      },
    });
    setSession(s);
    setView({ kind: "call" });
  };

  const calls: Calls = {
    session,
    async start(roomId, title, video) {
      begin(roomId, title, await defaultSettings(video));
    },
    async ring(userId, title, video) {
      try {
        const room = await mApi.openDirect(userId);
        store.putRoom(room);
        begin(room.id, title, await defaultSettings(video));
      } catch (err) {
        app.fail(err);
      }
    },
    async answer(roomId, title, video) {
      store.dropRing(roomId);
      // Answering while in another call hangs that one up first, as phones do.
      await session()?.leave();
      begin(roomId, title, await defaultSettings(video), true);
    },
  };

  const shell = {
    api: mApi,
    store,
    me: app.me,
    fail: (e: unknown) => app.fail(e),
    drafts,
    view,
    go,
    openRoom,
    join,
    calls,
    space,
    setSpace,
    communities,
    cApi,
  };

  onMount(() => {
    const stop = store.listen();
    onCleanup(stop);
    onCleanup(communities.listen());
    store.load().catch((e: unknown) => app.fail(e));
    communities.load().catch((e: unknown) => app.fail(e));
    mApi
      .drafts()
      .then((kept) => drafts.fill(kept))
      .catch((e: unknown) => console.warn("no saved drafts", e));
    joinOpenedLink();
  });
  onCleanup(() => drafts.flush());
  onCleanup(() => {
    void session()?.leave();
  });

  // My presence: idle after a while without using the window, online again on use.
  let idle = false;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let lastActive = 0;
  const onActivity = () => {
    const now = Date.now();
    if (!idle && now - lastActive < 10_000) return; // at most one timer reset per 10 s
    lastActive = now;
    clearTimeout(idleTimer);
    if (idle) {
      idle = false;
      mApi.setPresence("online").catch(() => undefined);
    }
    idleTimer = setTimeout(() => {
      idle = true;
      mApi.setPresence("idle").catch(() => undefined);
    }, IDLE_AFTER_MS);
  };
  onActivity();
  for (const ev of ["focus", "keydown", "pointerdown"] as const) {
    window.addEventListener(ev, onActivity);
  }
  onCleanup(() => {
    clearTimeout(idleTimer);
    for (const ev of ["focus", "keydown", "pointerdown"] as const) {
      window.removeEventListener(ev, onActivity);
    }
  });

  const onKey = (e: KeyboardEvent) => {
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === "k") {
      e.preventDefault();
      setSwitcher((v) => !v);
    }
  };
  window.addEventListener("keydown", onKey);
  onCleanup(() => window.removeEventListener("keydown", onKey));

  // The window title carries the unread total (Rust also sets the OS window's title).
  createEffect(() => {
    const n = store.totalUnread();
    document.title = n > 0 ? `Confab (${n})` : "Confab";
  });

  createEffect(
    on(
      () => view().kind + (view().kind === "room" ? (view() as { roomId: string }).roomId : ""),
      () =>
        // A conversation: straight to its composer (as in other messengers); other panes:
        // their heading, so screen readers announce the new pane.
        setTimeout(() => {
          const target =
            view().kind === "room"
              ? document.querySelector<HTMLElement>(".main-pane [data-testid='composer-input']")
              : document.querySelector<HTMLElement>(".main-pane h1");
          target?.focus({ preventScroll: true });
        }, 0),
      { defer: true },
    ),
  );

  const ring = () => store.state.ringing[0];

  return (
    <ShellContext.Provider value={shell}>
      <div class="shell" data-testid="shell" id="shell">
        <Show when={app.insecure()}>
          <p class="insecure-warning" role="alert" data-testid="insecure-banner">
            <strong>Not secure:</strong> this server is reached over plain http, so your messages
            and calls' signaling cross the network unencrypted.
          </p>
        </Show>
        <Show when={store.state.connection !== "online"}>
          <div class="offline-banner" role="status" data-testid="offline-banner">
            {store.state.connection === "reconnecting"
              ? `Reconnecting${store.state.reconnectAttempt ? ` (attempt ${store.state.reconnectAttempt})` : ""}…`
              : "You are offline."}{" "}
            Messages you write are sent when the connection is back.
          </div>
        </Show>
        <div class="shell-body">
          <Spaces />
          <aside class="sidebar">
            <AccountMenu />
            <Show
              when={space() ? communities.get(space() ?? "") : undefined}
              fallback={<Rail onSwitcher={() => setSwitcher(true)} />}
            >
              {(c) => <ChannelList community={c()} />}
            </Show>
          </aside>
          <main class="main-pane">
            <Show when={session() && view().kind !== "call" ? session() : null}>
              {(s) => <CallBar session={s()} onReturn={() => go({ kind: "call" })} />}
            </Show>
            <Switch>
              <Match when={view().kind === "home"}>
                <Home />
              </Match>
              <Match when={view().kind === "contacts"}>
                <Contacts />
              </Match>
              <Match
                when={(() => {
                  const v = view();
                  return v.kind === "room" ? v : null;
                })()}
              >
                {(v) => <Conversation roomId={v().roomId} focus={v().focus} />}
              </Match>
              <Match
                when={(() => {
                  const v = view();
                  return v.kind === "prejoin" ? v : null;
                })()}
              >
                {(v) => (
                  <Prejoin
                    room={{ id: v().roomId, title: v().title }}
                    audioOnly={v().audioOnly}
                    fail={(e) => app.fail(e)}
                    onBack={() => openRoom(v().roomId)}
                    onJoin={(settings) => begin(v().roomId, v().title, settings)}
                  />
                )}
              </Match>
              <Match when={view().kind === "call" && session()}>
                {(s) => <CallView session={s()} fail={(e) => app.fail(e)} />}
              </Match>
              <Match when={view().kind === "call"}>
                <Home />
              </Match>
              <Match when={view().kind === "discover"}>
                <Discover />
              </Match>
              <Match when={view().kind === "search"}>
                <Search />
              </Match>
              <Match
                when={(() => {
                  const v = view();
                  return v.kind === "community" ? communities.get(v.communityId) : undefined;
                })()}
              >
                {(c) => <CommunitySettings community={c()} />}
              </Match>
            </Switch>
          </main>
        </div>
        <Show when={ring()}>
          {(r) => (
            <IncomingCall
              ring={r()}
              onAccept={(video) =>
                void calls
                  .answer(r().roomId, r().from.name, video)
                  .catch((e: unknown) => app.fail(e))
              }
              onDecline={() => {
                const id = r().roomId;
                store.dropRing(id);
                mApi.declineCall(id).catch((e: unknown) => toastError(String(e)));
              }}
            />
          )}
        </Show>
        <Show when={switcher()}>
          <QuickSwitcher
            rooms={store.conversations()}
            contacts={store.state.contacts.contacts}
            onClose={() => setSwitcher(false)}
            onPick={(item) => {
              setSwitcher(false);
              if (item.kind === "room") {
                openRoom(item.id);
              } else {
                mApi.openDirect(item.id).then((room) => {
                  store.putRoom(room);
                  openRoom(room.id);
                }, shell.fail);
              }
            }}
          />
        </Show>
      </div>
    </ShellContext.Provider>
  );
}
