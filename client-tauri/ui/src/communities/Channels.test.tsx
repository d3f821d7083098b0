import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { channel, channelRoom, community, message, page, user } from "../test/fixtures";
import { type FakeBackend, flush } from "../test/ipc";
import type { CommunityView } from "./api";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { mountShell, $, byTestId, allByTestId } = await import("../test/shell");

const click = (el: Element | null | undefined) => (el as HTMLElement).click();
const input = () => byTestId("composer-input") as HTMLTextAreaElement;
const typeAt = (text: string) => {
  input().value = text;
  input().setSelectionRange(text.length, text.length);
  input().dispatchEvent(new Event("input", { bubbles: true }));
  input().dispatchEvent(new KeyboardEvent("keyup", { key: "x", bubbles: true }));
};

const general = channel("ch-general", { communityId: "c-rust", name: "general", position: 0 });
const news = channel("ch-news", {
  communityId: "c-rust",
  name: "news",
  position: 1,
  announcement: true,
});
const rust = (over: Partial<CommunityView> = {}) =>
  community("c-rust", { name: "Rust Readers", channels: [general, news], ...over });
const rooms = [
  channelRoom("ch-general", { title: "general" }),
  channelRoom("ch-news", { title: "news" }),
];
const pages = {
  "ch-general": page("ch-general", [message("ch-general", 1)]),
  "ch-news": page("ch-news", [message("ch-news", 1)]),
};
const ana = user("ana", { avatarUrl: "/api/pictures/p-ana" });
const annika = user("annika");
const joined = "2026-01-01T00:00:00Z";
const members = {
  members: [
    { user: user("me", { id: "u-me" }), role: "member", joinedAt: joined, presence: "online" },
    { user: ana, role: "admin", joinedAt: joined, presence: "offline" },
    { user: annika, role: "member", joinedAt: joined, presence: "online" },
  ],
  nextCursor: null,
};

async function openChannel(id: string) {
  click($("[data-testid='space-community']"));
  await flush();
  click($(`[data-testid='channel-row'][data-room-id='${id}'] button`));
  await flush();
}

describe("community channels", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("shows a member of an announcement channel a read-only note instead of the composer", async () => {
    await mountShell(ipc.backend, { rooms, pages, communities: [rust()] });
    ipc.backend.on("communityMembers", () => members);
    await openChannel("ch-news");
    expect(byTestId("composer-input")).toBeNull();
    const note = byTestId("composer-readonly");
    expect(note.textContent).toContain("only the admins of Rust Readers write here");
    expect(note.getAttribute("role")).toBe("note");
    // The timeline is still there to read.
    expect(allByTestId("message")).toHaveLength(1);

    // An ordinary channel of the same community has its composer.
    await openChannel("ch-general");
    expect(byTestId("composer-readonly")).toBeNull();
    expect(byTestId("composer-input")).not.toBeNull();
  });

  it("gives an admin the composer in an announcement channel, and back the note when demoted", async () => {
    const { emit } = await mountShell(ipc.backend, {
      rooms,
      pages,
      communities: [rust({ myRole: "admin" })],
    });
    ipc.backend.on("communityMembers", () => members);
    await openChannel("ch-news");
    expect(byTestId("composer-readonly")).toBeNull();
    expect(byTestId("composer-input")).not.toBeNull();

    emit({ type: "communityUpserted", community: rust({ myRole: "member" }) });
    await flush();
    expect(byTestId("composer-input")).toBeNull();
    expect(byTestId("composer-readonly")).not.toBeNull();
  });

  it("offers the community's members after @, and @everyone to admins only", async () => {
    const { emit } = await mountShell(ipc.backend, { rooms, pages, communities: [rust()] });
    ipc.backend.on("communityMembers", () => members);
    await openChannel("ch-general");
    expect(ipc.backend.callsTo("communityMembers")).toEqual([["c-rust", null]]);
    typeAt("hi @an");
    expect(allByTestId("mention-option").map((o) => o.textContent)).toEqual([
      "ana @ana",
      "annika @annika",
    ]);
    // A plain member is never offered @everyone, and never themselves.
    typeAt("hi @e");
    expect(allByTestId("mention-option")).toHaveLength(0);
    typeAt("hi @m");
    expect(allByTestId("mention-option")).toHaveLength(0);

    // Made an admin: @everyone is offered, and picking it writes @everyone.
    emit({ type: "communityUpserted", community: rust({ myRole: "admin" }) });
    await flush();
    typeAt("hi @ev");
    const options = allByTestId("mention-option");
    expect(options.map((o) => o.textContent)).toEqual(["Everyone in this community @everyone"]);
    options[0]?.dispatchEvent(new MouseEvent("mousedown", { bubbles: true }));
    expect(input().value).toBe("hi @everyone ");
  });
});

describe("community members", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("lists members with their avatars and follows their presence live", async () => {
    const { emit } = await mountShell(ipc.backend, { rooms, pages, communities: [rust()] });
    ipc.backend.on("communityMembers", () => members);
    click($("[data-testid='space-community']"));
    await flush();
    click(byTestId("community-settings-open"));
    await flush();
    const row = (id: string) => $(`[data-testid='community-member'][data-user-id='${id}']`);
    expect(row(ana.id).querySelector("img")?.getAttribute("src")).toBe(
      "http://127.0.0.1:8080/api/pictures/p-ana",
    );
    expect(row(annika.id).querySelector("img")).toBeNull();
    expect(row(annika.id).querySelector("[data-testid='avatar']")?.textContent).toContain("A");
    expect(row(ana.id).dataset.presence).toBe("offline");
    expect(byTestId("members-count").textContent).toContain("2 online");

    // Ana comes online, Annika goes idle, then offline: the rows follow at once, with
    // no reload of the list.
    const loads = ipc.backend.callsTo("communityMembers").length;
    emit({ type: "presence", userId: ana.id, status: "online" });
    emit({ type: "presence", userId: annika.id, status: "idle" });
    await flush();
    expect(row(ana.id).dataset.presence).toBe("online");
    expect(
      row(ana.id).querySelector("[data-testid='presence-dot']")?.getAttribute("data-presence"),
    ).toBe("online");
    expect(row(annika.id).dataset.presence).toBe("idle");
    expect(byTestId("members-count").textContent).toContain("3 online");
    emit({ type: "presence", userId: annika.id, status: "offline" });
    await flush();
    expect(row(annika.id).dataset.presence).toBe("offline");
    expect(byTestId("members-count").textContent).toContain("2 online");
    expect(ipc.backend.callsTo("communityMembers")).toHaveLength(loads);
  });
});
