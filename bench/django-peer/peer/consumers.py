"""The relay consumer: a subset of Confab's signaling protocol (protocols 1 and 2: the
call messages are the same in both). `chat/consumers.py` builds the chat consumer on it.

auth -> welcome + presence_snapshot; join_call / leave_call; offer / answer /
ice_candidate relayed to one participant of the same call; ping -> pong.

Call membership lives in `CALLS`, a module-level dict: correct only because the peer
runs as one Daphne process with one event loop (the in-memory channel layer has the same
limit). Every read-modify-write of it below runs without an `await` in between, so no
lock is needed. Fan-out goes through the channel layer: a group per call for
participant_joined / participant_left, `channel_layer.send` to one connection's
`channel_name` for relayed messages.
"""

import asyncio
import json
import logging
import uuid
from functools import partial

import jwt
from autobahn.exception import Disconnected
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

log = logging.getLogger(__name__)

# The versions accepted in `auth`; `welcome` answers with the one the client asked for.
PROTOCOL_VERSIONS = (1, 2)
SUBPROTOCOL = "confab.v1"
MAX_MESSAGE_BYTES = 64 * 1024
AUTH_TIMEOUT_SECS = 5
HEARTBEAT_SECS = 20
IDLE_TIMEOUT_SECS = 60

# Close codes (shared::signal::close).
AUTH_TIMEOUT = 4000
AUTH_FAILED = 4001
UNSUPPORTED_VERSION = 4004

KNOWN_TYPES = frozenset(
    {"auth", "reauth", "ping", "join_call", "leave_call", "offer", "answer",
     "ice_candidate", "media_state"}
)
# Relayed type -> the field carrying its payload.
RELAYED = {"offer": "sdp", "answer": "sdp", "ice_candidate": "candidate"}

# room_id -> {participant_id: (channel_name, participant info dict)}, in join order.
CALLS = {}

# Messages dropped because the addressee's channel-layer queue was full.
dropped = 0

dumps = partial(json.dumps, separators=(",", ":"), ensure_ascii=False)


