import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { channel, channelRoom, community, page, room, user } from "../test/fixtures";
import { type FakeBackend, flush, IpcError } from "../test/ipc";
import { byCategory } from "./api";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { mountShell, $, byTestId, allByTestId } = await import("../test/shell");

const click = (el: Element | null | undefined) => (el as HTMLElement).click();
const type = (el: Element | null, value: string) => {
  const input = el as HTMLInputElement;
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
};
const submit = (el: Element | null) =>
  (el as HTMLFormElement).dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));

const general = channel("ch-general", { communityId: "c-rust", name: "general", position: 0 });
const books = channel("ch-books", {
  communityId: "c-rust",
  name: "books",
  category: "Reading",
  position: 1,
});
const rust = community("c-rust", { name: "Rust Readers", channels: [general, books] });
const rooms = [
  room("g-1", { title: "A group" }),
  channelRoom("ch-general", { title: "general", unread: 2 }),
  channelRoom("ch-books", { title: "books", unread: 1, mentions: 1 }),
];

describe("communities in the rail", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("shows an icon per community with its channels' unread, and channels only in their list", async () => {
    await mountShell(ipc.backend, { rooms, communities: [rust] });
    const icon = $("[data-testid='space-community'][data-community-id='c-rust']");
    expect(icon.dataset.unread).toBe("3");
    expect(icon.getAttribute("aria-label")).toBe("Rust Readers, 3 unread, 1 mentioning you");
    // The direct-and-group rail leaves channels out.
    expect(allByTestId("rail-room").map((r) => r.dataset.roomId)).toEqual(["g-1"]);

    click(icon);
    await flush();
    expect(byTestId("community-name").textContent).toBe("Rust Readers");
    const rows = allByTestId("channel-row");
    expect(rows.map((r) => r.dataset.roomId)).toEqual(["ch-general", "ch-books"]);
    expect(allByTestId("channel-category").map((h) => h.textContent)).toEqual(["Reading"]);
    expect(rows[0]?.querySelector("[data-testid='channel-unread']")?.textContent).toBe("2");

    // Home brings the direct messages and groups back.
    click(byTestId("space-home"));
    await flush();
    expect(byTestId("channel-list")).toBeNull();
    expect(allByTestId("rail-room")).toHaveLength(1);
  });

  it("opens a channel as a conversation with a # title and no group settings", async () => {
    await mountShell(ipc.backend, {
      rooms,
      communities: [rust],
      pages: { "ch-general": page("ch-general", []) },
    });
    click($("[data-testid='space-community']"));
    await flush();
    click($("[data-testid='channel-row'][data-room-id='ch-general'] button"));
    await flush();
    expect(byTestId("conversation-title").textContent).toContain("# general");
    expect(byTestId("group-settings-open")).toBeNull();
    expect(ipc.backend.callsTo("roomMembers")).toHaveLength(0);
  });

  it("follows live events: a new community appears, a kick takes it away", async () => {
    const { emit } = await mountShell(ipc.backend, { rooms });
    expect(allByTestId("space-community")).toHaveLength(0);
    emit({ type: "communityUpserted", community: rust });
    await flush();
    expect(allByTestId("space-community")).toHaveLength(1);
    click($("[data-testid='space-community']"));
    await flush();
    expect(byTestId("channel-list")).not.toBeNull();

    emit({ type: "communityRemoved", communityId: "c-rust", reason: "kicked" });
    await flush();
    expect(allByTestId("space-community")).toHaveLength(0);
    expect(byTestId("channel-list")).toBeNull();
    expect(document.body.textContent).toContain("You are no longer in Rust Readers (kicked)");
  });

  it("leaves a community from its channel list", async () => {
    await mountShell(ipc.backend, { rooms, communities: [rust] });
    ipc.backend.on("leaveCommunity", () => null);
    click($("[data-testid='space-community']"));
    await flush();
    click(byTestId("community-leave"));
    await flush();
    expect(ipc.backend.callsTo("leaveCommunity")).toEqual([["c-rust"]]);
    expect(allByTestId("space-community")).toHaveLength(0);
  });
});

