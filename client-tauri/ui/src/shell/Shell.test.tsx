import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { contact, direct, message, page, request, room, user } from "../test/fixtures";
import { type FakeBackend, flush, IpcError } from "../test/ipc";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { mountShell, openRoom, $, $$, byTestId, allByTestId } = await import("../test/shell");

/** What joining answers (a RoomView). */
const groupView = {
  id: "g",
  title: "Invited",
  ownerId: "u-owner",
  isOwner: false,
  maxParticipants: 8,
  memberCount: 3,
  createdAt: "2026-01-01T10:00:00Z",
};

const ana = user("ana", { displayName: "Ana" });
const bo = user("bo");
const cy = user("cy");

const rail = () => allByTestId("rail-room");
const railIds = () => rail().map((r) => r.dataset.roomId);
const click = (el: Element | null) => (el as HTMLElement).click();
const key = (k: string, init: KeyboardEventInit = {}) =>
  window.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, ...init }));

describe("the rail", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("lists direct rooms and groups by activity with badges, presence and previews", async () => {
    const { emit } = await mountShell(ipc.backend, {
      rooms: [
        room("old", { title: "Old group", lastActivity: "2026-01-01T08:00:00Z" }),
        direct(ana, {
          id: "dm-ana",
          unread: 3,
          mentions: 1,
          presence: "idle",
          lastActivity: "2026-01-01T09:00:00Z",
          lastMessage: {
            messageId: "m1",
            seq: 1,
            authorId: ana.id,
            authorName: "Ana",
            kind: "text",
            body: "**see** you",
            createdAt: "2026-01-01T09:00:00Z",
            mine: false,
            authorBlocked: false,
          },
        }),
        room("new", { title: "New group", lastActivity: "2026-01-01T10:00:00Z" }),
      ],
    });
    expect(railIds()).toEqual(["dm-ana", "new", "old"]);
    const row = rail()[0] as HTMLElement;
    expect(row.dataset).toMatchObject({ kind: "direct", unread: "3" });
    expect(row.querySelector("[data-testid='unread-badge']")?.textContent).toBe("3");
    expect(row.querySelector("[data-testid='mention-badge']")?.textContent).toBe("@1");
    expect(row.querySelector<HTMLElement>("[data-testid='presence-dot']")?.dataset.presence).toBe(
      "idle",
    );
    expect(row.querySelector("[data-testid='rail-room-preview']")?.textContent).toBe("see you");
    expect(row.querySelector("button")?.getAttribute("aria-label")).toContain("3 unread");

    // Live: a room moves up with new activity, presence changes, a room goes away.
    emit({
      type: "roomUpserted",
      room: room("old", { title: "Old group", lastActivity: "2026-01-01T11:00:00Z", unread: 1 }),
    });
    expect(railIds()).toEqual(["dm-ana", "old", "new"]);
    emit({ type: "presence", userId: ana.id, status: "online" });
    expect($("[data-room-id='dm-ana'] [data-testid='presence-dot']").dataset.presence).toBe(
      "online",
    );
    emit({ type: "roomRemoved", roomId: "new" });
    expect(railIds()).toEqual(["dm-ana", "old"]);
    expect(document.title).toBe("Confab (4)");
  });

  it("opens a conversation in the main pane", async () => {
    await mountShell(ipc.backend, {
      rooms: [room("g", { title: "Team" })],
      pages: { g: page("g", [message("g", 1)]) },
    });
    await openRoom("g");
    expect(byTestId("conversation").dataset.roomId).toBe("g");
    expect(byTestId("conversation-title").textContent).toBe("Team");
    expect($("[data-room-id='g'] button").getAttribute("aria-current")).toBe("page");
  });
});

