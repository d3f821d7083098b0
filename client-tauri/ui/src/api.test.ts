import { describe, expect, it, vi } from "vitest";

vi.mock("./bindings", async (importOriginal) => ({
  ...(await importOriginal<object>()),
  commands: {
    setServer: vi.fn(),
    listRooms: vi.fn(),
    startPreview: vi.fn(async () => ({ status: "ok", data: null })),
    nextFrame: vi.fn(),
  },
  events: {},
}));

const bindings = await import("./bindings");
const { api, ApiError, openFrameFeed, toAppError } = await import("./api");

describe("api", () => {
  it("returns the data of an ok result", async () => {
    vi.mocked(bindings.commands.setServer).mockResolvedValueOnce({
      status: "ok",
      data: {
        url: "https://chat.example.com",
        insecure: false,
        pictureBase: "https://chat.example.com",
      },
    });
    await expect(api.setServer("chat.example.com")).resolves.toEqual({
      url: "https://chat.example.com",
      insecure: false,
      pictureBase: "https://chat.example.com",
    });
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

  it("pulls frames with nextFrame", async () => {
    const frame = new Uint8Array(40 + 4 * 4);
    frame[4] = 2; // 2x2 local frame
    frame[8] = 2;
    frame[16] = 3; // seq 3
    vi.mocked(bindings.commands.nextFrame).mockResolvedValue({ status: "ok", data: frame.buffer });
    {
      const got: ArrayBuffer[] = [];
      const feed = openFrameFeed((buf) => {
        got.push(buf);
        feed.close();
      });
      await api.startPreview({ kind: "testPattern" }, { kind: "tone" }, feed);
      const args = vi.mocked(bindings.commands.startPreview).mock.calls.at(-1) as unknown[];
      expect(args).toEqual([{ kind: "testPattern" }, { kind: "tone" }]);
      feed.setSources(["local"]);
      await new Promise((r) => setTimeout(r, 0));
      expect(bindings.commands.nextFrame).toHaveBeenCalledWith("local", 0, 0, 0);
      expect(got).toEqual([frame.buffer]);
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
