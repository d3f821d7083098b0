// Message formatting, parsed into a small tree that components turn into DOM nodes and
// text nodes (never HTML): ```code blocks```, `inline code`, **bold**, *italic* or
// _italic_, links (http, https and mailto only) and @mentions. Anything else is text,
// shown as typed (a `<script>` stays the characters "<script>").

export type Inline =
  | { t: "text"; s: string }
  | { t: "code"; s: string }
  | { t: "b"; c: Inline[] }
  | { t: "i"; c: Inline[] }
  | { t: "link"; href: string; s: string }
  | { t: "mention"; name: string };

export type Block = { t: "pre"; s: string } | { t: "p"; c: Inline[] };

const LINK_SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** The URL when it is one the app may hand to the OS (http, https, mailto), else null. */
export function safeUrl(raw: string): string | null {
  try {
    const u = new URL(raw);
    return LINK_SCHEMES.has(u.protocol) ? u.href : null;
  } catch {
    return null;
  }
}

const INLINE =
  /(`[^`\n]+`)|(\*\*(?=\S)[\s\S]*?\S\*\*)|((?<![\p{L}\p{N}*])\*(?=[^*\s])[^*\n]*?[^*\s]\*(?![\p{L}\p{N}*])|(?<![\p{L}\p{N}*])\*[^*\s]\*(?![\p{L}\p{N}*]))|((?<![\p{L}\p{N}_])_(?=[^_\s])[^_\n]*?[^_\s]_(?![\p{L}\p{N}_])|(?<![\p{L}\p{N}_])_[^_\s]_(?![\p{L}\p{N}_]))|((?:https?:\/\/|mailto:)[^\s<>"']+)|((?<![\p{L}\p{N}_.])@[a-z0-9_.-]{3,32})/giu;

/** Trailing punctuation is rarely part of a pasted link: "see https://x.org." */
function trimLink(s: string): [string, string] {
  const m = /[.,;:!?)\]}]+$/.exec(s);
  if (!m) return [s, ""];
  // Keep a closing parenthesis that has its opening one in the link (Wikipedia links).
  let cut = m[0];
  if (cut.startsWith(")") && s.includes("(")) cut = cut.slice(1);
  return [s.slice(0, s.length - cut.length), cut];
}

export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  const push = (node: Inline) => {
    const last = out[out.length - 1];
    if (node.t === "text" && last?.t === "text") last.s += node.s;
    else if (node.t !== "text" || node.s !== "") out.push(node);
  };
  let at = 0;
  for (const m of text.matchAll(INLINE)) {
    const start = m.index ?? 0;
    push({ t: "text", s: text.slice(at, start) });
    const [all, code, bold, star, under, link, mention] = m;
    if (code) push({ t: "code", s: code.slice(1, -1) });
    else if (bold) push({ t: "b", c: parseInline(bold.slice(2, -2)) });
    else if (star || under) push({ t: "i", c: parseInline(all.slice(1, -1)) });
    else if (link) {
      const [url, rest] = trimLink(link);
      const href = safeUrl(url);
      push(href ? { t: "link", href, s: url } : { t: "text", s: url });
      push({ t: "text", s: rest });
    } else if (mention) push({ t: "mention", name: mention.slice(1).toLowerCase() });
    else push({ t: "text", s: all });
    at = start + all.length;
  }
  push({ t: "text", s: text.slice(at) });
  return out;
}

const FENCE = /```(?:[\w+-]*\n)?([\s\S]*?)```/g;

export function parseMessage(body: string): Block[] {
  const blocks: Block[] = [];
  let at = 0;
  for (const m of body.matchAll(FENCE)) {
    const start = m.index ?? 0;
    const before = body.slice(at, start).replace(/\n$/, "");
    if (before !== "") blocks.push({ t: "p", c: parseInline(before) });
    blocks.push({ t: "pre", s: (m[1] ?? "").replace(/\n$/, "") });
    at = start + m[0].length;
    if (body[at] === "\n") at++;
  }
  const rest = body.slice(at);
  if (rest !== "" || blocks.length === 0) blocks.push({ t: "p", c: parseInline(rest) });
  return blocks;
}

/** Plain text of a message for previews and notifications: the markers dropped. */
export function plainText(body: string): string {
  const flat = (c: Inline[]): string =>
    c
      .map((n) => {
        switch (n.t) {
          case "text":
          case "code":
          case "link":
            return n.s;
          case "b":
          case "i":
            return flat(n.c);
          case "mention":
            return `@${n.name}`;
          default:
            return "";
        }
      })
      .join("");
  return parseMessage(body)
    .map((b) => (b.t === "pre" ? b.s : flat(b.c)))
    .join(" ")
    .replace(/\s+/g, " ")
    .trim();
}