describe("discover", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("searches public communities, pages, and joins one into its first channel", async () => {
    await mountShell(ipc.backend, { rooms, pages: { "ch-general": page("ch-general", []) } });
    const found = community("c-rust", {
      name: "Rust Readers",
      description: "We read the book",
      myRole: null,
      memberCount: 12,
    });
    ipc.backend.on("discoverCommunities", (q: string | null, cursor: string | null) =>
      cursor
        ? {
            communities: [community("c-2", { name: "Second page", myRole: null })],
            nextCursor: null,
          }
        : { communities: q === "book" ? [found] : [], nextCursor: q === "book" ? "next" : null },
    );
    ipc.backend.on("joinCommunity", () => rust);
    click(byTestId("space-discover"));
    await flush();
    expect(byTestId("discover")).not.toBeNull();
    expect(document.body.textContent).toContain("No public communities yet.");

    type(byTestId("discover-query"), "book");
    submit(byTestId("discover-query").closest("form"));
    await flush();
    expect(ipc.backend.callsTo("discoverCommunities").at(-1)).toEqual(["book", null]);
    expect(allByTestId("discover-result")).toHaveLength(1);
    expect(byTestId("discover-result").textContent).toContain("12 members");

    click(byTestId("discover-more"));
    await flush();
    expect(ipc.backend.callsTo("discoverCommunities").at(-1)).toEqual(["book", "next"]);
    expect(allByTestId("discover-result")).toHaveLength(2);

    click(
      $(
        "[data-testid='discover-result'][data-community-id='c-rust'] [data-testid='discover-join']",
      ),
    );
    await flush();
    expect(ipc.backend.callsTo("joinCommunity")).toEqual([["c-rust"]]);
    expect(byTestId("community-name").textContent).toBe("Rust Readers");
    expect(byTestId("conversation-title").textContent).toContain("# general");
  });

  it("creates a community after checking its name", async () => {
    await mountShell(ipc.backend, { rooms, pages: { "ch-general": page("ch-general", []) } });
    ipc.backend.on("discoverCommunities", () => ({ communities: [], nextCursor: null }));
    ipc.backend.on("createCommunity", () => ({ ...rust, myRole: "owner" }));
    click(byTestId("space-discover"));
    await flush();
    submit(byTestId("community-create"));
    await flush();
    expect(document.body.textContent).toContain("A name is 1-100 characters.");
    expect(ipc.backend.callsTo("createCommunity")).toHaveLength(0);

    type(byTestId("community-create-name"), "  Rust Readers ");
    ($("[data-testid='community-create-visibility']") as HTMLSelectElement).value = "private";
    submit(byTestId("community-create"));
    await flush();
    expect(ipc.backend.callsTo("createCommunity")).toEqual([["Rust Readers", null, "private"]]);
    expect(allByTestId("space-community")).toHaveLength(1);
  });

  it("shows the server's refusal of a ban when joining", async () => {
    const { app } = await mountShell(ipc.backend, { rooms });
    const fail = vi.spyOn(app, "fail");
    ipc.backend.on("discoverCommunities", () => ({
      communities: [community("c-x", { name: "Closed", myRole: null })],
      nextCursor: null,
    }));
    ipc.backend.on("joinCommunity", () => {
      throw new IpcError({ kind: "forbidden", message: "you are banned from this community" });
    });
    click(byTestId("space-discover"));
    await flush();
    click(byTestId("discover-join"));
    await flush();
    expect(fail).toHaveBeenCalled();
    expect(allByTestId("space-community")).toHaveLength(0);
  });
});

