import { describe, expect, it, vi } from "vitest";

vi.mock("./bindings", () => ({
  commands: {
    setServer: vi.fn(),
    listRooms: vi.fn(),
    startPreview: vi.fn(async () => ({ status: "ok", data: null })),
  },
  events: {},
}));
vi.mock("@tauri-apps/api/core", () => ({
  Channel: class {
    onmessage: unknown = null;
  },
}));

const bindings = await import("./bindings");
const { api, ApiError, openFrameFeed, toAppError } = await import("./api");
type Loose = Record<string, ReturnType<typeof vi.fn> | undefined>;

describe("api", () => {
  it("returns the data of an ok result", async () => {
    vi.mocked(bindings.commands.setServer).mockResolvedValueOnce({
      status: "ok",
      data: "https://chat.example.com",
    });
    await expect(api.setServer("chat.example.com")).resolves.toBe("https://chat.example.com");
  });

  it("throws an ApiError carrying the AppError", async () => {
    const error = { kind: "invalid", message: "Bad URL", fields: { url: "is not a URL" } } as const;
    vi.mocked(bindings.commands.setServer).mockResolvedValueOnce({ status: "error", error });
    const err = await api.setServer("::").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as InstanceType<typeof ApiError>).error).toEqual(error);
    expect((err as InstanceType<typeof ApiError>).kind).toBe("invalid");
    expect((err as Error).message).toBe("Bad URL");
  });

  it("turns a non-AppError rejection into a server error", async () => {
    vi.mocked(bindings.commands.listRooms).mockResolvedValueOnce({
      status: "error",
      error: "command list_rooms not found" as never,
    });
    const err = await api.listRooms().catch((e: unknown) => e);
    expect((err as InstanceType<typeof ApiError>).error).toEqual({
      kind: "server",
      message: "command list_rooms not found",
    });
  });

  it("passes a fresh channel to startPreview when the bindings have no nextFrame", async () => {
    const feed = openFrameFeed(() => {});
    expect(feed.mode).toBe("push");
    await api.startPreview({ kind: "testPattern" }, { kind: "tone" }, feed);
    const args = vi.mocked(bindings.commands.startPreview).mock.calls[0] as unknown[];
    expect(args.slice(0, 2)).toEqual([{ kind: "testPattern" }, { kind: "tone" }]);
    expect(args[2]).toHaveProperty("onmessage");
  });

  it("pulls frames with nextFrame when the bindings have it", async () => {
    const commands = bindings.commands as unknown as Loose;
    const frame = new Uint8Array(40 + 4 * 4);
    frame[4] = 2; // 2x2 local frame
    frame[8] = 2;
    frame[16] = 3; // seq 3
    commands.nextFrame = vi.fn(async () => ({ status: "ok", data: frame.buffer }));
    try {
      const got: ArrayBuffer[] = [];
      const feed = openFrameFeed((buf) => {
        got.push(buf);
        feed.close();
      });
      expect(feed.mode).toBe("pull");
      await api.startPreview({ kind: "testPattern" }, { kind: "tone" }, feed);
      const args = vi.mocked(bindings.commands.startPreview).mock.calls.at(-1) as unknown[];
      expect(args).toHaveLength(2); // no channel in pull mode
      feed.setSources(["local"]);
      await new Promise((r) => setTimeout(r, 0));
      expect(commands.nextFrame).toHaveBeenCalledWith("local", 0);
      expect(got).toEqual([frame.buffer]);
    } finally {
      delete commands.nextFrame;
    }
  });
});

describe("toAppError", () => {
  it("keeps well-formed errors and wraps anything else", () => {
    expect(toAppError({ kind: "notFound", message: "No room" })).toEqual({
      kind: "notFound",
      message: "No room",
    });
    expect(toAppError({ kind: "invalid", message: "Bad" })).toEqual({
      kind: "invalid",
      message: "Bad",
      fields: {},
    });
    expect(toAppError({ kind: "weird", message: "x" })).toEqual({ kind: "server", message: "x" });
    expect(toAppError(null)).toEqual({ kind: "server", message: "Unexpected error" });
  });
});
