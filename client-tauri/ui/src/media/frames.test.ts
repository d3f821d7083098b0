import { describe, expect, it } from "vitest";
import { buildFrame, PARTICIPANT_BYTES as ID, PARTICIPANT_ID } from "../test/frames";
import { formatUuid, parseFrameHeader } from "./frames";

describe("parseFrameHeader", () => {
  it("reads a remote frame", () => {
    const h = parseFrameHeader(
      buildFrame({ source: 1, width: 640, height: 360, counter: 1234, seq: 77n, id: ID }),
    );
    expect(h).toEqual({
      source: "remote",
      width: 640,
      height: 360,
      counter: 1234,
      sequence: 77,
      participantId: PARTICIPANT_ID,
    });
  });

  it("reads a local frame without counter", () => {
    const h = parseFrameHeader(buildFrame({ source: 0, seq: 5n }));
    expect(h?.source).toBe("local");
    expect(h?.counter).toBeNull();
    expect(h?.participantId).toBeNull();
    expect(h?.sequence).toBe(5);
  });

  it("reads the sequence number's high half", () => {
    expect(parseFrameHeader(buildFrame({ seq: 2n ** 32n + 9n }))?.sequence).toBe(2 ** 32 + 9);
    expect(parseFrameHeader(buildFrame({ seq: 2n ** 52n + 1n }))?.sequence).toBe(2 ** 52 + 1);
  });

  it("tells a shared screen's frames from the camera's", () => {
    const id = Array.from({ length: 16 }, (_, i) => i);
    const header = parseFrameHeader(buildFrame({ source: 2, id }));
    expect(header?.source).toBe("screen");
    expect(header?.participantId).toBe("00010203-0405-0607-0809-0a0b0c0d0e0f");
  });

  it("keeps counter 0 (only 0xFFFFFFFF means none)", () => {
    expect(parseFrameHeader(buildFrame({ counter: 0 }))?.counter).toBe(0);
    expect(parseFrameHeader(buildFrame({ counter: 0xfffffffe }))?.counter).toBe(0xfffffffe);
  });

  it("refuses short or malformed messages", () => {
    expect(parseFrameHeader(new ArrayBuffer(39))).toBeNull();
    expect(parseFrameHeader(buildFrame({ width: 4, height: 2, pixels: 31 }))).toBeNull();
    expect(parseFrameHeader(buildFrame({ source: 3 }))).toBeNull();
    expect(parseFrameHeader(buildFrame({ width: 0, pixels: 0 }))).toBeNull();
    expect(parseFrameHeader(buildFrame({ width: 100_000, height: 1, pixels: 0 }))).toBeNull();
  });

  it("accepts exactly header + pixels", () => {
    expect(parseFrameHeader(buildFrame({ width: 3, height: 3 }))?.width).toBe(3);
  });
});

describe("formatUuid", () => {
  it("formats 16 bytes as lowercase 8-4-4-4-12", () => {
    expect(formatUuid(new Uint8Array(ID))).toBe("123e4567-e89b-12d3-a456-4266141740ff");
    expect(formatUuid(new Uint8Array(16))).toBe("00000000-0000-0000-0000-000000000000");
  });
});
