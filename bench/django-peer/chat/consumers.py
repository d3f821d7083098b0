"""The chat consumer, written the way Django Channels chat apps do it (the Channels
tutorial's, and the seed apps'): one connection per room, the room in the URL
(`/chat/<room id>`), the connection in the room's group; each message is saved through
the ORM (`database_sync_to_async`) and then `group_send` to the room.

It speaks Confab's chat messages over the relay consumer's `auth` (the same JWT check):
`send_message {room_id, client_id, body}` is answered with `message_ack {client_id,
message}`, and every other connection of the room gets `message_created {message}`;
`message.seq` is the row's autoincrement id (increasing, not dense per room).
"""

import uuid

from channels.db import database_sync_to_async

from chat.models import Message, Room
from peer.consumers import KNOWN_TYPES, SignalConsumer, _uuid, dumps

BODY_MAX = 4000
CLIENT_ID_MAX = 64


def room_group(room):
    return "chat." + room


def message_json(m):
    """A Message row in Confab's `Message` shape (shared::api::Message)."""
    return {
        # Confab's message ids are UUIDs; this one is the row id written as one.
        "id": str(uuid.UUID(int=m.id)),
        "room_id": str(m.room_id),
        "seq": m.id,
        "rev": m.id,
        "kind": "text",
        "author": str(m.author),
        "body": m.body,
        "reply_to": None,
        "reactions": [],
        "mentions": [],
        "created_at": m.created_at.isoformat(),
        "edited_at": None,
        "deleted": False,
        "client_id": m.client_id,
        "author_blocked": False,
    }


@database_sync_to_async
def ensure_room(room):
    Room.objects.get_or_create(id=room)


@database_sync_to_async
def save_message(room, author, client_id, body):
    return Message.objects.create(room_id=room, author=author, client_id=client_id, body=body)


def _bad_client_id(value):
    return (
        not isinstance(value, str)
        or not 1 <= len(value) <= CLIENT_ID_MAX
        or any(c.isspace() or not c.isprintable() for c in value)
    )


def _bad_body(value):
    return (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > BODY_MAX
        or any(not c.isprintable() and c not in "\n\r\t" for c in value)
    )


class ChatConsumer(SignalConsumer):
    known_types = KNOWN_TYPES | {"send_message"}
    chat_room = None

    async def _authenticated(self, user_id):
        # The group is joined before `welcome`: a client that has its welcome gets every
        # message sent to the room from then on.
        room = str(self.scope["url_route"]["kwargs"]["room_id"])
        await ensure_room(room)
        await self.channel_layer.group_add(room_group(room), self.channel_name)
        self.chat_room = room
        return True

    async def disconnect(self, code):
        if self.chat_room is not None:
            await self.channel_layer.group_discard(room_group(self.chat_room), self.channel_name)
        await super().disconnect(code)

    async def _other(self, kind, msg):
        if kind != "send_message":
            await super()._other(kind, msg)
            return
        client_id = msg.get("client_id")
        if _bad_client_id(client_id):
            await self._error("validation", "client_id must be 1-64 visible characters", kind)
            return
        if _uuid(msg.get("room_id")) != self.chat_room:
            await self._error("not_found", "no such room", kind, client_id)
            return
        body = msg.get("body")
        if _bad_body(body):
            await self._error("validation", "body must be 1-4000 characters, not blank", kind, client_id)
            return
        message = message_json(await save_message(self.chat_room, self.user_id, client_id, body))
        created = dumps({"type": "message_created", "message": message})
        await self.channel_layer.group_send(
            room_group(self.chat_room),
            {"type": "chat.message", "text": created, "exclude": self.channel_name},
        )
        await self.send(text_data=dumps({"type": "message_ack", "client_id": client_id, "message": message}))

    async def chat_message(self, event):
        if event.get("exclude") != self.channel_name:
            await self.send(text_data=event["text"])