describe("quick switcher", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("opens with Ctrl+K, filters rooms and contacts, and opens the pick", async () => {
    await mountShell(ipc.backend, {
      rooms: [
        room("g1", { title: "Design crew" }),
        room("g2", { title: "Backend" }),
        direct(ana, { id: "dm-ana" }),
      ],
      contacts: { contacts: [contact(ana), contact(bo)], incoming: [], outgoing: [] },
      pages: { g2: page("g2", []) },
    });
    ipc.backend.on("openDirect", () => direct(bo, { id: "dm-bo" }));
    key("k", { ctrlKey: true });
    const input = byTestId("switcher-input") as HTMLInputElement;
    expect(document.activeElement).toBe(input);
    const items = () =>
      allByTestId("switcher-item").map((i) => `${i.dataset.kind}:${i.dataset.id}`);
    // Ana has a direct room: she is listed once, as the room.
    expect(items()).toEqual(["room:g1", "room:g2", "room:dm-ana", "contact:u-bo"]);
    input.value = "back";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    expect(items()).toEqual(["room:g2"]);
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await flush();
    expect(byTestId("quick-switcher")).toBeNull();
    expect(byTestId("conversation").dataset.roomId).toBe("g2");

    key("k", { ctrlKey: true });
    const again = byTestId("switcher-input") as HTMLInputElement;
    again.value = "bo";
    again.dispatchEvent(new Event("input", { bubbles: true }));
    expect(items()).toEqual(["contact:u-bo"]);
    again.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await flush();
    expect(ipc.backend.callsTo("openDirect")).toEqual([["u-bo"]]);
  });

  it("keeps Tab inside the dialog", async () => {
    await mountShell(ipc.backend, { rooms: [room("a"), room("b")] });
    key("k", { ctrlKey: true });
    const input = byTestId("switcher-input") as HTMLInputElement;
    for (const shiftKey of [false, true]) {
      const tab = new KeyboardEvent("keydown", {
        key: "Tab",
        shiftKey,
        bubbles: true,
        cancelable: true,
      });
      input.dispatchEvent(tab);
      expect(tab.defaultPrevented).toBe(true);
      expect(document.activeElement).toBe(input);
    }
    expect(byTestId("quick-switcher")).not.toBeNull();
  });

  it("moves with the arrows and closes with Escape", async () => {
    await mountShell(ipc.backend, { rooms: [room("a"), room("b")] });
    key("k", { ctrlKey: true });
    const input = byTestId("switcher-input") as HTMLInputElement;
    const selected = () =>
      allByTestId("switcher-item").find((i) => i.getAttribute("aria-selected") === "true")?.dataset
        .id;
    expect(selected()).toBe("a");
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect(selected()).toBe("b");
    expect(input.getAttribute("aria-activedescendant")).toBe("switch-1");
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect(selected()).toBe("a");
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(byTestId("quick-switcher")).toBeNull();
  });
});

describe("plain-http warning in the shell", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("shows while the server is reached over plain http, and only then", async () => {
    const { app } = await mountShell(ipc.backend);
    expect(byTestId("insecure-banner")).toBeNull();
    app.setInsecure(true);
    const banner = byTestId("insecure-banner");
    expect(banner.getAttribute("role")).toBe("alert");
    expect(banner.textContent).toContain("plain http");
    app.setInsecure(false);
    expect(byTestId("insecure-banner")).toBeNull();
  });
});

