// Rooms screen: create a room, join one (id, invite link or token), and the list of rooms.

import { api, type RoomView } from "../api";
import type { App, Screen } from "../app";
import { h } from "../dom";
import {
  type FieldMap,
  field,
  formError,
  reportFormError,
  showFieldErrors,
  whileBusy,
} from "../forms";
import { appHeader } from "../header";
import { toastSuccess } from "../toasts";
import {
  maxParticipantsError,
  ROOM_DEFAULT_PARTICIPANTS,
  ROOM_MAX_PARTICIPANTS,
  ROOM_MIN_PARTICIPANTS,
  ROOM_TITLE_MAX,
  roomTitleError,
} from "../validation";
import { roomItem } from "./room-list";

export function roomsScreen(app: App): Screen {
  let alive = true;
  const list = h("ul", {
    id: "rooms-list",
    class: "rooms-list",
    "aria-labelledby": "rooms-heading",
  });
  const empty = h(
    "p",
    { id: "rooms-empty", class: "empty", hidden: true },
    "You are not in any room yet. Create one, or join one with an invite link.",
  );
  const refresh = h("button", { id: "rooms-refresh", type: "button", class: "ghost" }, "Refresh");

  const show = (rooms: RoomView[]) => {
    list.replaceChildren(...rooms.map((r) => roomItem(r, { app, onLeft: () => void load() })));
    empty.hidden = rooms.length > 0;
  };
  const load = async () => {
    refresh.disabled = true;
    list.setAttribute("aria-busy", "true");
    try {
      const rooms = await api.listRooms();
      if (alive) show(rooms);
    } catch (err) {
      if (alive) app.fail(err);
    } finally {
      refresh.disabled = false;
      list.setAttribute("aria-busy", "false");
    }
  };
  refresh.addEventListener("click", () => void load());

  const el = h(
    "section",
    { id: "rooms-screen", class: "screen" },
    appHeader(app),
    h(
      "div",
      { class: "rooms-layout" },
      h(
        "div",
        { class: "stack rooms-forms" },
        h("h1", {}, "Rooms"),
        createForm(app, load),
        joinForm(app, load),
      ),
      h(
        "div",
        { class: "card stack rooms-panel" },
        h("div", { class: "row spread" }, h("h2", { id: "rooms-heading" }, "Your rooms"), refresh),
        list,
        empty,
      ),
    ),
  );
  void load();
  return {
    el,
    title: "Rooms",
    destroy: () => {
      alive = false;
    },
  };
}

function createForm(app: App, reload: () => Promise<void>): HTMLFormElement {
  const title = field({
    id: "room-title",
    label: "Room title",
    attrs: { maxlength: ROOM_TITLE_MAX, required: true, autocomplete: "off" },
  });
  const max = field({
    id: "room-max",
    label: "Maximum participants",
    attrs: {
      type: "number",
      min: ROOM_MIN_PARTICIPANTS,
      max: ROOM_MAX_PARTICIPANTS,
      step: 1,
      value: ROOM_DEFAULT_PARTICIPANTS,
      required: true,
    },
  });
  const fields: FieldMap = {
    title: [title.input, "Title"],
    max_participants: [max.input, "Maximum participants"],
  };
  const form = h(
    "form",
    {
      id: "create-form",
      class: "card stack",
      novalidate: true,
      "aria-labelledby": "create-heading",
    },
    h("h2", { id: "create-heading" }, "Create a room"),
    title.wrap,
    max.wrap,
    formError("create-form"),
    h("button", { id: "room-create", type: "submit", class: "primary" }, "Create room"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const errors: Record<string, string> = {};
    const te = roomTitleError(title.input.value);
    const me = maxParticipantsError(max.input.value);
    if (te) errors.title = te;
    if (me) errors.max_participants = me;
    if (showFieldErrors(form, fields, errors)) return;
    await whileBusy(
      form,
      async () => {
        const room = await api.createRoom(title.input.value.trim(), Number(max.input.value));
        toastSuccess(`Room “${room.title}” created`);
        title.input.value = "";
        await reload();
      },
      (err) => reportFormError(app, form, fields, err),
    );
  });
  return form;
}

function joinForm(app: App, reload: () => Promise<void>): HTMLFormElement {
  const target = field({
    id: "join-target",
    label: "Room id or invite link",
    hint: "Paste an invite link, an invite token or a room id.",
    attrs: { required: true, autocomplete: "off", spellcheck: "false" },
  });
  const fields: FieldMap = { target: [target.input, "Invite"] };
  const form = h(
    "form",
    { id: "join-form", class: "card stack", novalidate: true, "aria-labelledby": "join-heading" },
    h("h2", { id: "join-heading" }, "Join a room"),
    target.wrap,
    formError("join-form"),
    h("button", { id: "join-submit", type: "submit" }, "Join room"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = target.input.value.trim();
    if (
      showFieldErrors(form, fields, value ? {} : { target: "Paste an invite link or a room id" })
    ) {
      return;
    }
    await whileBusy(
      form,
      async () => {
        const room = await api.joinRoom(value);
        toastSuccess(`You joined “${room.title}”`);
        target.input.value = "";
        await reload();
      },
      (err) => reportFormError(app, form, fields, err),
    );
  });
  return form;
}
