import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { direct, message, page, room, user } from "../test/fixtures";
import { type FakeBackend, flush, IpcError } from "../test/ipc";
import type { MessageView } from "./types";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { mountShell, openRoom, $, $$, byTestId, allByTestId } = await import("../test/shell");

const ana = user("ana");
const dm = direct(ana, { id: "dm", lastSeq: 10_000, lastReadSeq: 10_000, memberCount: 2 });

function many(n: number, roomId = "dm"): MessageView[] {
  return Array.from({ length: n }, (_, i) => message(roomId, i + 1));
}

const messages = () => allByTestId("message");
const input = () => byTestId("composer-input") as HTMLTextAreaElement;
const type = (text: string) => {
  input().value = text;
  input().dispatchEvent(new Event("input", { bubbles: true }));
};
const pressEnter = () =>
  input().dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));

describe("conversation", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("renders only a window of 10,000 messages, the newest at the bottom", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", many(10_000)) } });
    await openRoom("dm");
    const list = byTestId("message-list");
    expect(Number(list.dataset.rows)).toBeGreaterThan(10_000);
    const shown = messages();
    expect(shown.length).toBeGreaterThan(5);
    expect(shown.length).toBeLessThan(150);
    expect(shown.at(-1)?.dataset.seq).toBe("10000");
    expect(shown.some((m) => m.dataset.seq === "1")).toBe(false);
  });

  it("loads the older page when scrolled to the top", async () => {
    const older = many(50).map((m) => message("dm", m.seq ?? 0, { body: `old ${m.seq}` }));
    await mountShell(ipc.backend, {
      rooms: [dm],
      pages: { dm: page("dm", many(100).slice(50), { hasMoreBefore: true }) },
    });
    ipc.backend.on("loadMessages", () => page("dm", older, { hasMoreBefore: false }));
    await openRoom("dm");
    const list = byTestId("message-list");
    list.scrollTop = 0;
    list.dispatchEvent(new Event("scroll"));
    await flush();
    expect(ipc.backend.callsTo("loadMessages")).toEqual([["dm", { kind: "before", seq: 51 }, 100]]);
    expect(Number(list.dataset.rows)).toBe(101);
    // Scrolling up again: nothing more to load.
    list.dispatchEvent(new Event("scroll"));
    await flush();
    expect(ipc.backend.callsTo("loadMessages")).toHaveLength(1);
  });

  it("groups an author's messages, separates days and marks the first unread", async () => {
    const r = room("g", { lastSeq: 4, lastReadSeq: 2, unread: 2, memberCount: 3 });
    await mountShell(ipc.backend, {
      rooms: [r],
      pages: {
        g: page("g", [
          message("g", 1, { createdAt: "2026-01-01T10:00:00Z" }),
          message("g", 2, { createdAt: "2026-01-01T10:01:00Z" }),
          message("g", 3, {
            createdAt: "2026-01-02T10:00:00Z",
            authorId: "u-bo",
            authorName: "bo",
          }),
          message("g", 4, {
            createdAt: "2026-01-02T10:01:00Z",
            authorId: "u-bo",
            authorName: "bo",
          }),
        ]),
      },
    });
    await openRoom("g");
    expect(allByTestId("day-separator")).toHaveLength(2);
    const rows = $$(".vrow");
    const order = rows.map((row) =>
      row.querySelector("[data-testid='new-divider']")
        ? "divider"
        : row.querySelector("[data-testid='day-separator']")
          ? "day"
          : `m${row.querySelector<HTMLElement>("[data-testid='message']")?.dataset.seq}`,
    );
    expect(order).toEqual(["day", "m1", "m2", "day", "divider", "m3", "m4"]);
    const grouped = messages().map((m) => m.classList.contains("grouped"));
    expect(grouped).toEqual([false, true, false, true]);
    expect(messages()[1]?.querySelector(".message-author")).toBeNull();
    expect(byTestId("jump-unread")).toBeNull(); // the divider is in view
  });

  it("jumps to the first unread message", async () => {
    const r = direct(ana, { id: "dm", lastSeq: 2000, lastReadSeq: 1000, unread: 1000 });
    await mountShell(ipc.backend, { rooms: [r], pages: { dm: page("dm", many(2000)) } });
    await openRoom("dm");
    expect(byTestId("new-divider")).toBeNull(); // far above the rows in view
    byTestId("jump-unread").click();
    await flush();
    expect(byTestId("new-divider")).not.toBeNull();
    expect(messages().some((m) => m.dataset.seq === "1001")).toBe(true);
    expect(messages().some((m) => m.dataset.seq === "2000")).toBe(false);
    expect(byTestId("jump-newest")).not.toBeNull();
  });

  it("loads the first unread when it is not loaded yet", async () => {
    const r = direct(ana, { id: "dm", lastSeq: 500, lastReadSeq: 100, unread: 400 });
    const latest = many(500).slice(400);
    await mountShell(ipc.backend, {
      rooms: [r],
      pages: { dm: page("dm", latest, { hasMoreBefore: true }) },
    });
    ipc.backend.on("loadMessages", () =>
      page("dm", many(150).slice(50), { hasMoreBefore: true, hasMoreAfter: true }),
    );
    await openRoom("dm");
    byTestId("jump-unread").click();
    await flush();
    expect(ipc.backend.callsTo("loadMessages")).toEqual([
      ["dm", { kind: "around", seq: 101 }, null],
    ]);
    expect(byTestId("new-divider")).not.toBeNull();
  });

  it("shows ticks on my messages from the room's receipts, live", async () => {
    const mine = (seq: number) =>
      message("dm", seq, { mine: true, authorId: "u-me", authorName: "me" });
    const shell = await mountShell(ipc.backend, {
      rooms: [dm],
      pages: {
        dm: page("dm", [mine(1), mine(2), mine(3)], {
          receipts: { roomId: "dm", readUpTo: 1, deliveredUpTo: 2 },
        }),
      },
    });
    await openRoom("dm");
    expect(messages().map((m) => m.dataset.tick)).toEqual(["read", "delivered", "sent"]);
    expect(messages()[0]?.querySelector("[data-testid='tick']")?.getAttribute("aria-label")).toBe(
      "Read",
    );
    shell.emit({ type: "receipts", receipts: { roomId: "dm", readUpTo: 3, deliveredUpTo: 3 } });
    expect(messages().map((m) => m.dataset.tick)).toEqual(["read", "read", "read"]);
  });

  it("has no ticks in big groups", async () => {
    const big = room("big", { memberCount: 200, lastSeq: 1 });
    await mountShell(ipc.backend, {
      rooms: [big],
      pages: { big: page("big", [message("big", 1, { mine: true })]) },
    });
    await openRoom("big");
    expect(messages()[0]?.dataset.tick).toBeUndefined();
  });

  it("sends: pending at once, then confirmed in place", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", many(3)) } });
    const pending = message("dm", 0, {
      key: "c-1",
      id: null,
      clientId: "c-1",
      seq: null,
      mine: true,
      body: "hello **there**",
      state: "pending",
    });
    ipc.backend.on("sendMessage", () => pending);
    await openRoom("dm");
    type("hello **there**");
    pressEnter();
    await flush();
    expect(ipc.backend.callsTo("sendMessage")).toEqual([["dm", "hello **there**", null, []]]);
    expect(input().value).toBe("");
    const last = () => messages().at(-1) as HTMLElement;
    expect(last().dataset).toMatchObject({ key: "c-1", state: "pending", tick: "pending" });
    expect(last().querySelector("strong")?.textContent).toBe("there");
    ipc.backend.emit("messengerEvent", {
      type: "messageSent",
      clientId: "c-1",
      message: { ...pending, id: "m-4", seq: 4, state: "sent" },
    });
    expect(last().dataset).toMatchObject({ key: "c-1", state: "sent", tick: "sent", seq: "4" });
    expect(messages().filter((m) => m.dataset.key === "c-1")).toHaveLength(1);
  });

  it("keeps a message sent when the confirmation arrives before sendMessage's answer", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", many(3)) } });
    const pending = message("dm", 0, {
      key: "c-2",
      id: null,
      clientId: "c-2",
      seq: null,
      mine: true,
      body: "quick",
      state: "pending",
    });
    // The event and the command's answer travel separately over IPC: here the event wins.
    ipc.backend.on("sendMessage", () => {
      ipc.backend.emit("messengerEvent", {
        type: "messageSent",
        clientId: "c-2",
        message: { ...pending, id: "m-4", seq: 4, state: "sent" },
      });
      return pending;
    });
    await openRoom("dm");
    type("quick");
    pressEnter();
    await flush();
    const mine = messages().filter((m) => m.dataset.key === "c-2");
    expect(mine).toHaveLength(1);
    expect(mine[0]?.dataset).toMatchObject({ state: "sent", seq: "4" });
  });

  it("shows a failed message with retry, which replaces it with a new pending one", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", many(1)) } });
    await openRoom("dm");
    const failed = message("dm", 0, {
      key: "c-9",
      id: null,
      clientId: "c-9",
      seq: null,
      mine: true,
      body: "nope",
      state: "failed",
      error: "You are sending too fast",
    });
    ipc.backend.emit("messengerEvent", { type: "messageFailed", message: failed });
    const row = () => $(`[data-key='c-9']`);
    expect(row().dataset.state).toBe("failed");
    expect(row().textContent).toContain("You are sending too fast");
    ipc.backend.on("retryMessage", () => ({
      ...failed,
      key: "c-10",
      clientId: "c-10",
      state: "pending",
      error: null,
    }));
    (row().querySelector("[data-testid='retry-message']") as HTMLButtonElement).click();
    await flush();
    expect(ipc.backend.callsTo("retryMessage")).toEqual([["c-9"]]);
    expect(row()).toBeNull();
    expect($(`[data-key='c-10']`).dataset.state).toBe("pending");
  });

  it("keeps a draft per room", async () => {
    const other = room("g", { lastSeq: 1 });
    await mountShell(ipc.backend, {
      rooms: [dm, other],
      pages: { dm: page("dm", many(1)), g: page("g", [message("g", 1)]) },
    });
    await openRoom("dm");
    type("half a thought");
    await openRoom("g");
    expect(input().value).toBe("");
    type("for the group");
    await openRoom("dm");
    expect(input().value).toBe("half a thought");
    await openRoom("g");
    expect(input().value).toBe("for the group");
  });

  it("announces new messages from others to screen readers", async () => {
    const { emit } = await mountShell(ipc.backend, {
      rooms: [dm],
      pages: { dm: page("dm", many(2)) },
    });
    await openRoom("dm");
    const live = byTestId("new-message-announcement");
    expect(live.textContent).toBe("");
    emit({ type: "messageCreated", message: message("dm", 3, { body: "**hi** there" }) });
    expect(live.textContent).toBe("ana: hi there");
    emit({ type: "messageCreated", message: message("dm", 4, { mine: true, body: "mine" }) });
    expect(live.textContent).toBe("ana: hi there");
    expect(messages().at(-1)?.dataset.seq).toBe("4");
  });

  it("mutes the room's notifications", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", many(1)) } });
    ipc.backend.on("setRoomMuted", (_id: string, muted: boolean) => ({ ...dm, muted }));
    await openRoom("dm");
    byTestId("room-mute").click();
    await flush();
    expect(ipc.backend.callsTo("setRoomMuted")).toEqual([["dm", true]]);
    expect(byTestId("room-mute").getAttribute("aria-pressed")).toBe("true");
    expect(byTestId("room-mute").getAttribute("aria-label")).toBe("Unmute this room");
  });

  it("moves between messages with the arrow keys (Tab lands on the newest)", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", many(5)) } });
    await openRoom("dm");
    const list = byTestId("message-list");
    expect(list.tabIndex).toBe(0);
    expect(messages().every((m) => m.tabIndex === -1)).toBe(true);
    list.focus();
    expect(document.activeElement).toBe(messages().at(-1));
    const key = (k: string) =>
      document.activeElement?.dispatchEvent(
        new KeyboardEvent("keydown", { key: k, bubbles: true }),
      );
    key("ArrowUp");
    key("ArrowUp");
    expect((document.activeElement as HTMLElement).dataset.seq).toBe("3");
    key("ArrowDown");
    expect((document.activeElement as HTMLElement).dataset.seq).toBe("4");
    key("Escape");
    expect(document.activeElement).toBe(input());
  });

  it("shows who is typing", async () => {
    const { emit } = await mountShell(ipc.backend, {
      rooms: [dm],
      pages: { dm: page("dm", many(1)) },
    });
    await openRoom("dm");
    emit({ type: "typing", roomId: "dm", typing: [ana] });
    expect(byTestId("typing-line").textContent).toBe("ana is typing…");
    emit({ type: "typing", roomId: "dm", typing: [ana, user("bo")] });
    expect(byTestId("typing-line").textContent).toBe("ana and bo are typing…");
    emit({ type: "typing", roomId: "dm", typing: [] });
    expect(byTestId("typing-line").textContent).toBe("");
  });

  it("reports typing, but not on every keystroke", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", many(1)) } });
    await openRoom("dm");
    type("h");
    type("he");
    type("hel");
    await flush();
    expect(ipc.backend.callsTo("typing")).toEqual([["dm"]]);
  });

  it("edits and deletes my own messages, and reacts", async () => {
    const mine = message("dm", 1, { mine: true, body: "typo" });
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", [mine]) } });
    ipc.backend.on("editMessage", (_r: string, _id: string, body: string) => ({
      ...mine,
      body,
      editedAt: "2026-01-01T10:00:00Z",
    }));
    ipc.backend.on("deleteMessage", () => ({ ...mine, body: "", deleted: true }));
    ipc.backend.on("react", (_r: string, _id: string, emoji: string) => ({
      ...mine,
      reactions: [{ emoji, count: 1, mine: true, userIds: ["u-me"] }],
    }));
    await openRoom("dm");
    const row = () => messages()[0] as HTMLElement;
    const button = (label: string) =>
      Array.from(row().querySelectorAll("button")).find(
        (b) => b.textContent === label,
      ) as HTMLButtonElement;
    button("Edit").click();
    const editor = row().querySelector("textarea") as HTMLTextAreaElement;
    editor.value = "fixed";
    button("Save").click();
    await flush();
    expect(ipc.backend.callsTo("editMessage")).toEqual([["dm", "m-dm-1", "fixed"]]);
    expect(row().querySelector("[data-testid='message-body']")?.textContent).toContain("fixed");
    expect(row().textContent).toContain("(edited)");
    button("React").click();
    (
      Array.from(row().querySelectorAll("button")).find(
        (b) => b.getAttribute("aria-label") === "React with 👍",
      ) as HTMLButtonElement
    ).click();
    await flush();
    expect(ipc.backend.callsTo("react")).toEqual([["dm", "m-dm-1", "👍"]]);
    expect(row().querySelector("[data-testid='reaction']")?.getAttribute("aria-pressed")).toBe(
      "true",
    );
    button("Delete").click();
    button("Delete").click();
    await flush();
    expect(ipc.backend.callsTo("deleteMessage")).toEqual([["dm", "m-dm-1"]]);
    expect(row().textContent).toContain("This message was deleted");
  });

  it("replies with a quote", async () => {
    const first = message("dm", 1, { body: "question?" });
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", [first]) } });
    ipc.backend.on("sendMessage", (_r: string, body: string, replyTo: string | null) =>
      message("dm", 0, {
        key: "c-2",
        id: null,
        seq: null,
        clientId: "c-2",
        mine: true,
        body,
        replyTo,
        state: "pending",
      }),
    );
    await openRoom("dm");
    (
      Array.from(messages()[0]?.querySelectorAll("button") ?? []).find(
        (b) => b.textContent === "Reply",
      ) as HTMLButtonElement
    ).click();
    expect(byTestId("composer-reply").textContent).toContain("question?");
    type("answer");
    pressEnter();
    await flush();
    expect(ipc.backend.callsTo("sendMessage")).toEqual([["dm", "answer", "m-dm-1", []]]);
    expect($("[data-key='c-2'] [data-testid='message-quote']").textContent).toContain("question?");
    expect(byTestId("composer-reply")).toBeNull();
  });

  it("offers @mentions of the group's members", async () => {
    const g = room("g", { lastSeq: 0 });
    await mountShell(ipc.backend, { rooms: [g], pages: { g: page("g", []) } });
    ipc.backend.on("roomMembers", () => [
      { user: user("anabel"), role: "member", joinedAt: "2026-01-01T00:00:00Z" },
      { user: user("bo"), role: "admin", joinedAt: "2026-01-01T00:00:00Z" },
      { user: { ...user("me"), id: "u-me" }, role: "owner", joinedAt: "2026-01-01T00:00:00Z" },
    ]);
    await openRoom("g");
    await flush();
    type("hi @an");
    input().setSelectionRange(6, 6);
    input().dispatchEvent(new KeyboardEvent("keyup", { key: "n", bubbles: true }));
    const options = allByTestId("mention-option");
    expect(options.map((o) => o.textContent)).toEqual(["anabel @anabel"]);
    input().dispatchEvent(new KeyboardEvent("keydown", { key: "Tab", bubbles: true }));
    expect(input().value).toBe("hi @anabel ");
    expect(allByTestId("mention-option")).toHaveLength(0);
  });

  it("marks the room read up to the newest message in view", async () => {
    vi.spyOn(document, "hasFocus").mockReturnValue(true);
    const unread = direct(ana, { id: "dm", lastSeq: 5, lastReadSeq: 3, unread: 2 });
    await mountShell(ipc.backend, { rooms: [unread], pages: { dm: page("dm", many(5)) } });
    await openRoom("dm");
    await flush();
    expect(ipc.backend.callsTo("markRead")).toEqual([["dm", 5]]);
    expect($("[data-testid='rail-room'][data-room-id='dm']").dataset.unread).toBe("0");
  });

  it("shows an error the server gives when sending fails outright", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", many(1)) } });
    document.body.insertAdjacentHTML("beforeend", '<div id="toasts"></div>');
    ipc.backend.on("sendMessage", () => {
      throw new IpcError({ kind: "invalid", message: "Message is too long", fields: {} });
    });
    await openRoom("dm");
    type("x");
    pressEnter();
    await flush();
    expect(document.getElementById("toasts")?.textContent).toContain("Message is too long");
  });
});
