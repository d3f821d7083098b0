import { describe, expect, it, vi } from "vitest";
import type { AppError } from "../api";

vi.mock("../bindings", async (importOriginal) => ({
  ...(await importOriginal<object>()),
  commands: {},
  events: {},
}));

const { ApiError } = await import("../api");
const { testSourceFor } = await import("./Prejoin");

const deviceError = (device: "camera" | "microphone" | "other") =>
  new ApiError({ kind: "device", message: "cannot open", device } as AppError);
const state = (testPattern: boolean, tone: boolean) => ({
  state: { cameraIndex: 0, testPattern, micId: null, tone, speakerId: null },
});

describe("testSourceFor", () => {
  it("falls back to the synthetic source of the device that failed", () => {
    expect(testSourceFor(deviceError("microphone"), state(false, false))).toEqual({
      which: "audio",
      name: "test tone",
    });
    expect(testSourceFor(deviceError("camera"), state(false, false))).toEqual({
      which: "video",
      name: "test pattern",
    });
  });

  it("does not fall back twice, nor for other errors", () => {
    expect(testSourceFor(deviceError("microphone"), state(false, true))).toBeNull();
    expect(testSourceFor(deviceError("camera"), state(true, false))).toBeNull();
    expect(testSourceFor(deviceError("other"), state(false, false))).toBeNull();
    expect(
      testSourceFor(
        new ApiError({ kind: "server", message: "boom" } as AppError),
        state(false, false),
      ),
    ).toBeNull();
    expect(testSourceFor(new Error("x"), state(false, false))).toBeNull();
  });
});
