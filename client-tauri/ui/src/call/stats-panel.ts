// #stats-panel: one table per remote participant (round trip, bitrates, loss, jitter, frame
// rate, resolution), refreshed while the panel is open.

import { h } from "../dom";
import type { CallModel } from "./model";
import { formatStats } from "./stats-format";

export class StatsPanel {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;

  constructor() {
    this.body = h("div", { class: "stats-tables" });
    this.el = h(
      "section",
      { id: "stats-panel", class: "side-panel", hidden: true, "aria-labelledby": "stats-heading" },
      h("h2", { id: "stats-heading" }, "Statistics"),
      this.body,
    );
  }

  get open(): boolean {
    return !this.el.hidden;
  }

  set open(value: boolean) {
    this.el.hidden = !value;
  }

  render(model: CallModel): void {
    if (!this.open) return;
    const tables: HTMLElement[] = [];
    for (const p of model.participants()) {
      if (p.local) continue;
      const stats = model.statsOf(p.id);
      const rows = stats
        ? formatStats(stats).map(([label, value]) =>
            h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, value)),
          )
        : [h("tr", {}, h("td", { colspan: 2 }, "Waiting for statistics…"))];
      tables.push(
        h(
          "table",
          { class: "stats-table", "data-participant-id": p.id },
          h("caption", {}, p.username),
          h("tbody", {}, ...rows),
        ),
      );
    }
    if (tables.length === 0)
      tables.push(h("p", { class: "empty" }, "Nobody else is in the call yet."));
    this.body.replaceChildren(...tables);
  }
}
