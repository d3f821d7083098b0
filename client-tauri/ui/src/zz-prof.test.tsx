import { cleanup } from "@solidjs/testing-library";
import { afterEach, it, vi } from "vitest";
import { direct, message, page, user } from "./test/fixtures";
import { type FakeBackend, flush } from "./test/ipc";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("./bindings", async (importOriginal) => {
  const m = await import("./test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});
const { mountShell, openRoom, byTestId } = await import("./test/shell");
afterEach(cleanup);
it("prof", async () => {
  const all = Array.from({ length: 5000 }, (_, i) => message("dm", i + 1));
  const dm = direct(user("ana"), { id: "dm", lastSeq: 5000, lastReadSeq: 5000 });
  await mountShell(ipc.backend, {
    rooms: [dm],
    pages: { dm: page("dm", all.slice(4900), { hasMoreBefore: true }) },
  });
  let end = 4900;
  ipc.backend.on("loadMessages", () => {
    const p = page("dm", all.slice(end - 100, end), { hasMoreBefore: true });
    end -= 100;
    return p;
  });
  await openRoom("dm");
  const list = byTestId("message-list");
  for (let i = 0; i < 40; i++) {
    list.scrollTop = 0;
    list.dispatchEvent(new Event("scroll"));
    await flush();
  }
  console.log("PREPEND", JSON.stringify(window.__confabPrependMs?.map((x) => Math.round(x))));
}, 60000);
