import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CallEvent, CallSettings, ParticipantView, RoomView } from "../api";
import type { App } from "../app";
import { buildFrame, PARTICIPANT_BYTES, PARTICIPANT_ID } from "../test/frames";

let emit: (ev: CallEvent) => void = () => {};
let pushFrame: (buf: ArrayBuffer) => void = () => {};
const feed = { restart: vi.fn(), setSources: vi.fn(), close: vi.fn() };

vi.mock("../api", async (importOriginal) => {
  const real = await importOriginal<typeof import("../api")>();
  return {
    ...real,
    api: {
      joinCall: vi.fn(async () => null),
      leaveCall: vi.fn(async () => null),
      setMuted: vi.fn(async () => null),
      setCameraOff: vi.fn(async () => null),
      listDevices: vi.fn(async () => ({ cameras: [], microphones: [], speakers: [], notes: [] })),
    },
    subscribe: vi.fn((_event: unknown, cb: (ev: CallEvent) => void) => {
      emit = cb;
      return () => {
        emit = () => {};
      };
    }),
    openFrameFeed: vi.fn((onFrame: (buf: ArrayBuffer) => void) => {
      pushFrame = onFrame;
      return feed;
    }),
  };
});
vi.mock("../platform", () => ({ notifyIfUnfocused: vi.fn(async () => {}), copyText: vi.fn() }));

const { api, ApiError } = await import("../api");
const { callScreen } = await import("./view");

const room: RoomView = {
  id: "r1",
  title: "Standup",
  ownerId: "u1",
  isOwner: true,
  maxParticipants: 8,
  memberCount: 2,
  createdAt: "2025-01-01T00:00:00Z",
};
const settings: CallSettings = {
  video: { kind: "testPattern" },
  audio: { kind: "tone" },
  speaker: null,
  muted: false,
  cameraOff: false,
};
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

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const $$ = (sel: string) => Array.from(document.querySelectorAll<HTMLElement>(sel));

