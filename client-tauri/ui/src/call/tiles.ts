// The #tiles grid: one .tile per participant (the local one first), kept in step with the
// call model, and laid out with gridFor whenever the count or the area changes.

import { h } from "../dom";
import { type FrameTarget, LOCAL_KEY } from "../media/renderer";
import { gridFor } from "./grid";
import type { Participant } from "./model";
import type { Quality } from "./quality";

const GAP_PX = 8;

interface Tile {
  el: HTMLElement;
  canvas: HTMLCanvasElement;
  name: HTMLElement;
  muted: HTMLElement;
  quality: HTMLElement;
  placeholder: HTMLElement;
  avatar: HTMLElement;
  status: HTMLElement;
}

const QUALITY_TEXT: Record<Quality, string> = {
  good: "Connection: good",
  fair: "Connection: fair",
  poor: "Connection: poor",
  unknown: "Connection: unknown",
};

function makeTile(): Tile {
  const canvas = h("canvas", { class: "tile-video" });
  const avatar = h("span", { class: "tile-avatar", "aria-hidden": "true" });
  const placeholder = h(
    "div",
    { class: "tile-placeholder", hidden: true },
    avatar,
    h("span", { class: "tile-placeholder-text" }, "Camera off"),
  );
  const name = h("span", { class: "tile-name" });
  const muted = h("span", {
    class: "tile-muted",
    role: "img",
    "aria-label": "Microphone muted",
    hidden: true,
  });
  const quality = h("span", { class: "tile-quality", role: "img", "data-quality": "unknown" });
  const status = h("span", { class: "tile-status", hidden: true });
  const el = h(
    "div",
    { class: "tile" },
    canvas,
    placeholder,
    status,
    h("div", { class: "tile-bar" }, name, muted, quality),
  );
  return { el, canvas, name, muted, quality, placeholder, avatar, status };
}

function peerStatusText(state: string | null): string | null {
  if (state === null || state === "connected") return null;
  if (state === "new" || state === "connecting" || state === "checking") return "Connecting…";
  if (state === "disconnected") return "Connection interrupted…";
  if (state === "failed") return "Connection failed";
  return null;
}

export class TileGrid {
  readonly el: HTMLElement;
  private readonly tiles = new Map<string, Tile>();
  private readonly local: Tile;
  private observer: ResizeObserver | null = null;
  private lastCount = -1;

  constructor() {
    this.el = h("div", { id: "tiles", class: "tiles", role: "list", "aria-label": "Video tiles" });
    this.local = makeTile();
    this.local.el.dataset.local = "true";
    this.el.append(this.local.el);
    if (typeof ResizeObserver !== "undefined") {
      this.observer = new ResizeObserver(() => this.layout(true));
      this.observer.observe(this.el);
    }
  }

  /** Frame target for the renderer: LOCAL_KEY is the local tile, else a participant id. */
  lookup = (key: string): FrameTarget | null => {
    const t = key === LOCAL_KEY ? this.local : this.tiles.get(key);
    return t ? { tile: t.el, canvas: t.canvas } : null;
  };

  sync(participants: Participant[], qualityOf: (id: string) => Quality): void {
    const seen = new Set<string>();
    for (const p of participants) {
      let tile: Tile;
      if (p.local) {
        tile = this.local;
      } else {
        seen.add(p.id);
        const existing = this.tiles.get(p.id);
        if (existing) {
          tile = existing;
        } else {
          tile = makeTile();
          tile.el.dataset.local = "false";
          this.tiles.set(p.id, tile);
          this.el.append(tile.el);
        }
      }
      this.update(tile, p, p.local ? "unknown" : qualityOf(p.id));
    }
    for (const [id, tile] of this.tiles) {
      if (!seen.has(id)) {
        tile.el.remove();
        this.tiles.delete(id);
      }
    }
    this.layout(false);
  }

  layout(force: boolean): void {
    const count = this.tiles.size + 1;
    if (!force && count === this.lastCount) return;
    this.lastCount = count;
    const { columns, rows } = gridFor(
      count,
      this.el.clientWidth,
      this.el.clientHeight,
      16 / 9,
      GAP_PX,
    );
    this.el.style.setProperty("--columns", String(columns));
    this.el.style.setProperty("--rows", String(rows));
  }

  destroy(): void {
    this.observer?.disconnect();
  }

  private update(t: Tile, p: Participant, quality: Quality): void {
    const label = p.local ? "You" : p.username;
    t.el.dataset.participantId = p.id;
    t.el.setAttribute("role", "listitem");
    t.el.setAttribute("aria-label", label);
    t.el.dataset.audioMuted = String(p.audioMuted);
    t.el.dataset.videoMuted = String(p.videoMuted);
    t.name.textContent = label;
    t.canvas.setAttribute("aria-label", `Video of ${label}`);
    t.muted.hidden = !p.audioMuted;
    t.placeholder.hidden = !p.videoMuted;
    t.canvas.hidden = p.videoMuted;
    t.avatar.textContent = (p.username[0] ?? "?").toUpperCase();
    t.quality.dataset.quality = quality;
    t.quality.setAttribute("aria-label", QUALITY_TEXT[quality]);
    t.quality.title = QUALITY_TEXT[quality];
    t.quality.hidden = p.local;
    const status = peerStatusText(p.peerState);
    t.status.hidden = status === null;
    t.status.textContent = status ?? "";
  }
}