def _uuid(value):
    """The canonical (lowercase, hyphenated) form of a UUID string, else None."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _group(room):
    return "call." + room


def _valid_candidate(c):
    """RTCIceCandidateInit as Confab reads it: `candidate` is required and a string."""
    return (
        isinstance(c, dict)
        and isinstance(c.get("candidate"), str)
        and isinstance(c.get("sdp_mid", ""), (str, type(None)))
        and isinstance(c.get("username_fragment", ""), (str, type(None)))
        and (
            c.get("sdp_mline_index") is None
            or (type(c["sdp_mline_index"]) is int and 0 <= c["sdp_mline_index"] <= 65535)
        )
    )


class SignalConsumer(AsyncWebsocketConsumer):
    known_types = KNOWN_TYPES
    user_id = None
    participant_id = None
    info = None
    room = None
    closing = False
    _auth_timer = None

    # --- connection lifecycle -------------------------------------------------------

    async def connect(self):
        if SUBPROTOCOL in self.scope.get("subprotocols", ()):
            await self.accept(SUBPROTOCOL)
        else:
            await self.accept()
        loop = asyncio.get_running_loop()
        self._auth_timer = loop.call_later(AUTH_TIMEOUT_SECS, self._auth_timed_out)

    def _auth_timed_out(self):
        if self.user_id is None and not self.closing:
            self.closing = True
            asyncio.ensure_future(self.close(code=AUTH_TIMEOUT))

    async def disconnect(self, code):
        self.closing = True
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        await self._leave_call(tell_self=False)

    # --- frames from the client -----------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        if text_data is None:
            await self._error("invalid_message", "binary frames are not supported; send JSON text")
            return
        if len(text_data) > MAX_MESSAGE_BYTES // 4 and len(text_data.encode()) > MAX_MESSAGE_BYTES:
            await self._error("payload_too_large", f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
            return
        try:
            msg = json.loads(text_data)
        except ValueError as e:
            await self._error("invalid_message", f"malformed JSON: {e}")
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if not isinstance(kind, str):
            await self._error("invalid_message", 'expected a JSON object with a string "type"')
            return
        if kind not in self.known_types:
            await self._error("invalid_message", f"unknown message type {kind[:64]!r}", kind[:64])
            return

        if self.user_id is None:
            if kind == "auth":
                await self._auth(msg)
            else:
                await self._error("auth_state", "authenticate first", kind)
            return

        if kind in RELAYED:
            await self._relay(kind, msg)
        elif kind == "ping":
            nonce = msg.get("nonce")
            if type(nonce) is not int or nonce < 0:
                await self._error("invalid_message", "nonce must be a non-negative integer", kind)
            else:
                await self.send(text_data=dumps({"type": "pong", "nonce": nonce}))
        elif kind == "join_call":
            await self._join_call(msg)
        elif kind == "leave_call":
            room = _uuid(msg.get("room_id"))
            if room is None:
                await self._error("invalid_message", "room_id must be a UUID", kind)
            elif room != self.room:
                await self._error("not_in_call", "you are not in this room's call", kind)
            else:
                await self._leave_call(tell_self=True)
        elif kind == "auth":
            await self._error("auth_state", "already authenticated", kind)
        else:
            await self._other(kind, msg)

    async def _other(self, kind, msg):
        """A known message this consumer does not serve (reauth, media_state); a subclass
        that knows more types (`known_types`) handles them here."""
        await self._error("invalid_message", f"{kind} is not supported by this reference peer", kind)

    # --- handlers -------------------------------------------------------------------

    async def _auth(self, msg):
        token = msg.get("token")
        version = msg.get("protocol_version")
        if not isinstance(token, str) or type(version) is not int:
            await self._error("invalid_message", "auth needs a string token and an integer protocol_version", "auth")
            return
        if version not in PROTOCOL_VERSIONS:
            await self._error(
                "unsupported_version", f"this server speaks protocol versions {PROTOCOL_VERSIONS}", "auth"
            )
            await self._close(UNSUPPORTED_VERSION)
            return
        try:
            claims = jwt.decode(
                token,
                settings.PEER_JWT_SECRET,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"], "verify_aud": False},
            )
        except jwt.InvalidTokenError as e:
            await self._error("unauthorized", f"invalid token: {e}", "auth")
            await self._close(AUTH_FAILED)
            return
        self._auth_timer.cancel()
        if not await self._authenticated(claims["sub"]):
            return
        self.user_id = claims["sub"]
        self.participant_id = str(uuid.uuid4())
        self.info = {
            "participant_id": self.participant_id,
            "user_id": self.user_id,
            "username": "u",
            "display_name": None,
            "audio_muted": False,
            "video_muted": False,
        }
        await self.send(
            text_data=dumps(
                {
                    "type": "welcome",
                    "protocol_version": version,
                    "user_id": self.user_id,
                    "participant_id": self.participant_id,
                    "token_expires_at": claims["exp"],
                    "heartbeat_secs": HEARTBEAT_SECS,
                    "idle_timeout_secs": IDLE_TIMEOUT_SECS,
                    "max_message_bytes": MAX_MESSAGE_BYTES,
                }
            )
        )
        await self.send(text_data=dumps({"type": "presence_snapshot", "online": []}))

    async def _authenticated(self, user_id):
        """Runs once the token checked out, before `welcome`; False to refuse (after
        closing). A subclass sets up what the connection needs here."""
        return True

    async def _join_call(self, msg):
        room = _uuid(msg.get("room_id"))
        if room is None:
            await self._error("invalid_message", "room_id must be a UUID", "join_call")
            return
        if room == self.room:
            # Already in it: tell the joiner again who is there, nobody else.
            members = CALLS.get(room, {})
            others = [info for pid, (_, info) in members.items() if pid != self.participant_id]
            await self._send_call_joined(room, others, len(members))
            return
        await self._leave_call(tell_self=True)  # one call per connection, as in Confab

        # No await may suspend between here and the group_send below: the in-memory
        # layer's group_add does not, and group_send reads the group's members before its
        # first suspension. So who is in `others` and who gets participant_joined match.
        await self.channel_layer.group_add(_group(room), self.channel_name)
        members = CALLS.setdefault(room, {})
        others = [info for _, info in members.values()]
        members[self.participant_id] = (self.channel_name, self.info)
        self.room = room
        count = len(members)
        if others:
            joined = dumps(
                {"type": "participant_joined", "room_id": room, "participant": self.info,
                 "participant_count": count}
            )
            await self.channel_layer.group_send(
                _group(room), {"type": "call.event", "text": joined, "exclude": self.channel_name}
            )
        await self._send_call_joined(room, others, count)

    async def _send_call_joined(self, room, others, count):
        await self.send(
            text_data=dumps(
                {"type": "call_joined", "room_id": room, "participants": others,
                 "participant_count": count}
            )
        )

    async def _leave_call(self, tell_self):
        room = self.room
        if room is None:
            return
        self.room = None
        members = CALLS.get(room)
        count = 0
        if members is not None:
            members.pop(self.participant_id, None)
            count = len(members)
            if not members:
                del CALLS[room]
        await self.channel_layer.group_discard(_group(room), self.channel_name)
        if count:
            left = dumps(
                {"type": "participant_left", "room_id": room, "participant_id": self.participant_id,
                 "user_id": self.user_id, "participant_count": count}
            )
            await self.channel_layer.group_send(_group(room), {"type": "call.event", "text": left})
        if tell_self:
            await self.send(text_data=dumps({"type": "call_left", "room_id": room}))

    async def _relay(self, kind, msg):
        field = RELAYED[kind]
        room = _uuid(msg.get("room_id"))
        to = _uuid(msg.get("to"))
        payload = msg.get(field)
        if room is None or to is None:
            await self._error("invalid_message", "room_id and to must be UUIDs", kind)
            return
        if not (isinstance(payload, str) if field == "sdp" else _valid_candidate(payload)):
            await self._error("invalid_message", f"missing or invalid {field}", kind)
            return
        if self.room != room:
            await self._error("not_in_call", "you are not in this room's call", kind)
            return
        target = CALLS.get(room, {}).get(to)
        if target is None or to == self.participant_id:
            await self._error("unknown_participant", "that participant is not in your call", kind)
            return
        out = dumps(
            {"type": kind, "room_id": room, "from": self.participant_id, "from_user": self.user_id,
             field: payload}
        )
        try:
            await self.channel_layer.send(target[0], {"type": "peer.relay", "text": out})
        except ChannelFull:
            global dropped
            dropped += 1
            if dropped == 1 or dropped % 1000 == 0:
                log.warning("relay queue full for %s: %d messages dropped so far", to, dropped)

    async def send(self, text_data=None, bytes_data=None, close=False):
        # The client can close between a send being decided (say, a participant_left
        # fanned out while everyone hangs up) and Daphne writing it; autobahn then raises
        # Disconnected. Drop the message: the queued websocket.disconnect still arrives
        # and runs disconnect(), which it would not if the exception killed the consumer.
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Disconnected:
            self.closing = True

    async def close(self, code=None, reason=None):
        try:
            await super().close(code=code, reason=reason)
        except Disconnected:
            pass

    # --- channel-layer events -------------------------------------------------------

    async def peer_relay(self, event):
        await self.send(text_data=event["text"])

    async def call_event(self, event):
        if event.get("exclude") != self.channel_name:
            await self.send(text_data=event["text"])

    # --- helpers --------------------------------------------------------------------

    async def _error(self, code, message, in_reply_to=None, client_id=None):
        body = {"type": "error", "error": {"code": code, "message": message}}
        if in_reply_to is not None:
            body["in_reply_to"] = in_reply_to
        if client_id is not None:
            body["client_id"] = client_id
        await self.send(text_data=dumps(body))

    async def _close(self, code):
        self.closing = True
        await self.close(code=code)
