import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { contact, direct, ME, message, page, request, user } from "../test/fixtures";
import { type FakeBackend, flush } from "../test/ipc";
import { initials, pictureSrc } from "./Avatar";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { mountShell, openRoom, $, byTestId, allByTestId } = await import("../test/shell");

const SERVER = "http://127.0.0.1:8080";
const avatarIn = (el: Element | null | undefined) =>
  el?.querySelector<HTMLElement>("[data-testid='avatar']") ?? null;
const srcIn = (el: Element | null | undefined) =>
  avatarIn(el)?.querySelector("img")?.getAttribute("src") ?? null;

describe("initials and picture addresses", () => {
  it("takes the first letter of the first two words, whole characters, upper-cased", () => {
    expect(initials("Ana Bell")).toBe("AB");
    expect(initials("ana")).toBe("A");
    expect(initials("  maría  josé  ruiz ")).toBe("MJ");
    expect(initials("# general")).toBe("G");
    expect(initials("jo.smith")).toBe("JS");
    expect(initials("Ёлка Пушистая")).toBe("ЁП");
    expect(initials("😀 party")).toBe("P");
    expect(initials("李 小龙")).toBe("李小");
    expect(initials("")).toBe("?");
    expect(initials("!!!")).toBe("?");
  });

  it("puts the server's address before a picture path, and refuses nothing else", () => {
    expect(pictureSrc("/api/pictures/p1", SERVER)).toBe(`${SERVER}/api/pictures/p1`);
    expect(pictureSrc(null, SERVER)).toBeNull();
    expect(pictureSrc("", SERVER)).toBeNull();
    expect(pictureSrc("/api/pictures/p1", null)).toBeNull();
  });
});

describe("avatars wherever a name appears", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  const ana = user("ana", { displayName: "Ana Bell", avatarUrl: "/api/pictures/p-ana" });
  const bo = user("bo");

  it("shows the author's picture beside a message, mine from my profile, initials otherwise", async () => {
    const dm = direct(ana, { id: "dm", lastSeq: 3 });
    const { app } = await mountShell(ipc.backend, {
      rooms: [dm],
      pages: {
        dm: page("dm", [
          message("dm", 1, { authorName: "Ana Bell", authorAvatarUrl: "/api/pictures/p-ana" }),
          message("dm", 2, {
            authorId: "u-me",
            authorName: "me",
            mine: true,
            authorAvatarUrl: null,
          }),
          message("dm", 3, {
            authorId: "u-cy",
            authorName: "Cy Young",
            createdAt: "2026-01-01T12:00:00Z",
          }),
        ]),
      },
    });
    app.setMe({ ...ME, avatarUrl: "/api/pictures/p-me" });
    await openRoom("dm");
    const row = (seq: number) => $(`[data-testid='message'][data-seq='${seq}']`);
    expect(srcIn(row(1))).toBe(`${SERVER}/api/pictures/p-ana`);
    expect(srcIn(row(2))).toBe(`${SERVER}/api/pictures/p-me`);
    expect(srcIn(row(3))).toBeNull();
    expect(avatarIn(row(3))?.textContent).toBe("CY");
  });

  it("loads pictures through the app's proxy when Rust says the webview cannot verify the server", async () => {
    const { app } = await mountShell(ipc.backend, { rooms: [direct(ana)] });
    app.setServerUrl("https://chat.internal/", "confab-media://localhost/");
    await flush();
    expect(srcIn($("[data-testid='rail-room']"))).toBe(
      "confab-media://localhost/api/pictures/p-ana",
    );
    expect(app.serverUrl()).toBe("https://chat.internal/");
  });

  it("falls back to the initials when the picture does not load", async () => {
    await mountShell(ipc.backend, { rooms: [direct(ana)] });
    const rail = $("[data-testid='rail-room']");
    const img = avatarIn(rail)?.querySelector("img");
    expect(img).not.toBeNull();
    img?.dispatchEvent(new Event("error"));
    await flush();
    expect(avatarIn(rail)?.querySelector("img")).toBeNull();
    expect(avatarIn(rail)?.textContent).toBe("AB");
  });

  it("shows contacts, requests and found people with their avatars", async () => {
    const cy = user("cy", { avatarUrl: "/api/pictures/p-cy" });
    await mountShell(ipc.backend, {
      contacts: {
        contacts: [contact(ana), contact(bo)],
        incoming: [request("r1", cy, true)],
        outgoing: [],
      },
    });
    ipc.backend.on("searchUsers", () => [ana]);
    (byTestId("contacts-entry") as HTMLElement).click();
    await flush();
    const [first, second] = allByTestId("contact");
    expect(srcIn(first)).toBe(`${SERVER}/api/pictures/p-ana`);
    expect(avatarIn(second)?.textContent).toBe("B");
    expect(srcIn(byTestId("incoming-request"))).toBe(`${SERVER}/api/pictures/p-cy`);
    const search = byTestId("user-search") as HTMLInputElement;
    search.value = "ana";
    search.dispatchEvent(new Event("input", { bubbles: true }));
    await flush(6);
    await new Promise((r) => setTimeout(r, 400));
    await flush();
    expect(srcIn(byTestId("user-result"))).toBe(`${SERVER}/api/pictures/p-ana`);
  });
});
