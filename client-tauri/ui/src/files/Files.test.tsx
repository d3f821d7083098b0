import { cleanup } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { message, page, room } from "../test/fixtures";
import { type FakeBackend, flush } from "../test/ipc";
import type { AttachmentView } from "./api";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});
const dialog = vi.hoisted(() => ({
  open: vi.fn(async (): Promise<string[] | null> => null),
  save: vi.fn(async (): Promise<string | null> => null),
}));
vi.mock("@tauri-apps/plugin-dialog", () => dialog);

const { mountShell, openRoom, $, byTestId, allByTestId } = await import("../test/shell");
const { decodeBlurhash } = await import("./blurhash");
const { clearLinks, formatSize } = await import("./api");
const { inlineSize } = await import("./Attachments");

const click = (el: Element | null | undefined) => (el as HTMLElement).click();

const photo: AttachmentView = {
  id: "up-photo",
  name: "cat.png",
  size: 120_000,
  contentType: "image/png",
  image: true,
  width: 1280,
  height: 640,
  placeholder: "00TSUA",
};
const report: AttachmentView = {
  id: "up-pdf",
  name: "report.pdf",
  size: 2_500_000,
  contentType: "application/pdf",
  image: false,
  width: null,
  height: null,
  placeholder: null,
};
const links = (id: string) => ({
  url: `http://127.0.0.1:8080/api/files/${id}/original?sig=x`,
  previewUrl: `http://127.0.0.1:8080/api/files/${id}/preview?sig=x`,
  thumbnailUrl: null,
  expiresAt: "2099-01-01T00:00:00Z",
});

describe("pictures and files in messages", () => {
  beforeEach(() => {
    ipc.backend.reset();
    clearLinks();
  });
  afterEach(cleanup);

  it("shows an image at its aspect with the placeholder until its preview loads, and a lightbox", async () => {
    const g = room("g", { lastSeq: 1 });
    await mountShell(ipc.backend, {
      rooms: [g],
      pages: { g: page("g", [message("g", 1, { body: "", attachments: [photo] })]) },
    });
    ipc.backend.on("fileLinks", (id: string) => links(id));
    await openRoom("g");
    await flush();
    const box = byTestId("image-attachment");
    expect(box.style.width).toBe("320px");
    expect(box.style.height).toBe("160px");
    expect(box.dataset.loaded).toBe("false");
    expect(box.querySelector("canvas.image-placeholder")).not.toBeNull();
    const img = box.querySelector("img") as HTMLImageElement;
    expect(img.src).toBe(links("up-photo").previewUrl);
    img.dispatchEvent(new Event("load"));
    await flush();
    expect(box.dataset.loaded).toBe("true");
    expect(box.querySelector("canvas")).toBeNull();

    click(box);
    await flush();
    expect(byTestId("lightbox")).not.toBeNull();
    expect(ipc.backend.callsTo("fileLinks")).toEqual([["up-photo"]]); // the link is shared
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
    await flush();
    expect(byTestId("lightbox")).toBeNull();
  });

  it("offers other files as cards whose download asks where to save", async () => {
    const g = room("g", { lastSeq: 1 });
    await mountShell(ipc.backend, {
      rooms: [g],
      pages: { g: page("g", [message("g", 1, { body: "the numbers", attachments: [report] })]) },
    });
    ipc.backend.on("downloadFile", () => 2_500_000);
    await openRoom("g");
    expect(byTestId("file-name").textContent).toBe("report.pdf");
    expect(byTestId("file-card").textContent).toContain("2.4 MB");

    dialog.save.mockResolvedValueOnce(null);
    click(byTestId("file-download"));
    await flush();
    expect(ipc.backend.callsTo("downloadFile")).toHaveLength(0); // cancelled dialog

    dialog.save.mockResolvedValueOnce("/home/me/report.pdf");
    click(byTestId("file-download"));
    await flush();
    expect(dialog.save).toHaveBeenLastCalledWith(
      expect.objectContaining({ defaultPath: "report.pdf" }),
    );
    const [call] = ipc.backend.callsTo("downloadFile");
    expect(call?.slice(1)).toEqual(["up-pdf", "/home/me/report.pdf"]);
  });
});

