// The participant list (#participants) with the count in its heading.

import { h } from "../dom";
import type { Participant } from "./model";

export class ParticipantList {
  readonly el: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly count: HTMLElement;

  constructor() {
    this.count = h("span", { id: "participant-count" }, "1");
    this.list = h("ul", {
      id: "participants",
      class: "participants",
      "aria-labelledby": "participants-heading",
    });
    this.el = h(
      "section",
      { class: "side-panel", "aria-labelledby": "participants-heading" },
      h("h2", { id: "participants-heading" }, "Participants (", this.count, ")"),
      this.list,
    );
  }

  sync(participants: Participant[]): void {
    this.count.textContent = String(participants.length);
    this.list.replaceChildren(
      ...participants.map((p) =>
        h(
          "li",
          { "data-participant-id": p.id, "data-local": p.local ? "true" : null },
          h("span", { class: "participant-name" }, p.local ? "You" : p.username),
          p.local ? h("span", { class: "muted" }, ` (${p.username})`) : null,
          p.audioMuted ? h("span", { class: "badge" }, "muted") : null,
          p.videoMuted ? h("span", { class: "badge" }, "camera off") : null,
        ),
      ),
    );
  }
}