describe("contacts", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  const openContacts = async () => {
    click(byTestId("contacts-entry"));
    await flush();
  };

  it("searches people and sends a request", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      await mountShell(ipc.backend, {});
      ipc.backend.on("searchUsers", () => [cy, { ...user("me"), id: "u-me" }]);
      ipc.backend.on("sendContactRequest", () => ({
        contacts: [],
        incoming: [],
        outgoing: [request("r1", cy, false)],
      }));
      await openContacts();
      const search = byTestId("user-search") as HTMLInputElement;
      search.value = "c";
      search.dispatchEvent(new Event("input", { bubbles: true }));
      expect(byTestId("contacts-view").textContent).toContain("Type at least 2 characters");
      search.value = "cy";
      search.dispatchEvent(new Event("input", { bubbles: true }));
      await vi.advanceTimersByTimeAsync(300);
      await flush();
      expect(ipc.backend.callsTo("searchUsers")).toEqual([["cy"]]);
      const results = allByTestId("user-result");
      expect(results.map((r) => r.dataset.username)).toEqual(["cy"]); // not me
      click(results[0]?.querySelector("[data-testid='send-request']") ?? null);
      await flush();
      expect(ipc.backend.callsTo("sendContactRequest")).toEqual([["u-cy"]]);
      expect(allByTestId("outgoing-request").map((r) => r.dataset.username)).toEqual(["cy"]);
      expect(allByTestId("user-result")[0]?.textContent).toContain("Request pending");
    } finally {
      vi.useRealTimers();
    }
  });

  it("shows requests as they arrive and accepts, declines and cancels them", async () => {
    const { emit } = await mountShell(ipc.backend, {});
    await openContacts();
    expect(allByTestId("incoming-request")).toHaveLength(0);
    emit({
      type: "contactsChanged",
      contacts: {
        contacts: [],
        incoming: [request("in-1", ana, true), request("in-2", bo, true)],
        outgoing: [request("out-1", cy, false)],
      },
    });
    expect(allByTestId("incoming-request").map((r) => r.dataset.username)).toEqual(["ana", "bo"]);
    expect(byTestId("contacts-entry").textContent).toContain("2");
    ipc.backend.on("acceptRequest", () => ({
      contacts: [contact(ana)],
      incoming: [request("in-2", bo, true)],
      outgoing: [request("out-1", cy, false)],
    }));
    ipc.backend.on("declineRequest", () => ({
      contacts: [contact(ana)],
      incoming: [],
      outgoing: [request("out-1", cy, false)],
    }));
    ipc.backend.on("cancelRequest", () => ({
      contacts: [contact(ana)],
      incoming: [],
      outgoing: [],
    }));
    click($("[data-username='ana'] [data-testid='accept-request']"));
    await flush();
    expect(ipc.backend.callsTo("acceptRequest")).toEqual([["in-1"]]);
    expect(allByTestId("contact").map((c) => c.dataset.username)).toEqual(["ana"]);
    click($("[data-username='bo'] [data-testid='decline-request']"));
    await flush();
    expect(ipc.backend.callsTo("declineRequest")).toEqual([["in-2"]]);
    click($("[data-testid='outgoing-request'] [data-testid='cancel-request']"));
    await flush();
    expect(ipc.backend.callsTo("cancelRequest")).toEqual([["out-1"]]);
    expect(allByTestId("outgoing-request")).toHaveLength(0);
  });

  it("shows friends with presence; chats, removes, blocks and unblocks", async () => {
    const { emit } = await mountShell(ipc.backend, {
      contacts: {
        contacts: [contact(ana, { presence: "offline" }), contact(bo)],
        incoming: [],
        outgoing: [],
      },
      pages: { "dm-ana": page("dm-ana", []) },
    });
    ipc.backend.on("openDirect", () => direct(ana, { id: "dm-ana" }));
    ipc.backend.on("removeContact", () => ({
      contacts: [contact(ana)],
      incoming: [],
      outgoing: [],
    }));
    ipc.backend.on("block", () => ({ contacts: [], incoming: [], outgoing: [] }));
    await openContacts();
    const presence = () =>
      $("[data-testid='contact'][data-username='ana'] [data-testid='presence-dot']").dataset
        .presence;
    expect(presence()).toBe("offline");
    emit({ type: "presence", userId: ana.id, status: "online" });
    expect(presence()).toBe("online");

    click($("[data-username='bo'] [data-testid='contact-remove']"));
    click(byTestId("confirm-contact-action"));
    await flush();
    expect(ipc.backend.callsTo("removeContact")).toEqual([["u-bo"]]);

    ipc.backend.on("blockedUsers", () => [{ user: ana, since: "2026-01-01T00:00:00Z" }]);
    click($("[data-username='ana'] [data-testid='contact-block']"));
    click(byTestId("confirm-contact-action"));
    await flush();
    expect(ipc.backend.callsTo("block")).toEqual([["u-ana"]]);
    expect(allByTestId("blocked").map((b) => b.dataset.username)).toEqual(["ana"]);
    ipc.backend.on("unblock", () => ({ contacts: [], incoming: [], outgoing: [] }));
    ipc.backend.on("blockedUsers", () => []);
    click($("[data-testid='blocked'] [data-testid='unblock']"));
    await flush();
    expect(ipc.backend.callsTo("unblock")).toEqual([["u-ana"]]);
    expect(allByTestId("blocked")).toHaveLength(0);
  });

  it("starts a chat from a contact", async () => {
    await mountShell(ipc.backend, {
      contacts: { contacts: [contact(ana)], incoming: [], outgoing: [] },
      pages: { "dm-ana": page("dm-ana", []) },
    });
    ipc.backend.on("openDirect", () => direct(ana, { id: "dm-ana" }));
    await openContacts();
    click($("[data-username='ana'] [data-testid='contact-chat']"));
    await flush();
    expect(byTestId("conversation").dataset.roomId).toBe("dm-ana");
    expect(railIds()).toEqual(["dm-ana"]);
  });
});