describe("call view", () => {
  let app: App;
  let destroy: (() => void) | undefined;

  beforeEach(() => {
    vi.clearAllMocks();
    document.body.innerHTML = '<div id="toasts"></div>';
    app = {
      me: { id: "u1", username: "me", email: "me@example.com", displayName: null },
      serverUrl: "http://127.0.0.1:8080",
      go: vi.fn(),
      fail: vi.fn(),
      signedOut: vi.fn(),
    };
    const screen = callScreen(app, room, settings);
    destroy = screen.destroy;
    document.body.append(screen.el);
  });

  afterEach(() => destroy?.());

  it("joins with the settings and shows the local tile before 'joined'", () => {
    expect(api.joinCall).toHaveBeenCalledWith("r1", settings, feed);
    expect(feed.setSources).toHaveBeenLastCalledWith(["local"]);
    const tiles = $$("#tiles .tile");
    expect(tiles).toHaveLength(1);
    expect(tiles[0]?.dataset).toMatchObject({ local: "true", participantId: "local" });
    expect(tiles[0]?.querySelector(".tile-name")?.textContent).toBe("You");
    expect($("#call-status").textContent).toMatch(/Joining/);
  });

  it("builds tiles and the participant list from 'joined' and later events", () => {
    emit({
      type: "joined",
      participantId: "self",
      participants: [pv("self", "me"), pv(PARTICIPANT_ID, "alice")],
    });
    expect($$("#tiles .tile").map((t) => t.dataset.participantId)).toEqual([
      "self",
      PARTICIPANT_ID,
    ]);
    expect($$("#participants li").map((li) => li.dataset.participantId)).toEqual([
      "self",
      PARTICIPANT_ID,
    ]);
    expect($("#participants-heading").textContent).toBe("Participants (2)");
    expect($("#call-status").hidden).toBe(true);
    expect(feed.setSources).toHaveBeenLastCalledWith(["local", PARTICIPANT_ID]);

    emit({
      type: "participantJoined",
      participant: pv("b", "bob", { audioMuted: true, videoMuted: true }),
    });
    expect($("#toasts").textContent).toContain("bob joined");
    const bob = $('.tile[data-participant-id="b"]');
    expect(bob.querySelector<HTMLElement>(".tile-muted")?.hidden).toBe(false);
    expect(bob.querySelector<HTMLElement>(".tile-muted")?.getAttribute("aria-label")).toBeTruthy();
    expect(bob.querySelector<HTMLElement>(".tile-placeholder")?.hidden).toBe(false);

    emit({ type: "participantLeft", participantId: "b", userId: "u-b" });
    expect($('.tile[data-participant-id="b"]')).toBeNull();
    expect($("#toasts").textContent).toContain("bob left");
  });

  it("draws remote frames on the participant's tile", async () => {
    vi.stubGlobal("ImageData", class {});
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(
      () => ({ putImageData: () => {} }) as unknown as CanvasRenderingContext2D,
    );
    emit({ type: "joined", participantId: "self", participants: [pv(PARTICIPANT_ID, "alice")] });
    pushFrame(buildFrame({ source: 1, counter: 12, id: PARTICIPANT_BYTES }));
    pushFrame(buildFrame({ source: 0, counter: 3 }));
    await new Promise((r) => requestAnimationFrame(() => r(null)));
    const alice = $(`.tile[data-participant-id="${PARTICIPANT_ID}"]`);
    expect(alice.dataset.frames).toBe("1");
    expect(alice.dataset.frameCounter).toBe("12");
    expect($('.tile[data-local="true"]').dataset.frameCounter).toBe("3");
    vi.unstubAllGlobals();
  });

  it("mutes with the button and with Ctrl+D, camera with Ctrl+E", async () => {
    $<HTMLButtonElement>("#toggle-mute").click();
    expect($("#toggle-mute").getAttribute("aria-pressed")).toBe("true");
    expect(api.setMuted).toHaveBeenLastCalledWith(true);
    expect($<HTMLElement>('.tile[data-local="true"] .tile-muted').hidden).toBe(false);

    const ev = new KeyboardEvent("keydown", { key: "d", ctrlKey: true, cancelable: true });
    window.dispatchEvent(ev);
    expect(ev.defaultPrevented).toBe(true);
    expect(api.setMuted).toHaveBeenLastCalledWith(false);
    expect($("#toggle-mute").getAttribute("aria-pressed")).toBe("false");

    window.dispatchEvent(new KeyboardEvent("keydown", { key: "e", ctrlKey: true }));
    expect(api.setCameraOff).toHaveBeenLastCalledWith(true);
    expect($("#toggle-camera").getAttribute("aria-pressed")).toBe("true");
    expect($("#toggle-mute").title).toContain("Ctrl+D");
    expect($("#toggle-camera").title).toContain("Ctrl+E");
  });

  it("reverts the toggle when Rust refuses it", async () => {
    vi.mocked(api.setMuted).mockRejectedValueOnce(
      new ApiError({ kind: "call", message: "no call" }),
    );
    $<HTMLButtonElement>("#toggle-mute").click();
    await new Promise((r) => setTimeout(r, 0));
    expect($("#toggle-mute").getAttribute("aria-pressed")).toBe("false");
    expect(app.fail).toHaveBeenCalled();
  });

  it("shows a stats table per remote participant", () => {
    emit({ type: "joined", participantId: "self", participants: [pv("a", "alice")] });
    $<HTMLButtonElement>("#toggle-stats").click();
    expect($("#stats-panel").hidden).toBe(false);
    expect($("#toggle-stats").getAttribute("aria-expanded")).toBe("true");
    emit({
      type: "stats",
      stats: {
        participantId: "a",
        userId: "u-a",
        rttMs: 35,
        sendKbps: 800,
        recvKbps: 900,
        packetsLost: 0,
        jitterMs: 3,
        framesDecoded: 300,
        fps: 30,
        width: 640,
        height: 360,
      },
    });
    const table = $('#stats-panel table[data-participant-id="a"]');
    expect(table.textContent).toContain("35 ms");
    expect(table.textContent).toContain("640×360");
    expect($('.tile[data-participant-id="a"] .tile-quality').dataset.quality).toBe("good");
  });

  it("goes back to Rooms with the reason when the call ends", () => {
    emit({ type: "ended", reason: "the room was deleted" });
    expect(app.go).toHaveBeenCalledWith({ name: "rooms" });
    expect($("#toasts").textContent).toContain("the room was deleted");
  });

  it("stops the frame feed when the screen goes", () => {
    destroy?.();
    destroy = undefined;
    expect(feed.close).toHaveBeenCalled();
    expect(api.leaveCall).toHaveBeenCalledTimes(1); // left without "Leave": still hangs up
  });

  it("hangs up with Leave", async () => {
    $<HTMLButtonElement>("#leave-call").click();
    await new Promise((r) => setTimeout(r, 0));
    expect(api.leaveCall).toHaveBeenCalledTimes(1);
    expect(app.go).toHaveBeenCalledWith({ name: "rooms" });
  });
});
