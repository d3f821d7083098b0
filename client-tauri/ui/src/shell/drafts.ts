// Drafts that survive a restart: the composer's per-room texts (messenger/Composer's
// Drafts), each change written to Rust (the outbox's SQLite file) a moment after the
// typing stops, and the last run's drafts filled in when the shell starts.

import { Drafts } from "../messenger/Composer";
import { LIMITS } from "../validation";

/** How long after the last keystroke a room's draft is written. */
export const SAVE_AFTER_MS = 400;

export class SavedDrafts extends Drafts {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly latest = new Map<string, string>();

  constructor(
    private readonly save: (roomId: string, body: string) => Promise<unknown>,
    private readonly delayMs = SAVE_AFTER_MS,
  ) {
    super();
  }

  /** The drafts an earlier run kept; a room typed in since keeps what was typed. */
  fill(kept: readonly { roomId: string; body: string }[]): void {
    for (const d of kept) {
      if (!this.latest.has(d.roomId) && super.get(d.roomId) === "") super.set(d.roomId, d.body);
    }
  }

  override set(room: string, text: string): void {
    if (this.get(room) === text) return;
    super.set(room, text);
    // Longer than a message may be: it cannot be sent as it is, so it is not kept either
    // (the last shorter one stays saved).
    if (Array.from(text).length > LIMITS.messageBodyMax) return;
    this.latest.set(room, text);
    clearTimeout(this.timers.get(room));
    this.timers.set(
      room,
      setTimeout(() => this.write(room), this.delayMs),
    );
  }

  /** Writes every change still waiting (the shell is going away). */
  flush(): void {
    for (const room of [...this.timers.keys()]) this.write(room);
  }

  private write(room: string): void {
    clearTimeout(this.timers.get(room));
    this.timers.delete(room);
    const body = this.latest.get(room);
    if (body === undefined) return;
    this.save(room, body).catch((e: unknown) => console.warn("draft not saved", e));
  }
}