describe("calls in the shell", () => {
  beforeEach(() => {
    ipc.backend.reset();
    document.body.insertAdjacentHTML("beforeend", '<div id="toasts"></div>');
  });
  afterEach(() => {
    cleanup();
    document.getElementById("toasts")?.remove();
  });

  const callable = () => {
    ipc.backend.on("listDevices", () => ({
      cameras: [],
      microphones: [],
      speakers: [],
      notes: [],
    }));
    for (const c of ["joinCall", "answerCall", "leaveCall", "declineCall"])
      ipc.backend.on(c, () => null);
    ipc.backend.on("nextFrame", () => new Promise(() => {}));
  };

  it("rings: shows the caller, accepts audio-only, and stops ringing", async () => {
    callable();
    const { emit } = await mountShell(ipc.backend, { rooms: [direct(ana, { id: "dm-ana" })] });
    emit({ type: "ringing", ring: { roomId: "dm-ana", from: ana, video: true } });
    const overlay = byTestId("incoming-call");
    expect(overlay.dataset.roomId).toBe("dm-ana");
    expect(byTestId("caller-name").textContent).toBe("Ana");
    expect(overlay.textContent).toContain("Incoming video call");
    click(byTestId("accept-audio"));
    await flush();
    expect(ipc.backend.callsTo("answerCall")).toEqual([
      [
        "dm-ana",
        {
          video: { kind: "off" },
          audio: { kind: "tone" },
          speaker: null,
          muted: false,
          cameraOff: true,
        },
      ],
    ]);
    expect(byTestId("incoming-call")).toBeNull();
    expect($("#call-view")).not.toBeNull();
  });

  it("keeps Tab inside the incoming-call overlay", async () => {
    callable();
    const { emit } = await mountShell(ipc.backend, { rooms: [direct(ana, { id: "dm-ana" })] });
    emit({ type: "ringing", ring: { roomId: "dm-ana", from: ana, video: true } });
    await flush();
    const overlay = byTestId("incoming-call");
    expect(document.activeElement).toBe(byTestId("accept-video"));
    const tab = (shiftKey: boolean) => {
      const ev = new KeyboardEvent("keydown", {
        key: "Tab",
        shiftKey,
        bubbles: true,
        cancelable: true,
      });
      document.activeElement?.dispatchEvent(ev);
      return ev.defaultPrevented;
    };
    expect(tab(true)).toBe(true);
    expect(document.activeElement).toBe(byTestId("decline-call"));
    expect(tab(false)).toBe(true);
    expect(document.activeElement).toBe(byTestId("accept-video"));
    expect(overlay.getAttribute("role")).toBe("alertdialog");
  });

  it("answering while in another call hangs that one up first", async () => {
    callable();
    const { emit } = await mountShell(ipc.backend, {
      rooms: [direct(ana, { id: "dm-ana" }), room("g", { title: "Team" })],
      pages: { "dm-ana": page("dm-ana", []), g: page("g", []) },
    });
    await openRoom("dm-ana");
    click(byTestId("call-audio"));
    await flush();
    expect(ipc.backend.callsTo("joinCall")[0]?.[0]).toBe("dm-ana");
    emit({ type: "ringing", ring: { roomId: "g", from: bo, video: false } });
    click(byTestId("accept-audio"));
    await flush();
    expect(ipc.backend.callsTo("leaveCall")).toHaveLength(1);
    expect(ipc.backend.callsTo("answerCall")[0]?.[0]).toBe("g");
    expect($("#call-view h1").textContent).toBe("bo");
  });

  it("declines, and goes away when answered elsewhere", async () => {
    callable();
    const { emit } = await mountShell(ipc.backend, { rooms: [direct(ana, { id: "dm-ana" })] });
    emit({ type: "ringing", ring: { roomId: "dm-ana", from: ana, video: false } });
    click(byTestId("decline-call"));
    await flush();
    expect(ipc.backend.callsTo("declineCall")).toEqual([["dm-ana"]]);
    expect(byTestId("incoming-call")).toBeNull();
    emit({ type: "ringing", ring: { roomId: "dm-ana", from: ana, video: false } });
    expect(byTestId("incoming-call")).not.toBeNull();
    emit({ type: "ringStopped", roomId: "dm-ana", reason: "answered" });
    expect(byTestId("incoming-call")).toBeNull();
  });

  it("keeps the call running while another conversation is open, with a call bar", async () => {
    callable();
    await mountShell(ipc.backend, {
      rooms: [direct(ana, { id: "dm-ana" }), room("g", { title: "Team" })],
      pages: { "dm-ana": page("dm-ana", []), g: page("g", []) },
    });
    await openRoom("dm-ana");
    click(byTestId("call-video"));
    await flush();
    expect(ipc.backend.callsTo("joinCall")).toEqual([
      [
        "dm-ana",
        {
          video: { kind: "testPattern" },
          audio: { kind: "tone" },
          speaker: null,
          muted: false,
          cameraOff: false,
        },
      ],
    ]);
    expect($("#call-view")).not.toBeNull();
    ipc.backend.emit("callEvent", {
      type: "joined",
      roomId: "dm-ana",
      participantId: "p-me",
      participants: [
        {
          participantId: "p-ana",
          userId: ana.id,
          username: "ana",
          audioMuted: false,
          videoMuted: false,
        },
      ],
    });
    await openRoom("g");
    expect($("#call-view")).toBeNull();
    const bar = byTestId("call-bar");
    expect(bar.dataset.roomId).toBe("dm-ana");
    expect($(".floating-tile .tile[data-participant-id='p-ana']")).not.toBeNull();
    expect(ipc.backend.callsTo("leaveCall")).toHaveLength(0);
    click(byTestId("call-return"));
    await flush();
    expect($("#call-view")).not.toBeNull();
    expect($$("#tiles .tile").map((t) => t.dataset.participantId)).toEqual(["p-me", "p-ana"]);
    await openRoom("g");
    click(byTestId("hang-up"));
    await flush();
    expect(ipc.backend.callsTo("leaveCall")).toHaveLength(1);
    expect(byTestId("call-bar")).toBeNull();
  });

  it("shows a running group call and joins it through the pre-join checks", async () => {
    callable();
    ipc.backend.on("startPreview", () => null);
    ipc.backend.on("stopPreview", () => null);
    await mountShell(ipc.backend, {
      rooms: [room("g", { title: "Team", callParticipants: 2 })],
      pages: { g: page("g", []) },
    });
    await openRoom("g");
    click(byTestId("join-running-call"));
    await flush();
    expect($("#prejoin")).not.toBeNull();
    // Voice processing is all on; the user turns noise suppression off for this call.
    const voice = (part: string) => $(`#voice-${part}`) as HTMLInputElement;
    expect(
      ["echoCancellation", "noiseSuppression", "gainControl"].map((p) => voice(p).checked),
    ).toEqual([true, true, true]);
    click(voice("noiseSuppression"));
    click($("#join-call"));
    await flush();
    expect(ipc.backend.callsTo("joinCall")[0]?.[0]).toBe("g");
    expect(ipc.backend.callsTo("joinCall")[0]?.[1]).toMatchObject({
      voiceProcessing: { echoCancellation: true, noiseSuppression: false, gainControl: true },
    });
    expect($("#call-view")).not.toBeNull();
    // The choice is remembered for the next call.
    expect(JSON.parse(localStorage.getItem("confab.voiceProcessing") ?? "null")).toEqual({
      echoCancellation: true,
      noiseSuppression: false,
      gainControl: true,
    });
    localStorage.removeItem("confab.voiceProcessing");
  });
});

