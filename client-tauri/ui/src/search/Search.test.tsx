import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { message, page, room } from "../test/fixtures";
import { type FakeBackend, flush } from "../test/ipc";
import { pieces } from "./api";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { mountShell, $, byTestId, allByTestId } = await import("../test/shell");

const click = (el: Element | null | undefined) => (el as HTMLElement).click();
const submit = (el: Element | null) =>
  (el as HTMLFormElement).dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));

const hit = (over: Record<string, unknown> = {}) => ({
  messageId: "m-g-40",
  roomId: "g",
  roomTitle: "Team",
  seq: 40,
  authorId: "u-ana",
  authorName: "ana",
  authorAvatarUrl: null,
  body: "the budget review is <b>tomorrow</b>",
  marks: [
    { start: 4, end: 10 },
    { start: 11, end: 17 },
  ],
  createdAt: "2026-01-01T09:00:00Z",
  ...over,
});

describe("message search", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("marks the matched words as text, pages, and opens the hit's conversation at the message", async () => {
    await mountShell(ipc.backend, {
      rooms: [room("g", { title: "Team", lastSeq: 100 })],
      pages: { g: page("g", [message("g", 100)], { hasMoreBefore: true }) },
    });
    ipc.backend.on("searchMessages", (_q: string, _filters: object, cursor: string | null) =>
      cursor
        ? {
            hits: [hit({ messageId: "m-g-2", seq: 2, body: "budget review", marks: [] })],
            nextCursor: null,
          }
        : { hits: [hit()], nextCursor: "c1" },
    );
    ipc.backend.on("loadMessages", () =>
      page("g", [message("g", 39), message("g", 40), message("g", 41)], {
        hasMoreBefore: true,
        hasMoreAfter: true,
      }),
    );
    click(byTestId("search-entry"));
    await flush();
    ($("[data-testid='search-query']") as HTMLInputElement).value = "  budget review ";
    submit(byTestId("search-query").closest("form"));
    await flush();
    expect(ipc.backend.callsTo("searchMessages")).toEqual([["budget review", {}, null]]);
    const body = byTestId("search-body");
    expect(Array.from(body.querySelectorAll("mark")).map((m) => m.textContent)).toEqual([
      "budget",
      "review",
    ]);
    // The body's markup stays text.
    expect(body.querySelector("b")).toBeNull();
    expect(body.textContent).toContain("<b>tomorrow</b>");

    click(byTestId("search-more"));
    await flush();
    expect(ipc.backend.callsTo("searchMessages").at(-1)).toEqual(["budget review", {}, "c1"]);
    expect(allByTestId("search-hit")).toHaveLength(2);

    click($("[data-testid='search-hit'][data-message-id='m-g-40']"));
    await flush();
    expect(ipc.backend.callsTo("loadMessages")).toEqual([["g", { kind: "around", seq: 40 }, null]]);
    const target = $("[data-testid='message'][data-message-id='m-g-40']");
    expect(target.dataset.focused).toBe("true");
  });

  it("sends the room, author, days and order chosen, and More asks with the same", async () => {
    const { direct, user } = await import("../test/fixtures");
    const bo = user("bo", { avatarUrl: "/api/pictures/p-bo" });
    await mountShell(ipc.backend, {
      rooms: [room("g", { title: "Team", lastSeq: 100 }), direct(bo)],
    });
    ipc.backend.on("searchMessages", (_q: string, _f: object, cursor: string | null) =>
      cursor
        ? { hits: [], nextCursor: null }
        : {
            hits: [
              hit({ authorId: bo.id, authorName: "bo", authorAvatarUrl: "/api/pictures/p-bo" }),
            ],
            nextCursor: "c2",
          },
    );
    click(byTestId("search-entry"));
    await flush();
    const room_ = byTestId("search-room") as HTMLSelectElement;
    const options = Array.from(room_.options).map((o) => o.textContent);
    expect(options).toEqual(["All conversations and channels", "bo", "Team"]);
    const author = byTestId("search-author") as HTMLSelectElement;
    expect(Array.from(author.options).map((o) => o.textContent)).toEqual(["Anyone", "Me", "bo"]);
    const choose = (el: HTMLSelectElement | HTMLInputElement, value: string) => {
      el.value = value;
      el.dispatchEvent(
        new Event(el instanceof HTMLSelectElement ? "change" : "input", { bubbles: true }),
      );
    };
    choose(room_, "g");
    choose(author, bo.id);
    choose(byTestId("search-after") as HTMLInputElement, "2026-01-01");
    choose(byTestId("search-before") as HTMLInputElement, "2026-02-01");
    choose(byTestId("search-order") as HTMLSelectElement, "best");
    ($("[data-testid='search-query']") as HTMLInputElement).value = "budget";
    submit(byTestId("search-query").closest("form"));
    await flush();
    const filters = {
      roomId: "g",
      authorId: bo.id,
      after: "2026-01-01",
      before: "2026-02-01",
      order: "best",
    };
    expect(ipc.backend.callsTo("searchMessages")).toEqual([["budget", filters, null]]);
    // The hit shows its author's picture from the server.
    const img = byTestId("search-hit").querySelector("[data-testid='avatar'] img");
    expect(img?.getAttribute("src")).toBe("http://127.0.0.1:8080/api/pictures/p-bo");

    // Changing a filter after the search does not change what More asks for.
    choose(byTestId("search-order") as HTMLSelectElement, "newest");
    click(byTestId("search-more"));
    await flush();
    expect(ipc.backend.callsTo("searchMessages").at(-1)).toEqual(["budget", filters, "c2"]);
  });

  it("refuses a span of days that ends before it starts, without asking the server", async () => {
    await mountShell(ipc.backend, { rooms: [] });
    ipc.backend.on("searchMessages", () => ({ hits: [], nextCursor: null }));
    click(byTestId("search-entry"));
    await flush();
    const after = byTestId("search-after") as HTMLInputElement;
    after.value = "2026-03-01";
    after.dispatchEvent(new Event("input", { bubbles: true }));
    const before = byTestId("search-before") as HTMLInputElement;
    before.value = "2026-03-01";
    before.dispatchEvent(new Event("input", { bubbles: true }));
    ($("[data-testid='search-query']") as HTMLInputElement).value = "budget";
    submit(byTestId("search-query").closest("form"));
    await flush();
    expect(ipc.backend.callsTo("searchMessages")).toEqual([]);
    expect(byTestId("search-problem").textContent).toBe("“From” must be a day before “Before”.");
    expect(after.getAttribute("aria-invalid")).toBe("true");
    expect(document.activeElement).toBe(after);

    // Only an end day: sent alone, and the problem is gone.
    after.value = "";
    after.dispatchEvent(new Event("input", { bubbles: true }));
    submit(byTestId("search-query").closest("form"));
    await flush();
    expect(ipc.backend.callsTo("searchMessages")).toEqual([
      ["budget", { before: "2026-03-01" }, null],
    ]);
    expect(byTestId("search-problem").textContent).toBe("");
    expect(byTestId("search").textContent).toContain(
      "Nothing found for “budget” with these filters.",
    );
  });

  it("says when nothing is found", async () => {
    await mountShell(ipc.backend, { rooms: [] });
    ipc.backend.on("searchMessages", () => ({ hits: [], nextCursor: null }));
    click(byTestId("search-entry"));
    await flush();
    ($("[data-testid='search-query']") as HTMLInputElement).value = "会议";
    submit(byTestId("search-query").closest("form"));
    await flush();
    expect(byTestId("search").textContent).toContain("Nothing found for “会议”.");
  });

  it("cuts a body at its marks, whatever their order or overreach", () => {
    expect(pieces("😀 meet me", [{ start: 3, end: 7 }])).toEqual([
      { text: "😀 ", marked: false },
      { text: "meet", marked: true },
      { text: " me", marked: false },
    ]);
    expect(pieces("ab", [{ start: 1, end: 99 }])).toEqual([
      { text: "a", marked: false },
      { text: "b", marked: true },
    ]);
  });
});
