// Search's door to Rust, and splitting a hit's body at its marks.

import { type OkOf, unwrap } from "../api";
import { commands } from "../bindings";

export type SearchResults = OkOf<typeof commands.searchMessages>;
export type SearchHit = SearchResults["hits"][number];
export type Mark = SearchHit["marks"][number];
/** The filters the command takes (absent ones are not applied). */
export type SearchFilters = Parameters<typeof commands.searchMessages>[1];
export type SearchOrder = NonNullable<SearchFilters["order"]>;

export const search = {
  messages: (q: string, filters: SearchFilters, cursor: string | null) =>
    unwrap(commands.searchMessages(q, filters, cursor)),
};

/** `YYYY-MM-DD` (what a date input gives and the server takes), or null. */
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The filters as sent: blanks dropped, days checked (`after` must come before
 * `before`, as the server requires). Answers the problem instead when there is one.
 */
export function filtersOf(raw: {
  roomId: string;
  authorId: string;
  after: string;
  before: string;
  order: SearchOrder;
}): { filters: SearchFilters } | { error: string; field: "after" | "before" } {
  const after = raw.after.trim();
  const before = raw.before.trim();
  if (after && !DAY.test(after))
    return { error: "Not a day: use the date picker.", field: "after" };
  if (before && !DAY.test(before)) {
    return { error: "Not a day: use the date picker.", field: "before" };
  }
  if (after && before && after >= before) {
    return { error: "“From” must be a day before “Before”.", field: "after" };
  }
  const filters: SearchFilters = {};
  if (raw.roomId) filters.roomId = raw.roomId;
  if (raw.authorId) filters.authorId = raw.authorId;
  if (after) filters.after = after;
  if (before) filters.before = before;
  if (raw.order !== "newest") filters.order = raw.order;
  return { filters };
}

/** The body cut into plain and marked pieces (marks are UTF-16 ranges, as JS indexes). */
export function pieces(body: string, marks: Mark[]): { text: string; marked: boolean }[] {
  const out: { text: string; marked: boolean }[] = [];
  let at = 0;
  for (const m of [...marks].sort((a, b) => a.start - b.start)) {
    const start = Math.max(at, Math.min(m.start, body.length));
    const end = Math.min(Math.max(m.end, start), body.length);
    if (start > at) out.push({ text: body.slice(at, start), marked: false });
    if (end > start) out.push({ text: body.slice(start, end), marked: true });
    at = end;
  }
  if (at < body.length) out.push({ text: body.slice(at), marked: false });
  return out;
}
