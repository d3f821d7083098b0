// Search's door to Rust, and splitting a hit's body at its marks.

import { type OkOf, unwrap } from "../api";
import { commands } from "../bindings";

export type SearchResults = OkOf<typeof commands.searchMessages>;
export type SearchHit = SearchResults["hits"][number];
export type Mark = SearchHit["marks"][number];

export const search = {
  messages: (q: string, roomId: string | null, cursor: string | null) =>
    unwrap(commands.searchMessages(q, roomId, cursor)),
};

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
