import { describe, expect, it } from "vitest";
import { message } from "../test/fixtures";
import { buildRows, dayLabel, GROUP_GAP_MS, tickFor } from "./rows";

const at = (iso: string) => ({ createdAt: iso });

describe("buildRows", () => {
  it("puts a day separator before each day's first message", () => {
    const rows = buildRows(
      [
        message("r", 1, at("2026-01-01T10:00:00")),
        message("r", 2, at("2026-01-01T23:59:00")),
        message("r", 3, at("2026-01-02T00:01:00")),
      ],
      null,
      new Date("2026-01-02T12:00:00"),
    );
    expect(rows.map((r) => r.kind)).toEqual(["day", "message", "message", "day", "message"]);
    expect(rows[0]).toMatchObject({ label: "Yesterday" });
    expect(rows[3]).toMatchObject({ label: "Today" });
  });

  it("groups one author's messages within a few minutes, and nothing across a gap", () => {
    const t0 = Date.parse("2026-01-01T10:00:00Z");
    const iso = (ms: number) => new Date(t0 + ms).toISOString();
    const rows = buildRows(
      [
        message("r", 1, { createdAt: iso(0) }),
        message("r", 2, { createdAt: iso(60_000) }),
        message("r", 3, { createdAt: iso(60_000 + GROUP_GAP_MS) }),
        message("r", 4, { createdAt: iso(60_000 + GROUP_GAP_MS + 1), authorId: "u-bo" }),
        message("r", 5, {
          createdAt: iso(60_000 + GROUP_GAP_MS + 2),
          authorId: "u-bo",
          kind: "missed_call",
        }),
      ],
      null,
    );
    const grouped = rows
      .filter((r) => r.kind === "message")
      .map((r) => r.kind === "message" && r.grouped);
    expect(grouped).toEqual([false, true, false, false, false]);
  });

  it("puts the new-messages divider before the first unread message of someone else", () => {
    const rows = buildRows(
      [
        message("r", 1),
        message("r", 2),
        message("r", 3, { mine: true, authorId: "u-me" }),
        message("r", 4),
        message("r", 5),
      ],
      2,
    );
    const keys = rows.map((r) => (r.kind === "message" ? r.message.seq : r.kind));
    expect(keys).toEqual(["day", 1, 2, 3, "divider", 4, 5]);
    const after = rows[rows.findIndex((r) => r.kind === "divider") + 1];
    expect(after?.kind === "message" && after.grouped).toBe(false);
    expect(buildRows([message("r", 1)], null).some((r) => r.kind === "divider")).toBe(false);
    expect(buildRows([message("r", 1)], 1).some((r) => r.kind === "divider")).toBe(false);
    // Not where the first unread (3) is not loaded: the window starts later.
    expect(buildRows([message("r", 7), message("r", 8)], 2).some((r) => r.kind === "divider")).toBe(
      false,
    );
    expect(buildRows([message("r", 3)], 2).some((r) => r.kind === "divider")).toBe(true);
  });

  it("labels older days by date", () => {
    const label = dayLabel(new Date("2025-03-04T10:00:00"), new Date("2026-01-02T12:00:00"));
    expect(label).toMatch(/2025/);
  });
});

describe("tickFor", () => {
  const mine = (seq: number | null, state: "pending" | "sent" | "failed" = "sent") =>
    message("r", seq ?? 0, { mine: true, seq, state });
  const receipts = { readUpTo: 3, deliveredUpTo: 5 };

  it("is one tick sent, two delivered, two blue read", () => {
    expect(tickFor(mine(2), receipts)).toBe("read");
    expect(tickFor(mine(3), receipts)).toBe("read");
    expect(tickFor(mine(4), receipts)).toBe("delivered");
    expect(tickFor(mine(5), receipts)).toBe("delivered");
    expect(tickFor(mine(6), receipts)).toBe("sent");
  });

  it("shows pending and failed, and nothing on others' messages", () => {
    expect(tickFor(mine(null, "pending"), receipts)).toBe("pending");
    expect(tickFor(mine(null, "failed"), receipts)).toBe("failed");
    expect(tickFor(message("r", 1), receipts)).toBeNull();
  });

  it("stays at one tick where receipts are not shown", () => {
    expect(tickFor(mine(2), { readUpTo: null, deliveredUpTo: null })).toBe("sent");
    expect(tickFor(mine(2), undefined)).toBe("sent");
  });
});
