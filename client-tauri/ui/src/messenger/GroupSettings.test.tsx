import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { contact, message, page, room, user } from "../test/fixtures";
import { type FakeBackend, flush } from "../test/ipc";
import type { MemberView } from "./types";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});
vi.mock("@tauri-apps/plugin-clipboard-manager", () => ({
  writeText: async (text: string) => {
    copied.push(text);
  },
}));
const copied = vi.hoisted(() => [] as string[]);

const { mountShell, openRoom, $, byTestId, allByTestId } = await import("../test/shell");

const ana = user("ana");
const bo = user("bo");
const me = { ...user("me"), id: "u-me" };
const member = (u: typeof ana, role: MemberView["role"]): MemberView => ({
  user: u,
  role,
  joinedAt: "2026-01-01T00:00:00Z",
});

describe("group settings", () => {
  beforeEach(() => {
    ipc.backend.reset();
    document.body.insertAdjacentHTML("beforeend", '<div id="toasts"></div>');
  });
  afterEach(() => {
    cleanup();
    document.getElementById("toasts")?.remove();
  });

  const open = async (role: MemberView["role"]) => {
    const g = room("g", { title: "Trip", myRole: role, memberCount: 2 });
    await mountShell(ipc.backend, {
      rooms: [g],
      contacts: { contacts: [contact(ana), contact(bo)], incoming: [], outgoing: [] },
      pages: { g: page("g", [message("g", 1)]) },
    });
    ipc.backend.on("roomMembers", () => [member(me, role), member(ana, "member")]);
    await openRoom("g");
    byTestId("group-settings-open").click();
    await flush();
  };

  it("lists members with roles; admins rename, add a contact and remove a member", async () => {
    await open("owner");
    expect(
      allByTestId("member").map((m) => [m.dataset.userId, m.querySelector(".badge")?.textContent]),
    ).toEqual([
      ["u-me", "Owner"],
      ["u-ana", "Member"],
    ]);
    ipc.backend.on("renameGroup", (_id: string, title: string) =>
      room("g", { title, myRole: "owner" }),
    );
    const title = $("#group-title") as HTMLInputElement;
    title.value = "Trip 2026";
    (
      byTestId("group-settings").querySelector("button[type='submit']") as HTMLButtonElement
    ).click();
    await flush();
    expect(ipc.backend.callsTo("renameGroup")).toEqual([["g", "Trip 2026"]]);
    expect(byTestId("conversation-title").textContent).toBe("Trip 2026");

    // Only contacts who are not members yet can be added.
    const add = $("#add-member") as HTMLSelectElement;
    expect(Array.from(add.options).map((o) => o.value)).toEqual(["", "u-bo"]);
    ipc.backend.on("addMember", () => [
      member(me, "owner"),
      member(ana, "member"),
      member(bo, "member"),
    ]);
    add.value = "u-bo";
    add.dispatchEvent(new Event("change", { bubbles: true }));
    (add.form?.querySelector("button[type='submit']") as HTMLButtonElement | null)?.click();
    await flush();
    expect(ipc.backend.callsTo("addMember")).toEqual([["g", "u-bo"]]);
    expect(allByTestId("member")).toHaveLength(3);

    ipc.backend.on("removeMember", () => [member(me, "owner"), member(bo, "member")]);
    ($("[data-testid='member'][data-user-id='u-ana'] button") as HTMLButtonElement).click();
    await flush();
    expect(ipc.backend.callsTo("removeMember")).toEqual([["g", "u-ana"]]);
    expect(allByTestId("member").map((m) => m.dataset.userId)).toEqual(["u-me", "u-bo"]);
  });

  it("does not offer admin actions to members", async () => {
    await open("member");
    expect(($("#group-title") as HTMLInputElement).disabled).toBe(true);
    expect($("#add-member")).toBeNull();
    expect($("[data-testid='member'] button")).toBeNull();
  });

  it("copies an invite link and leaves after a confirmation", async () => {
    await open("member");
    ipc.backend.on("createInvite", () => ({
      url: "https://chat.example/invite/abc",
      token: "abc",
      expiresAt: "2026-01-08T00:00:00Z",
    }));
    ($(".room-invite") as HTMLButtonElement).click();
    await flush();
    expect(copied).toEqual(["https://chat.example/invite/abc"]);
    ipc.backend.on("leaveRoom", () => null);
    ($(".room-leave") as HTMLButtonElement).click();
    expect(ipc.backend.callsTo("leaveRoom")).toEqual([]);
    ($(".room-leave-confirm") as HTMLButtonElement).click();
    await flush();
    expect(ipc.backend.callsTo("leaveRoom")).toEqual([["g"]]);
    expect(byTestId("conversation")).toBeNull();
    expect($("#room-title")).not.toBeNull(); // back on the home pane
  });

  it("shows a missed call in the timeline", async () => {
    const g = room("dm", { kind: "direct", title: "ana", lastSeq: 1 });
    await mountShell(ipc.backend, {
      rooms: [g],
      pages: {
        dm: page("dm", [message("dm", 1, { kind: "missed_call", body: "Missed video call" })]),
      },
    });
    await openRoom("dm");
    expect(byTestId("missed-call").textContent).toBe("Missed video call");
  });
});
