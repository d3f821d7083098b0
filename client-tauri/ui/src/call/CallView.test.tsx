import { cleanup, render } from "@solidjs/testing-library";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CallEvent, CallSettings, ParticipantView } from "../api";
import { statsView } from "../test/fixtures";
import { buildFrame, PARTICIPANT_BYTES, PARTICIPANT_ID } from "../test/frames";
import { type FakeBackend, flush, IpcError } from "../test/ipc";

const ipc = vi.hoisted(() => ({ backend: null as unknown as FakeBackend }));
vi.mock("../bindings", async (importOriginal) => {
  const m = await import("../test/ipc");
  ipc.backend = m.fakeBackend(await importOriginal());
  return ipc.backend.module;
});

const { startCall } = await import("./session");
const { CallView } = await import("./CallView");
type Session = ReturnType<typeof startCall>;

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
const emit = (ev: CallEvent) => ipc.backend.emit("callEvent", ev);

describe("call view", () => {
  let session: Session;
  let fail: ReturnType<typeof vi.fn<(err: unknown) => void>>;
  let ended: (string | null)[];

  beforeEach(async () => {
    ipc.backend.reset();
    document.body.innerHTML = '<div id="toasts"></div>';
    for (const name of ["joinCall", "leaveCall", "setMuted", "setCameraOff"]) {
      ipc.backend.on(name, () => null);
    }
    ipc.backend.on("listDevices", () => ({
      cameras: [],
      microphones: [],
      speakers: [],
      notes: [],
    }));
    // No frames unless a test says otherwise: answer "none yet" after a while.
    ipc.backend.on("nextFrame", () => new Promise(() => {}));
    fail = vi.fn<(err: unknown) => void>();
    ended = [];
    session = startCall({
      room: { id: "r1", title: "Standup" },
      settings,
      username: "me",
      fail,
      onEnded: (m) => ended.push(m),
    });
    render(() => <CallView session={session} fail={fail} />);
    await flush();
  });
  afterEach(async () => {
    await session.leave();
    cleanup();
  });

  it("joins with the settings and shows the local tile before 'joined'", () => {
    expect(ipc.backend.callsTo("joinCall")).toEqual([["r1", settings]]);
    const tiles = $$("#tiles .tile");
    expect(tiles).toHaveLength(1);
    expect(tiles[0]?.dataset).toMatchObject({ local: "true", participantId: "local" });
    expect(tiles[0]?.querySelector(".tile-name")?.textContent).toBe("You");
    expect($("#call-status").textContent).toMatch(/Joining/);
    expect(ipc.backend.callsTo("nextFrame").map((a) => a[0])).toEqual(["local"]);
  });

  it("builds tiles and the participant list from 'joined' and later events", async () => {
    emit({
      type: "joined",
      roomId: "r1",
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
    await flush();
    expect(ipc.backend.callsTo("nextFrame").map((a) => a[0])).toContain(PARTICIPANT_ID);
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

  it("shows a peer that is connecting or lost", () => {
    emit({ type: "joined", roomId: "r1", participantId: "self", participants: [pv("a", "alice")] });
    emit({ type: "peerState", participantId: "a", state: "connecting" });
    const status = $('.tile[data-participant-id="a"] .tile-status');
    expect(status.textContent).toBe("Connecting…");
    emit({ type: "peerState", participantId: "a", state: "failed" });
    expect(status.textContent).toBe("Connection failed");
    emit({ type: "peerState", participantId: "a", state: "connected" });
    expect(status.hidden).toBe(true);
  });

  it("draws remote frames on the participant's tile", async () => {
    vi.stubGlobal("ImageData", class {});
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(
      () => ({ putImageData: () => {} }) as unknown as CanvasRenderingContext2D,
    );
    let remoteSent = false;
    let localSent = false;
    ipc.backend.on("nextFrame", (source: string) => {
      if (source === PARTICIPANT_ID && !remoteSent) {
        remoteSent = true;
        return buildFrame({ source: 1, counter: 12, id: PARTICIPANT_BYTES });
      }
      if (source === "local" && !localSent) {
        localSent = true;
        return buildFrame({ source: 0, counter: 3 });
      }
      return new Promise(() => {});
    });
    emit({
      type: "joined",
      roomId: "r1",
      participantId: "self",
      participants: [pv(PARTICIPANT_ID, "alice")],
    });
    await flush();
    await new Promise((r) => requestAnimationFrame(() => r(null)));
    await flush();
    const alice = $(`.tile[data-participant-id="${PARTICIPANT_ID}"]`);
    expect(alice.dataset.frames).toBe("1");
    expect(alice.dataset.frameCounter).toBe("12");
    expect($('.tile[data-local="true"]').dataset.frameCounter).toBe("3");
    vi.unstubAllGlobals();
  });

  it("shares a screen picked from the thumbnails, and stops", async () => {
    ipc.backend.on("listScreens", () => [
      {
        id: "monitor:60",
        kind: "monitor",
        name: "screen",
        width: 1280,
        height: 720,
        primary: true,
        thumbnail: "data:image/png;base64,iVBORw0KGgo=",
      },
    ]);
    ipc.backend.on("shareScreen", () => null);
    ipc.backend.on("stopScreenShare", () => null);
    expect($("#screen-picker")).toBeNull();
    $<HTMLButtonElement>("#share-screen").click();
    await flush();
    $<HTMLButtonElement>('#screen-picker [data-screen-id="monitor:60"]').click();
    await flush();
    expect($("#screen-picker")).toBeNull();
    expect(ipc.backend.callsTo("shareScreen")).toEqual([["monitor:60"]]);
    // Rust says when it runs: then the button stops it.
    expect($("#stop-screen-share")).toBeNull();
    emit({ type: "localScreen", source: "monitor:60", error: null });
    $<HTMLButtonElement>("#stop-screen-share").click();
    await flush();
    expect(ipc.backend.callsTo("stopScreenShare")).toHaveLength(1);
    emit({ type: "localScreen", source: null, error: null });
    expect($("#share-screen")).not.toBeNull();
    // A share that cannot start says why.
    emit({ type: "localScreen", source: null, error: "the window closed" });
    expect($("#toasts").textContent).toContain("Cannot share: the window closed");
  });

  it("shows a remote screen as a tile of its own, drawn from its own frames", async () => {
    vi.stubGlobal("ImageData", class {});
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(
      () => ({ putImageData: () => {} }) as unknown as CanvasRenderingContext2D,
    );
    let screenSent = false;
    ipc.backend.on("nextFrame", (source: string) => {
      if (source === `screen:${PARTICIPANT_ID}` && !screenSent) {
        screenSent = true;
        return buildFrame({ source: 2, width: 16, height: 9, id: PARTICIPANT_BYTES });
      }
      return new Promise(() => {});
    });
    emit({
      type: "joined",
      roomId: "r1",
      participantId: "self",
      participants: [pv(PARTICIPANT_ID, "alice")],
    });
    expect($$("#tiles .tile-screen")).toHaveLength(0);
    emit({ type: "screenShare", participantId: PARTICIPANT_ID, sharing: true });
    expect($("#toasts").textContent).toContain("alice is sharing their screen");
    const tile = $(`.tile-screen[data-screen-of="${PARTICIPANT_ID}"]`);
    expect(tile.querySelector(".tile-name")?.textContent).toBe("alice's screen");
    await flush();
    await new Promise((r) => requestAnimationFrame(() => r(null)));
    await flush();
    expect(ipc.backend.callsTo("nextFrame").map((a) => a[0])).toContain(`screen:${PARTICIPANT_ID}`);
    expect(tile.dataset.frames).toBe("1");
    expect($(`.tile[data-participant-id="${PARTICIPANT_ID}"]`).dataset.frames).toBeUndefined();
    emit({ type: "screenShare", participantId: PARTICIPANT_ID, sharing: false });
    expect($$("#tiles .tile-screen")).toHaveLength(0);
    vi.unstubAllGlobals();
  });

  it("mutes with the button and with Ctrl+D, camera with Ctrl+E", async () => {
    $<HTMLButtonElement>("#toggle-mute").click();
    expect($("#toggle-mute").getAttribute("aria-pressed")).toBe("true");
    await flush();
    expect(ipc.backend.callsTo("setMuted").at(-1)).toEqual([true]);
    expect($<HTMLElement>('.tile[data-local="true"] .tile-muted').hidden).toBe(false);
    const ev = new KeyboardEvent("keydown", { key: "d", ctrlKey: true, cancelable: true });
    window.dispatchEvent(ev);
    expect(ev.defaultPrevented).toBe(true);
    await flush();
    expect(ipc.backend.callsTo("setMuted").at(-1)).toEqual([false]);
    expect($("#toggle-mute").getAttribute("aria-pressed")).toBe("false");
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "e", ctrlKey: true }));
    await flush();
    expect(ipc.backend.callsTo("setCameraOff").at(-1)).toEqual([true]);
    expect($("#toggle-camera").getAttribute("aria-pressed")).toBe("true");
    expect($("#toggle-mute").title).toContain("Ctrl+D");
    expect($("#toggle-camera").title).toContain("Ctrl+E");
  });

  it("reverts the toggle when Rust refuses it", async () => {
    ipc.backend.on("setMuted", () => {
      throw new IpcError({ kind: "call", message: "no call" });
    });
    $<HTMLButtonElement>("#toggle-mute").click();
    await flush();
    expect($("#toggle-mute").getAttribute("aria-pressed")).toBe("false");
    expect(fail).toHaveBeenCalled();
  });

  it("shows a stats table per remote participant", () => {
    emit({ type: "joined", roomId: "r1", participantId: "self", participants: [pv("a", "alice")] });
    $<HTMLButtonElement>("#toggle-stats").click();
    expect($("#stats-panel").hidden).toBe(false);
    expect($("#toggle-stats").getAttribute("aria-expanded")).toBe("true");
    emit({
      type: "stats",
      stats: statsView({
        participantId: "a",
        userId: "u-a",
        rttMs: 35,
        sendKbps: 800,
        recvKbps: 900,
        jitterMs: 3,
        framesDecoded: 300,
        height: 360,
      }),
    });
    const table = $('#stats-panel table[data-participant-id="a"]');
    expect(table.textContent).toContain("35 ms");
    expect(table.textContent).toContain("640×360");
    expect($('.tile[data-participant-id="a"] .tile-quality').dataset.quality).toBe("good");
  });

  it("opens the devices panel and switches the source at once", async () => {
    ipc.backend.on("listDevices", () => ({
      cameras: [{ index: 0, name: "Cam" }],
      microphones: [],
      speakers: [],
      notes: [],
    }));
    ipc.backend.on("switchVideo", () => null);
    $<HTMLButtonElement>("#open-devices").click();
    await flush();
    expect($("#devices-panel").hidden).toBe(false);
    const pattern = $<HTMLInputElement>("#devices-use-test-pattern");
    expect(pattern.checked).toBe(true);
    pattern.click();
    await flush();
    expect(ipc.backend.callsTo("switchVideo")).toEqual([[{ kind: "camera", index: 0 }]]);
  });

  it("switches voice processing mid-call from the devices panel, and remembers it", async () => {
    ipc.backend.on("setVoiceProcessing", () => null);
    localStorage.removeItem("confab.voiceProcessing");
    $<HTMLButtonElement>("#open-devices").click();
    await flush();
    // Joined with nothing said about it: everything is on.
    const ns = $<HTMLInputElement>("#call-voice-noiseSuppression");
    for (const part of ["echoCancellation", "noiseSuppression", "gainControl"]) {
      expect($<HTMLInputElement>(`#call-voice-${part}`).checked).toBe(true);
    }
    // Noise suppression off: the call is told at once, the next call starts with it off.
    ns.click();
    await flush();
    const off = { echoCancellation: true, noiseSuppression: false, gainControl: true };
    expect(ipc.backend.callsTo("setVoiceProcessing")).toEqual([[off]]);
    expect(session.settings.voiceProcessing).toEqual(off);
    expect(JSON.parse(localStorage.getItem("confab.voiceProcessing") ?? "null")).toEqual(off);

    // The call has just ended under us: the switch goes back and the error is shown.
    ipc.backend.on("setVoiceProcessing", () => {
      throw new IpcError({ kind: "call", message: "no call" });
    });
    const aec = $<HTMLInputElement>("#call-voice-echoCancellation");
    aec.click();
    await flush();
    expect(aec.checked).toBe(true);
    expect(session.settings.voiceProcessing).toEqual(off);
    expect(fail).toHaveBeenCalledTimes(1);
  });

  it("ends with the reason when the call ends", () => {
    emit({ type: "ended", reason: "the room was deleted" });
    expect(ended).toEqual(["Call ended: the room was deleted"]);
    expect(session.ended()).toBe(true);
  });

  it("hangs up with Leave, and only once", async () => {
    $<HTMLButtonElement>("#leave-call").click();
    await flush();
    await session.leave();
    expect(ipc.backend.callsTo("leaveCall")).toHaveLength(1);
    expect(ended).toEqual([null]);
  });

  it("keeps running when the view goes away (the call bar takes over)", async () => {
    cleanup();
    await flush();
    expect(ipc.backend.callsTo("leaveCall")).toHaveLength(0);
    expect(session.ended()).toBe(false);
  });
});