describe("attaching files", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  const mount = async () => {
    const g = room("g");
    const shell = await mountShell(ipc.backend, { rooms: [g], pages: { g: page("g", []) } });
    ipc.backend.on("sendMessage", (roomId: string, body: string) =>
      message(roomId, 1, { body, mine: true }),
    );
    await openRoom("g");
    return shell;
  };

  it("uploads a picked file with progress, then sends it with an empty body", async () => {
    await mount();
    let finish: (a: AttachmentView) => void = () => undefined;
    ipc.backend.on(
      "uploadFile",
      () =>
        new Promise<AttachmentView>((r) => {
          finish = r;
        }),
    );
    dialog.open.mockResolvedValueOnce(["/home/me/cat.png"]);
    click(byTestId("composer-attach"));
    await flush();
    const [call] = ipc.backend.callsTo("uploadFile");
    const transfer = call?.[0] as string;
    expect(call?.[1]).toBe("/home/me/cat.png");
    expect(byTestId("upload").textContent).toContain("cat.png");
    expect((byTestId("composer-send") as HTMLButtonElement).disabled).toBe(true);

    ipc.backend.emit("transferEvent", { transferId: transfer, done: 60_000, total: 120_000 });
    await flush();
    const bar = byTestId("upload-progress") as HTMLProgressElement;
    expect([bar.value, bar.max]).toEqual([60_000, 120_000]);

    finish(photo);
    await flush();
    expect(byTestId("upload").dataset.state).toBe("done");
    click(byTestId("composer-send"));
    await flush();
    expect(ipc.backend.callsTo("sendMessage")).toEqual([["g", "", null, ["up-photo"]]]);
    expect(byTestId("upload-tray")).toBeNull();
  });

  it("cancels an upload that is still running", async () => {
    await mount();
    ipc.backend.on("uploadFile", () => new Promise(() => undefined));
    ipc.backend.on("cancelTransfer", () => null);
    dialog.open.mockResolvedValueOnce(["/home/me/big.iso"]);
    click(byTestId("composer-attach"));
    await flush();
    const transfer = ipc.backend.callsTo("uploadFile")[0]?.[0];
    expect(byTestId("upload-remove").textContent).toBe("Cancel");
    click(byTestId("upload-remove"));
    await flush();
    expect(ipc.backend.callsTo("cancelTransfer")).toEqual([[transfer]]);
    expect(allByTestId("upload")).toHaveLength(0);
  });

  it("uploads pasted and dropped files as bytes", async () => {
    await mount();
    ipc.backend.on("uploadBytes", (_t: string, name: string) => ({
      ...photo,
      id: `up-${name}`,
      name,
    }));
    const input = byTestId("composer-input");
    const shot = new File([new Uint8Array([1, 2, 3])], "shot.png", { type: "image/png" });
    const paste = new Event("paste", { bubbles: true, cancelable: true }) as Event & {
      clipboardData: unknown;
    };
    paste.clipboardData = { files: [shot] };
    input.dispatchEvent(paste);
    await flush();
    expect(ipc.backend.callsTo("uploadBytes")[0]?.slice(1)).toEqual(["shot.png", [1, 2, 3]]);

    const drop = new Event("drop", { bubbles: true, cancelable: true }) as Event & {
      dataTransfer: unknown;
    };
    drop.dataTransfer = { files: [new File([new Uint8Array([9])], "notes.txt")], types: ["Files"] };
    $(".conversation").dispatchEvent(drop);
    await flush();
    expect(ipc.backend.callsTo("uploadBytes")[1]?.slice(1)).toEqual(["notes.txt", [9]]);
    expect(allByTestId("upload").map((u) => u.dataset.state)).toEqual(["done", "done"]);
  });
});

describe("helpers", () => {
  it("decodes a BlurHash: one colour for a hash without detail, null for garbage", () => {
    // Size 0 (1x1 components), max AC 0, DC = 0x00FF00 (pure green) in base 83.
    const green = 0x00ff00;
    const digits =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    let dc = "";
    for (let v = green, i = 0; i < 4; i++, v = Math.floor(v / 83)) dc = digits[v % 83] + dc;
    const px = decodeBlurhash(`00${dc}`, 4, 4);
    expect(px?.length).toBe(64);
    expect(Array.from(px?.slice(0, 4) ?? [])).toEqual([0, 255, 0, 255]);
    expect(Array.from(px?.slice(60, 64) ?? [])).toEqual([0, 255, 0, 255]);
    expect(decodeBlurhash("not a hash!", 4, 4)).toBeNull();
  });

  it("sizes images within 320 px keeping their aspect, and files in readable units", () => {
    expect(inlineSize({ width: 1280, height: 640 })).toEqual({ width: 320, height: 160 });
    expect(inlineSize({ width: 100, height: 50 })).toEqual({ width: 100, height: 50 });
    expect(inlineSize({ width: null, height: null })).toEqual({ width: 320, height: 320 });
    expect([formatSize(512), formatSize(3_500), formatSize(25 * 1024 * 1024)]).toEqual([
      "512 B",
      "3.4 KB",
      "25 MB",
    ]);
  });
});

describe("avatars and icons", () => {
  beforeEach(() => ipc.backend.reset());
  afterEach(cleanup);

  it("shows a contact's picture from the server in the rail, an initial without one", async () => {
    const { direct, user } = await import("../test/fixtures");
    const ana = user("ana", { avatarUrl: "/api/pictures/p-ana" });
    await mountShell(ipc.backend, { rooms: [direct(ana), direct(user("bo"))] });
    const [withPicture, without] = allByTestId("rail-room").map((r) =>
      r.querySelector("[data-testid='avatar']"),
    );
    expect(withPicture?.querySelector("img")?.getAttribute("src")).toBe(
      "http://127.0.0.1:8080/api/pictures/p-ana",
    );
    expect(without?.querySelector("img")).toBeNull();
    expect(without?.textContent).toBe("B");
  });

  it("changes my picture from the profile dialog", async () => {
    const { app } = await mountShell(ipc.backend, { rooms: [] });
    ipc.backend.on("setAvatar", () => "/api/pictures/p-me");
    click($(".account-toggle"));
    await flush();
    const edit = Array.from(document.querySelectorAll<HTMLElement>("button")).find((b) =>
      /profile/i.test(b.textContent ?? ""),
    );
    click(edit);
    await flush();
    dialog.open.mockResolvedValueOnce(["/home/me/me.png"]);
    click(byTestId("avatar-change"));
    await flush();
    expect(ipc.backend.callsTo("setAvatar")).toEqual([["/home/me/me.png"]]);
    expect(app.me()?.avatarUrl).toBe("/api/pictures/p-me");
  });
});
