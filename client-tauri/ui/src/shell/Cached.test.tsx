import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { direct, message, page, room, user } from "../test/fixtures";
import { type FakeBackend, flush } from "../test/ipc";
import { SAVE_AFTER_MS } from "./drafts";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { mountShell, openRoom, byTestId, allByTestId } = await import("../test/shell");

const ana = user("ana");
const dm = direct(ana, { id: "dm", lastSeq: 3, lastReadSeq: 3, memberCount: 2 });
const rows = () => allByTestId("message").map((m) => m.textContent ?? "");
const input = () => byTestId("composer-input") as HTMLTextAreaElement;
const type = (text: string) => {
  input().value = text;
  input().dispatchEvent(new Event("input", { bubbles: true }));
};
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the last state shown, before the network answers", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("shows the room's cached rows, then the server's page once the catch-up arrives", async () => {
    const kept = [1, 2, 3].map((seq) => message("dm", seq, { body: `kept ${seq}` }));
    const { emit } = await mountShell(ipc.backend, {
      rooms: [dm],
      pages: { dm: page("dm", kept, { cached: true }) },
    });
    ipc.backend.on("loadMessages", () =>
      page("dm", [
        message("dm", 2, { body: "kept 2" }),
        message("dm", 3, { body: "kept 3, edited" }),
        message("dm", 4, { body: "new while away" }),
      ]),
    );
    await openRoom("dm");
    expect(rows().map((t) => t.includes("kept"))).toEqual([true, true, true]);
    expect(rows()[2]).toContain("kept 3");
    expect(ipc.backend.callsTo("loadMessages")).toEqual([]);

    emit({ type: "synced" });
    await flush();
    // The newest page, not the page after the cached one: the cache may be stale anywhere.
    expect(ipc.backend.callsTo("loadMessages")).toEqual([["dm", { kind: "latest" }, null]]);
    const after = rows();
    expect(after).toHaveLength(3);
    expect(after[0]).toContain("kept 2");
    expect(after[1]).toContain("kept 3, edited");
    expect(after[2]).toContain("new while away");

    // A later catch-up does not replace it again (it is the server's now).
    emit({ type: "synced" });
    await flush();
    expect(ipc.backend.callsTo("loadMessages")).toHaveLength(1);
  });

  it("a page that is not cached is not reloaded whole by a catch-up", async () => {
    const { emit } = await mountShell(ipc.backend, {
      rooms: [dm],
      pages: { dm: page("dm", [message("dm", 1), message("dm", 2), message("dm", 3)]) },
    });
    await openRoom("dm");
    emit({ type: "synced" });
    await flush();
    expect(ipc.backend.callsTo("loadMessages")).toEqual([]);
  });

  it("fills the composer with the last run's draft and keeps what is typed", async () => {
    const group = room("g", { lastSeq: 1 });
    await mountShell(ipc.backend, {
      rooms: [dm, group],
      pages: { dm: page("dm", [message("dm", 1)]), g: page("g", [message("g", 1)]) },
      drafts: [{ roomId: "dm", body: "half a thought" }],
    });
    await openRoom("dm");
    expect(input().value).toBe("half a thought");
    type("half a thought, finished");
    type("half a thought, finished!");
    expect(ipc.backend.callsTo("setDraft")).toEqual([]);
    await wait(SAVE_AFTER_MS + 100);
    // One write for the burst, with the last text.
    expect(ipc.backend.callsTo("setDraft")).toEqual([["dm", "half a thought, finished!"]]);

    // Switching rooms writes nothing new; sending empties the draft for the next start.
    await openRoom("g");
    expect(input().value).toBe("");
    await openRoom("dm");
    ipc.backend.on("sendMessage", () => message("dm", 2, { mine: true, body: "sent" }));
    input().dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await flush();
    await wait(SAVE_AFTER_MS + 100);
    expect(ipc.backend.callsTo("setDraft").at(-1)).toEqual(["dm", ""]);
    expect(ipc.backend.callsTo("setDraft")).toHaveLength(2);
  });

  it("does not keep a draft longer than a message may be", async () => {
    await mountShell(ipc.backend, { rooms: [dm], pages: { dm: page("dm", [message("dm", 1)]) } });
    await openRoom("dm");
    type("x".repeat(5000));
    await wait(SAVE_AFTER_MS + 100);
    expect(ipc.backend.callsTo("setDraft")).toEqual([]);
  });
});
