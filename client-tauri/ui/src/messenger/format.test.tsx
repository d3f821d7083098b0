import { cleanup, render } from "@solidjs/testing-library";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { FakeBackend } from "../test/ipc";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { parseInline, parseMessage, plainText, safeUrl } = await import("./format");
const { Formatted } = await import("./Formatted");

describe("parseMessage", () => {
  it("finds bold, italic, inline code and links", () => {
    expect(parseInline("a **b** *c* _d_ `e` https://x.org/p?q=1.")).toEqual([
      { t: "text", s: "a " },
      { t: "b", c: [{ t: "text", s: "b" }] },
      { t: "text", s: " " },
      { t: "i", c: [{ t: "text", s: "c" }] },
      { t: "text", s: " " },
      { t: "i", c: [{ t: "text", s: "d" }] },
      { t: "text", s: " " },
      { t: "code", s: "e" },
      { t: "text", s: " " },
      { t: "link", href: "https://x.org/p?q=1", s: "https://x.org/p?q=1" },
      { t: "text", s: "." },
    ]);
  });

  it("leaves markers inside code and words alone", () => {
    expect(parseInline("`**not bold**`")).toEqual([{ t: "code", s: "**not bold**" }]);
    expect(parseInline("snake_case_name and 2*3*4")).toEqual([
      { t: "text", s: "snake_case_name and 2*3*4" },
    ]);
  });

  it("nests italic and links inside bold", () => {
    expect(parseInline("**see *this* http://a.b**")).toEqual([
      {
        t: "b",
        c: [
          { t: "text", s: "see " },
          { t: "i", c: [{ t: "text", s: "this" }] },
          { t: "text", s: " " },
          { t: "link", href: "http://a.b/", s: "http://a.b" },
        ],
      },
    ]);
  });

  it("splits code blocks from paragraphs", () => {
    expect(parseMessage("before\n```js\nlet a = `x`;\n```\nafter")).toEqual([
      { t: "p", c: [{ t: "text", s: "before" }] },
      { t: "pre", s: "let a = `x`;" },
      { t: "p", c: [{ t: "text", s: "after" }] },
    ]);
  });

  it("finds mentions but not emails", () => {
    expect(parseInline("hi @Ana.b, mail ana@example.com")).toEqual([
      { t: "text", s: "hi " },
      { t: "mention", name: "ana.b" },
      { t: "text", s: ", mail ana@example.com" },
    ]);
  });

  it("only links http, https and mailto", () => {
    expect(safeUrl("javascript:alert(1)")).toBeNull();
    expect(safeUrl("data:text/html,<script>alert(1)</script>")).toBeNull();
    expect(safeUrl("file:///etc/passwd")).toBeNull();
    expect(safeUrl("https://ok.example/")).toBe("https://ok.example/");
    expect(safeUrl("mailto:a@b.c")).toBe("mailto:a@b.c");
    expect(parseInline("javascript:alert(1)")).toEqual([{ t: "text", s: "javascript:alert(1)" }]);
  });

  it("gives plain text for previews", () => {
    expect(plainText("**Hi** `there`\n```\ncode\n```")).toBe("Hi there code");
  });
});

describe("Formatted", () => {
  afterEach(cleanup);

  const PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    '<a href="javascript:alert(1)">click</a>',
    "**<img src=x onerror=alert(1)>**",
    "`<script>alert(1)</script>`",
    "```\n<svg onload=alert(1)>\n```",
    "[click](javascript:alert(1))",
    'https://x.org/"><img src=x onerror=alert(1)>',
    "<iframe src=javascript:alert(1)></iframe>",
  ];

  it.each(PAYLOADS)("shows %s as text and runs nothing", (body) => {
    const { container } = render(() => <Formatted body={body} />);
    expect(container.querySelector("img, script, svg, iframe")).toBeNull();
    for (const el of container.querySelectorAll("*")) {
      for (const attr of el.getAttributeNames()) {
        expect(attr.startsWith("on"), `${el.tagName} ${attr}`).toBe(false);
      }
    }
    for (const a of container.querySelectorAll("a")) {
      expect(a.getAttribute("href") ?? "").toMatch(/^(https?:|mailto:)/);
    }
    // Every character typed is on screen (markers aside).
    const shown = container.textContent ?? "";
    for (const needle of ["onerror", "script", "javascript", "onload"]) {
      if (body.includes(needle)) expect(shown).toContain(needle);
    }
  });

  it("renders the formatting as elements", () => {
    const { container } = render(() => (
      <Formatted body={"**b** *i* `c` https://example.org @ana\n```\nx\n```"} me="ana" />
    ));
    expect(container.querySelector("strong")?.textContent).toBe("b");
    expect(container.querySelector("em")?.textContent).toBe("i");
    expect(container.querySelector("p code")?.textContent).toBe("c");
    expect(container.querySelector("pre code")?.textContent).toBe("x");
    expect(container.querySelector(".mention-me")?.textContent).toBe("@ana");
    const link = container.querySelector("a");
    expect(link?.getAttribute("href")).toBe("https://example.org/");
  });

  it("opens links through the OS, not in the webview", async () => {
    ipc.backend.on("openLink", () => null);
    const { container } = render(() => <Formatted body="see https://example.org/a" />);
    const link = container.querySelector("a") as HTMLAnchorElement;
    const click = new MouseEvent("click", { bubbles: true, cancelable: true });
    link.dispatchEvent(click);
    expect(click.defaultPrevented).toBe(true);
    await new Promise((r) => setTimeout(r, 0));
    expect(ipc.backend.callsTo("openLink")).toEqual([["https://example.org/a"]]);
  });
});
