// One row per room in #rooms-list: "Join call", "Copy invite link" and "Leave room" (with an
// inline confirmation instead of a blocking window.confirm).

import { api, type RoomView } from "../api";
import type { App } from "../app";
import { h } from "../dom";
import { copyText } from "../platform";
import { toastError, toastSuccess } from "../toasts";

export interface RoomActions {
  app: App;
  /** Called after the user left a room, to drop its row and refresh. */
  onLeft(room: RoomView): void;
}

export function roomItem(room: RoomView, actions: RoomActions): HTMLLIElement {
  const titleId = `room-${room.id}-title`;
  const btn = (cls: string, label: string) =>
    h("button", { type: "button", class: cls, "aria-describedby": titleId }, label);
  const call = btn("room-call primary", "Join call");
  const invite = btn("room-invite", "Copy invite link");
  const leave = btn("room-leave danger", "Leave room");
  const buttons = h("div", { class: "room-actions" }, call, invite, leave);
  const li = h(
    "li",
    { "data-room-id": room.id, class: "room" },
    h(
      "div",
      { class: "room-info" },
      h("span", { id: titleId, class: "room-title" }, room.title),
      h(
        "span",
        { class: "room-members muted" },
        `${room.memberCount}/${room.maxParticipants} members${room.isOwner ? " · owner" : ""}`,
      ),
    ),
    buttons,
  );

  call.addEventListener("click", () => actions.app.go({ name: "prejoin", room }));

  invite.addEventListener("click", async () => {
    invite.disabled = true;
    try {
      const link = await api.createInvite(room.id);
      try {
        await copyText(link.url);
        toastSuccess("Invite link copied");
      } catch {
        toastError(`Could not copy to the clipboard. The invite link is: ${link.url}`);
      }
    } catch (err) {
      actions.app.fail(err);
    } finally {
      invite.disabled = false;
    }
  });

  leave.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "room-leave-confirm danger" }, "Leave");
    const no = h("button", { type: "button", class: "room-leave-cancel" }, "Cancel");
    const ask = h(
      "div",
      { class: "room-actions", role: "group", "aria-label": `Leave ${room.title}?` },
      h("span", {}, "Leave this room?"),
      yes,
      no,
    );
    buttons.replaceWith(ask);
    yes.focus();
    no.addEventListener("click", () => {
      ask.replaceWith(buttons);
      leave.focus();
    });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await api.leaveRoom(room.id);
        toastSuccess(`You left ${room.title}`);
        actions.onLeft(room);
      } catch (err) {
        ask.replaceWith(buttons);
        actions.app.fail(err);
      }
    });
  });
  return li;
}
