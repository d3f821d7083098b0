import { describe, expect, it } from "vitest";
import type { ParticipantView, StatsView } from "../api";
import { statsView } from "../test/fixtures";
import { CallModel } from "./model";

const pv = (
  id: string,
  username: string,
  over: Partial<ParticipantView> = {},
): ParticipantView => ({
  participantId: id,
  userId: `u-${id}`,
  username,
  audioMuted: false,
  videoMuted: false,
  ...over,
});

const stats = (id: string, over: Partial<StatsView> = {}): StatsView =>
  statsView({
    participantId: id,
    userId: `u-${id}`,
    rttMs: 20,
    sendKbps: 100,
    recvKbps: 100,
    jitterMs: 1,
    framesDecoded: 10,
    ...over,
  });

function joined(): CallModel {
  const m = new CallModel("me", true, false);
  m.apply({
    type: "joined",
    roomId: "r1",
    participantId: "self",
    participants: [pv("self", "me", { audioMuted: true }), pv("a", "alice")],
  });
  return m;
}

describe("CallModel", () => {
  it("starts with only the local participant under the placeholder id", () => {
    const m = new CallModel("me", true, true);
    expect(m.phase).toBe("joining");
    expect(m.participants().map((p) => [p.id, p.local, p.audioMuted, p.videoMuted])).toEqual([
      ["local", true, true, true],
    ]);
  });

  it("takes the local id and the others from 'joined', without toasts", () => {
    const m = new CallModel("me", true, false);
    const out = m.apply({
      type: "joined",
      roomId: "r1",
      participantId: "self",
      participants: [pv("self", "me", { audioMuted: true }), pv("a", "alice")],
    });
    expect(out.notices).toEqual([]);
    expect(m.phase).toBe("joined");
    expect(m.participants().map((p) => p.id)).toEqual(["self", "a"]);
  });

  it("announces joins and leaves by username", () => {
    const m = joined();
    const a = m.apply({ type: "participantJoined", participant: pv("b", "bob") });
    expect(a.notices).toEqual([{ kind: "info", text: "bob joined", notify: true }]);
    const b = m.apply({ type: "participantLeft", participantId: "a", userId: "u-a" });
    expect(b.notices).toEqual([{ kind: "info", text: "alice left", notify: true }]);
    expect(m.participants().map((p) => p.username)).toEqual(["me", "bob"]);
  });

  it("does not duplicate a participant joined twice or announce itself", () => {
    const m = joined();
    expect(m.apply({ type: "participantJoined", participant: pv("a", "alice") }).notices).toEqual(
      [],
    );
    expect(m.apply({ type: "participantJoined", participant: pv("self", "me") }).notices).toEqual(
      [],
    );
    expect(m.participants()).toHaveLength(2);
    expect(m.apply({ type: "participantLeft", participantId: "zz", userId: "x" }).notices).toEqual(
      [],
    );
  });

  it("applies media state to remote and local participants", () => {
    const m = joined();
    m.apply({ type: "mediaState", participantId: "a", audioMuted: true, videoMuted: true });
    m.apply({ type: "mediaState", participantId: "self", audioMuted: false, videoMuted: true });
    expect(m.remote("a")).toMatchObject({ audioMuted: true, videoMuted: true });
    expect(m.local).toMatchObject({ audioMuted: false, videoMuted: true });
  });

  it("computes quality from consecutive stats and forgets them when the peer leaves", () => {
    const m = joined();
    expect(m.qualityOf("a")).toBe("unknown");
    m.apply({ type: "stats", stats: stats("a", { packetsLost: 5 }) });
    expect(m.qualityOf("a")).toBe("good");
    m.apply({ type: "stats", stats: stats("a", { packetsLost: 50 }) });
    expect(m.qualityOf("a")).toBe("poor");
    m.apply({ type: "participantLeft", participantId: "a", userId: "u-a" });
    expect(m.statsOf("a")).toBeUndefined();
  });

  it("announces reconnecting once, and the end with its reason", () => {
    const m = joined();
    expect(m.apply({ type: "reconnecting", attempt: 1 }).notices).toHaveLength(1);
    expect(m.apply({ type: "reconnecting", attempt: 2 }).notices).toHaveLength(0);
    expect(m.reconnectAttempt).toBe(2);
    expect(m.apply({ type: "error", message: "boom" }).notices[0]).toMatchObject({
      kind: "error",
      text: "boom",
    });
    expect(m.apply({ type: "ended", reason: "kicked" }).ended).toBe("kicked");
  });

  it("replaces the participant list when joined again after reconnecting", () => {
    const m = joined();
    m.apply({ type: "stats", stats: stats("a") });
    m.apply({ type: "reconnecting", attempt: 1 });
    m.apply({
      type: "joined",
      roomId: "r1",
      participantId: "self2",
      participants: [pv("c", "carol")],
    });
    expect(m.participants().map((p) => p.id)).toEqual(["self2", "c"]);
    expect(m.statsOf("a")).toBeUndefined();
    expect(m.phase).toBe("joined");
  });
});
