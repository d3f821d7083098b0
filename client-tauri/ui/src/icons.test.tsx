import { render } from "@solidjs/testing-library";
import { describe, expect, it } from "vitest";
import { ClockIcon, FileIcon, MegaphoneIcon, PaperclipIcon } from "./icons";
import { TickMark } from "./messenger/MessageItem";

// Emoji need an emoji font, which a bare Debian desktop lacks (it drew empty boxes): the
// app's own symbols are SVG line icons, hidden from assistive technology (their element
// carries the label), in the text's colour.
describe("icons", () => {
  it("are SVG drawings with no text, hidden from screen readers, in currentColor", () => {
    for (const Icon of [PaperclipIcon, FileIcon, MegaphoneIcon, ClockIcon]) {
      const { container, unmount } = render(() => <Icon />);
      const svg = container.querySelector("svg");
      expect(svg).not.toBeNull();
      expect(svg?.getAttribute("aria-hidden")).toBe("true");
      expect(svg?.getAttribute("stroke")).toBe("currentColor");
      expect(svg?.querySelector("path, circle")).not.toBeNull();
      expect(container.textContent).toBe("");
      unmount();
    }
  });

  it("draw the pending tick, which keeps its label", () => {
    const { container } = render(() => <TickMark tick="pending" />);
    const tick = container.querySelector("[data-testid='tick']");
    expect(tick?.querySelector("svg")).not.toBeNull();
    expect(tick?.textContent).toBe("");
    expect(tick?.getAttribute("aria-label")).toBeTruthy();
  });
});
