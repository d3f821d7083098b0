"""`GET /api/rooms/<id>/messages?after=ID&limit=N`: a room's timeline in ascending seq,
as Confab pages it (the load tool's loss check reads it). Bearer JWT as on the WebSocket."""

import jwt
from django.conf import settings
from django.http import JsonResponse

from chat.consumers import message_json
from chat.models import Message


def _error(status, code, message):
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def messages(request, room_id):
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return _error(401, "unauthorized", "a bearer token is required")
    try:
        jwt.decode(
            header[len("Bearer "):],
            settings.PEER_JWT_SECRET,
            algorithms=["HS256"],
            options={"require": ["exp", "sub"], "verify_aud": False},
        )
    except jwt.InvalidTokenError as e:
        return _error(401, "unauthorized", f"invalid token: {e}")
    try:
        after = int(request.GET.get("after", "0"))
        limit = int(request.GET.get("limit", "20"))
    except ValueError:
        return _error(422, "validation", "after and limit must be integers")
    if not 1 <= limit <= 100 or after < 0:
        return _error(422, "validation", "limit must be 1-100 and after at least 0")
    rows = list(Message.objects.filter(room_id=room_id, id__gt=after).order_by("id")[: limit + 1])
    return JsonResponse(
        {
            "messages": [message_json(m) for m in rows[:limit]],
            "has_more_before": after > 0,
            "has_more_after": len(rows) > limit,
        }
    )