describe("shell chrome", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("shows the offline banner while the connection is down", async () => {
    const { emit } = await mountShell(ipc.backend, {});
    expect(byTestId("offline-banner")).toBeNull();
    emit({ type: "connection", state: "reconnecting", attempt: 2 });
    expect(byTestId("offline-banner").textContent).toContain("Reconnecting (attempt 2)");
    emit({ type: "connection", state: "offline", attempt: null });
    expect(byTestId("offline-banner").textContent).toContain("offline");
    emit({ type: "connection", state: "online", attempt: null });
    expect(byTestId("offline-banner")).toBeNull();
  });

  it("goes idle after a while without use, and online again on use", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      ipc.backend.on("setPresence", () => null);
      await mountShell(ipc.backend, {});
      expect(ipc.backend.callsTo("setPresence")).toEqual([]);
      await vi.advanceTimersByTimeAsync(5 * 60 * 1000 + 1000);
      expect(ipc.backend.callsTo("setPresence")).toEqual([["idle"]]);
      window.dispatchEvent(new KeyboardEvent("keydown", { key: "a" }));
      await flush();
      expect(ipc.backend.callsTo("setPresence")).toEqual([["idle"], ["online"]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("leaves an open conversation that was removed elsewhere", async () => {
    const { emit } = await mountShell(ipc.backend, {
      rooms: [room("g", { title: "Team" })],
      pages: { g: page("g", []) },
    });
    await openRoom("g");
    expect(byTestId("conversation")).not.toBeNull();
    emit({ type: "roomRemoved", roomId: "g" });
    await flush();
    expect(byTestId("conversation")).toBeNull();
    expect($("#room-title")).not.toBeNull();
  });

  it("opens a room when Rust asks (tray, notification)", async () => {
    const { emit } = await mountShell(ipc.backend, {
      rooms: [room("g")],
      pages: { g: page("g", []) },
    });
    emit({ type: "openRoom", roomId: "g" });
    await flush();
    expect(byTestId("conversation").dataset.roomId).toBe("g");
  });

  it("joins the group of an invite link the OS hands over while it runs", async () => {
    const rooms = [room("a")];
    const { emit } = await mountShell(ipc.backend, {
      rooms,
      pages: { a: page("a", []), g: page("g", []) },
    });
    const link = "confab://invite/abcDEF123_-abcDEF123_-";
    ipc.backend.plain("takeInviteLink", () => link);
    ipc.backend.on("joinRoom", () => {
      rooms.push(room("g", { title: "Invited" }));
      return { ...groupView, id: "g", title: "Invited" };
    });
    emit({ type: "inviteLinkOpened" });
    await flush(6);
    expect(ipc.backend.callsTo("joinRoom")).toEqual([[link]]);
    expect(byTestId("conversation").dataset.roomId).toBe("g");
    expect($$("[data-testid='rail-room']").map((r) => r.dataset.roomId)).toContain("g");
  });

  it("joins the group of a link opened before signing in, once signed in", async () => {
    const link = "confab://invite/abcDEF123_-abcDEF123_-";
    ipc.backend.on("joinRoom", () => ({ ...groupView, id: "g", title: "Invited" }));
    await mountShell(ipc.backend, {
      rooms: [room("g", { title: "Invited" })],
      pages: { g: page("g", []) },
      inviteLink: link,
    });
    await flush(6);
    expect(ipc.backend.callsTo("joinRoom")).toEqual([[link]]);
    expect(byTestId("conversation").dataset.roomId).toBe("g");
  });

  it("says why a link that is not an invite does not join", async () => {
    const { app, emit } = await mountShell(ipc.backend, { rooms: [room("a")] });
    const fail = vi.spyOn(app, "fail");
    ipc.backend.plain("takeInviteLink", () => "confab://rooms/nothing");
    ipc.backend.on("joinRoom", () => {
      throw new IpcError({
        kind: "invalid",
        message: "Paste a room id, an invite link or an invite code.",
        fields: { target: "Paste a room id, an invite link or an invite code." },
      });
    });
    emit({ type: "inviteLinkOpened" });
    await flush(6);
    expect(fail).toHaveBeenCalledOnce();
    expect(byTestId("conversation")).toBeNull();
  });

  it("account menu: theme, profile and log out", async () => {
    const { app } = await mountShell(ipc.backend, {});
    ipc.backend.on("updateProfile", (displayName: string, statusText: string) => ({
      id: "u-me",
      username: "me",
      email: "me@example.com",
      displayName,
      statusText,
    }));
    ipc.backend.on("logOut", () => null);
    const menu = byTestId("account-menu");
    click(menu.querySelector("button"));
    click($("input[name='theme'][value='dark']"));
    expect(document.documentElement.dataset.theme).toBe("dark");
    click(byTestId("open-profile"));
    const name = $("#profile-display-name") as HTMLInputElement;
    name.value = "Me Myself";
    click($("#profile-form button[type='submit']"));
    await flush();
    expect(ipc.backend.callsTo("updateProfile")).toEqual([["Me Myself", ""]]);
    expect($("#me-name").textContent).toBe("Me Myself");
    click(menu.querySelector("button"));
    click(byTestId("log-out"));
    await flush();
    expect(app.route()).toEqual({ name: "auth", tab: "login" });
    localStorage.clear();
    document.documentElement.removeAttribute("data-theme");
  });

  it("creates a group from the home pane", async () => {
    await mountShell(ipc.backend, {
      contacts: { contacts: [contact(ana), contact(bo)], incoming: [], outgoing: [] },
      pages: { new: page("new", []) },
    });
    ipc.backend.on("createGroup", (title: string) => room("new", { title, myRole: "owner" }));
    const title = $("#room-title") as HTMLInputElement;
    click($("#room-create"));
    expect($("#room-title-error").textContent).toMatch(/required/);
    title.value = "Trip";
    click($(`#new-group-${ana.id}`));
    click($("#room-create"));
    await flush();
    expect(ipc.backend.callsTo("createGroup")).toEqual([["Trip", ["u-ana"]]]);
    expect(byTestId("conversation").dataset.roomId).toBe("new");
  });
});
