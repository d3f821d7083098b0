// Call view (#call-view): joins the call, follows CallEvents through the CallModel and
// projects it onto the tiles, the participant list, the stats panel and the controls.

import {
  api,
  type CallSettings,
  callEvents,
  openFrameFeed,
  type RoomView,
  subscribe,
} from "../api";
import type { App, Screen } from "../app";
import { h } from "../dom";
import { FrameRenderer, LOCAL_KEY } from "../media/renderer";
import { notifyIfUnfocused } from "../platform";
import { toast, toastInfo } from "../toasts";
import { Controls } from "./controls";
import { DevicesPanel } from "./devices-panel";
import { CallModel } from "./model";
import { ParticipantList } from "./participants";
import { StatsPanel } from "./stats-panel";
import { TileGrid } from "./tiles";

function statusText(model: CallModel): string | null {
  if (model.phase === "joining") return "Joining the call…";
  if (model.phase === "reconnecting") return `Reconnecting (attempt ${model.reconnectAttempt})…`;
  return null;
}

export function callScreen(app: App, room: RoomView, initial: CallSettings): Screen {
  const settings: CallSettings = { ...initial };
  const model = new CallModel(app.me?.username ?? "me", settings.muted, settings.cameraOff);
  const tiles = new TileGrid();
  const people = new ParticipantList();
  const stats = new StatsPanel();
  const devices = new DevicesPanel(settings, (err) => app.fail(err));
  const renderer = new FrameRenderer(tiles.lookup);
  const feed = openFrameFeed(renderer.push, renderer.displaySize);
  const status = h("p", { id: "call-status", class: "call-status", role: "status" });
  let finished = false;

  const render = () => {
    const all = model.participants();
    tiles.sync(all, (id) => model.qualityOf(id));
    feed.setSources([LOCAL_KEY, ...all.filter((p) => !p.local).map((p) => p.id)]);
    people.sync(all);
    stats.render(model);
    controls.show(model.local.audioMuted, model.local.videoMuted, devices.open, stats.open);
    const text = statusText(model);
    status.textContent = text ?? "";
    status.hidden = text === null;
  };

  const finish = (message: string | null) => {
    if (finished) return;
    finished = true;
    app.go({ name: "rooms" });
    if (message) {
      toastInfo(message);
      void notifyIfUnfocused("Call ended", message);
    }
  };

  const setLocal = async (which: "audio" | "video") => {
    const local = model.local;
    const next = which === "audio" ? !local.audioMuted : !local.videoMuted;
    if (which === "audio") local.audioMuted = next;
    else local.videoMuted = next;
    render();
    try {
      if (which === "audio") await api.setMuted(next);
      else await api.setCameraOff(next);
    } catch (err) {
      if (which === "audio") local.audioMuted = !next;
      else local.videoMuted = !next;
      render();
      app.fail(err);
    }
  };

  const controls = new Controls({
    toggleMute: () => void setLocal("audio"),
    toggleCamera: () => void setLocal("video"),
    toggleDevices: () => {
      devices.open = !devices.open;
      render();
    },
    toggleStats: () => {
      stats.open = !stats.open;
      render();
    },
    leave: async () => {
      controls.leave.disabled = true;
      unlisten();
      try {
        await api.leaveCall();
      } catch (err) {
        console.warn("leaveCall failed", err);
      }
      finish(null);
    },
  });

  const unlisten = subscribe(callEvents, (ev) => {
    if (finished) return;
    const { notices, ended } = model.apply(ev);
    for (const n of notices) {
      toast(n.text, n.kind);
      if (n.notify) void notifyIfUnfocused(room.title, n.text);
    }
    if (ended !== null) {
      finish(`Call ended: ${ended}`);
      return;
    }
    render();
  });

  const el = h(
    "section",
    { id: "call-view", class: "screen call" },
    h("header", { class: "call-header" }, h("h1", {}, room.title), status),
    h(
      "div",
      { class: "call-body" },
      tiles.el,
      h("aside", { class: "call-side" }, people.el, devices.el, stats.el),
    ),
    controls.el,
  );
  render();

  api.joinCall(room.id, settings, feed).catch((err: unknown) => {
    if (finished) return;
    unlisten();
    finish(null);
    app.fail(err);
  });

  return {
    el,
    title: room.title,
    destroy: () => {
      unlisten();
      feed.close();
      renderer.destroy();
      tiles.destroy();
      controls.destroy();
      if (!finished) {
        // Left without "Leave" (e.g. the session ended): still hang up.
        finished = true;
        void api.leaveCall().catch(() => undefined);
      }
    },
  };
}