describe("community settings", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  const ana = user("ana");
  const bo = user("bo");
  const owned = { ...rust, myRole: "owner" as const };
  const members = {
    members: [
      {
        user: user("me", { id: "u-me" }),
        role: "owner",
        joinedAt: "2026-01-01T00:00:00Z",
        presence: "online",
      },
      { user: ana, role: "admin", joinedAt: "2026-01-01T00:00:00Z", presence: "idle" },
      { user: bo, role: "member", joinedAt: "2026-01-01T00:00:00Z", presence: "offline" },
    ],
    nextCursor: null,
  };

  const openSettings = async () => {
    click($("[data-testid='space-community']"));
    await flush();
    click(byTestId("community-settings-open"));
    await flush();
  };

  it("lists members with roles and presence; the owner changes roles and removes people", async () => {
    const { emit } = await mountShell(ipc.backend, { rooms, communities: [owned] });
    ipc.backend.on("communityMembers", () => members);
    ipc.backend.on("setCommunityRole", () => null);
    ipc.backend.on("kickCommunityMember", () => null);
    ipc.backend.on("banCommunityMember", () => ({ user: bo, reason: null, createdAt: "" }));
    await openSettings();
    const rows = allByTestId("community-member");
    expect(rows.map((r) => r.dataset.role)).toEqual(["owner", "admin", "member"]);
    expect(
      rows[1]?.querySelector("[data-testid='presence-dot']")?.getAttribute("data-presence"),
    ).toBe("idle");
    // Nobody manages themselves.
    expect(rows[0]?.querySelector("[data-testid='member-role-select']")).toBeNull();

    const select = rows[2]?.querySelector("select") as HTMLSelectElement;
    select.value = "admin";
    select.dispatchEvent(new Event("change", { bubbles: true }));
    await flush();
    expect(ipc.backend.callsTo("setCommunityRole")).toEqual([["c-rust", bo.id, "admin"]]);

    // Handing over asks first.
    select.value = "owner";
    select.dispatchEvent(new Event("change", { bubbles: true }));
    await flush();
    expect(ipc.backend.callsTo("setCommunityRole")).toHaveLength(1);
    click(byTestId("handover-confirm").querySelector("button.primary"));
    await flush();
    expect(ipc.backend.callsTo("setCommunityRole").at(-1)).toEqual(["c-rust", bo.id, "owner"]);

    click(rows[2]?.querySelector("[data-testid='member-kick']"));
    await flush();
    expect(ipc.backend.callsTo("kickCommunityMember")).toEqual([["c-rust", bo.id]]);

    // A member event reloads the list.
    const before = ipc.backend.callsTo("communityMembers").length;
    emit({ type: "communityMemberLeft", communityId: "c-rust", userId: bo.id, reason: "kicked" });
    await flush();
    expect(ipc.backend.callsTo("communityMembers").length).toBe(before + 1);
  });

  it("shows a plain member no moderation and no admin tabs", async () => {
    await mountShell(ipc.backend, { rooms, communities: [rust] });
    ipc.backend.on("communityMembers", () => members);
    await openSettings();
    expect(allByTestId("community-member")).toHaveLength(3);
    expect(byTestId("member-kick")).toBeNull();
    expect(byTestId("member-role-select")).toBeNull();
    expect(byTestId("community-tab-channels")).toBeNull();
    expect(byTestId("community-tab-bans")).toBeNull();
  });

  it("lets admins create, rename, reorder and delete channels", async () => {
    await mountShell(ipc.backend, { rooms, communities: [owned] });
    ipc.backend.on("communityMembers", () => members);
    ipc.backend.on("createChannel", () => channel("ch-new"));
    ipc.backend.on("updateChannel", () => general);
    ipc.backend.on("reorderChannels", () => []);
    ipc.backend.on("deleteChannel", () => null);
    await openSettings();
    click(byTestId("community-tab-channels"));
    await flush();
    expect(allByTestId("channel-admin-row").map((r) => r.dataset.roomId)).toEqual([
      "ch-general",
      "ch-books",
    ]);

    type(byTestId("channel-create-name"), "news");
    submit(byTestId("channel-create"));
    await flush();
    expect(ipc.backend.callsTo("createChannel")).toEqual([
      ["c-rust", { name: "news", category: null, topic: null, announcement: false }],
    ]);

    click($("[aria-label='Move general down']"));
    await flush();
    expect(ipc.backend.callsTo("reorderChannels")).toEqual([
      [
        "c-rust",
        [
          { channelId: "ch-books", category: null },
          { channelId: "ch-general", category: "Reading" },
        ],
      ],
    ]);

    click(byTestId("channel-edit"));
    await flush();
    type(byTestId("channel-edit-name"), "lobby");
    submit(byTestId("channel-editor"));
    await flush();
    expect(ipc.backend.callsTo("updateChannel")[0]?.slice(0, 2)).toEqual(["c-rust", "ch-general"]);
    expect(ipc.backend.callsTo("updateChannel")[0]?.[2]).toMatchObject({ name: "lobby" });

    click(byTestId("channel-delete"));
    await flush();
    expect(ipc.backend.callsTo("deleteChannel")).toEqual([["c-rust", "ch-general"]]);
  });

  it("edits the about fields, bans and invites", async () => {
    await mountShell(ipc.backend, { rooms, communities: [owned] });
    ipc.backend.on("communityMembers", () => members);
    ipc.backend.on("updateCommunity", () => ({ ...owned, name: "Rustaceans" }));
    ipc.backend.on("communityBans", () => [{ user: bo, reason: "spam", createdAt: "" }]);
    ipc.backend.on("unbanCommunityMember", () => null);
    ipc.backend.on("communityInvites", () => []);
    ipc.backend.on("createCommunityInvite", () => ({
      token: "tok-123",
      invite: {
        id: "i-1",
        createdAt: "",
        expiresAt: "2026-02-01T00:00:00Z",
        maxUses: null,
        uses: 0,
      },
    }));
    await openSettings();
    click(byTestId("community-tab-about"));
    await flush();
    type(byTestId("community-edit-name"), "Rustaceans");
    ($("[data-testid='community-edit-visibility']") as HTMLSelectElement).value = "private";
    submit(byTestId("community-about"));
    await flush();
    expect(ipc.backend.callsTo("updateCommunity")).toEqual([
      ["c-rust", "Rustaceans", null, "private"],
    ]);
    expect(byTestId("community-name").textContent).toBe("Rustaceans");

    click(byTestId("community-tab-bans"));
    await flush();
    expect(byTestId("community-ban").textContent).toContain("spam");
    click(byTestId("community-unban"));
    await flush();
    expect(ipc.backend.callsTo("unbanCommunityMember")).toEqual([["c-rust", bo.id]]);

    click(byTestId("community-tab-invites"));
    await flush();
    click(byTestId("invite-create"));
    await flush();
    expect(byTestId("invite-token").textContent).toBe("tok-123");
  });
});

describe("byCategory", () => {
  it("puts uncategorised channels first, then categories in channel order", () => {
    const groups = byCategory([
      channel("b", { category: "B", position: 2 }),
      channel("a", { category: "A", position: 1 }),
      channel("x", { position: 3 }),
      channel("a2", { category: "A", position: 4 }),
    ]);
    expect(groups.map((g) => [g.category, g.channels.map((c) => c.id)])).toEqual([
      [null, ["x"]],
      ["A", ["a", "a2"]],
      ["B", ["b"]],
    ]);
  });
});
