// The rows of a timeline: day separators, the "new messages" divider and messages, with
// consecutive messages of one author (within a few minutes, same day) grouped under one
// name. Pure, so the list can be rebuilt cheaply on every change.

import type { MessageView } from "./types";

export type Row =
  | { kind: "day"; key: string; label: string }
  | { kind: "divider"; key: "new-messages" }
  | { kind: "message"; key: string; message: MessageView; grouped: boolean };

/** Messages of one author less than this far apart are grouped. */
export const GROUP_GAP_MS = 5 * 60 * 1000;

function dayKey(d: Date): string {
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function dayLabel(d: Date, now: Date): string {
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const that = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const days = Math.round((today.getTime() - that.getTime()) / 86_400_000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return d.toLocaleDateString(undefined, {
    weekday: "long",
    day: "numeric",
    month: "long",
    ...(d.getFullYear() === now.getFullYear() ? {} : { year: "numeric" }),
  });
}

/**
 * Rows for `messages` (in timeline order). The divider goes before the first message newer
 * than `readUpTo` that is not mine (none when `readUpTo` is null).
 */
export function buildRows(
  messages: readonly MessageView[],
  readUpTo: number | null,
  now: Date = new Date(),
): Row[] {
  const rows: Row[] = [];
  let day = "";
  let prev: MessageView | null = null;
  let prevTime = 0;
  let divided = readUpTo === null;
  let sawRead = false;
  for (const m of messages) {
    const at = new Date(m.createdAt);
    const time = at.getTime();
    const k = dayKey(at);
    let breakGroup = false;
    if (k !== day) {
      day = k;
      rows.push({ kind: "day", key: `day-${k}`, label: dayLabel(at, now) });
      breakGroup = true;
    }
    // Only where the first unread is loaded: right after a read one, or its seq follows.
    const follows = m.seq !== null && readUpTo !== null && (sawRead || m.seq === readUpTo + 1);
    if (!divided && follows && m.seq !== null && readUpTo !== null && m.seq > readUpTo && !m.mine) {
      divided = true;
      rows.push({ kind: "divider", key: "new-messages" });
      breakGroup = true;
    }
    const grouped =
      !breakGroup &&
      prev !== null &&
      m.kind === "text" &&
      prev.kind === "text" &&
      prev.authorId === m.authorId &&
      !prev.deleted &&
      time - prevTime < GROUP_GAP_MS;
    rows.push({ kind: "message", key: m.key, message: m, grouped });
    if (m.seq !== null && readUpTo !== null && m.seq <= readUpTo) sawRead = true;
    prev = m;
    prevTime = time;
  }
  return rows;
}

export type Tick = "pending" | "failed" | "sent" | "delivered" | "read";

/** The tick of one of my messages, from the room's receipts (null: not mine). */
export function tickFor(
  m: MessageView,
  receipts: { readUpTo: number | null; deliveredUpTo: number | null } | undefined,
): Tick | null {
  if (!m.mine || m.kind !== "text") return null;
  if (m.state === "pending") return "pending";
  if (m.state === "failed") return "failed";
  if (m.seq === null) return "sent";
  if (receipts?.readUpTo != null && m.seq <= receipts.readUpTo) return "read";
  if (receipts?.deliveredUpTo != null && m.seq <= receipts.deliveredUpTo) return "delivered";
  return "sent";
}
