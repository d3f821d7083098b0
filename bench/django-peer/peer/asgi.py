"""ASGI entry point: `daphne peer.asgi:application`."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Set Django up before importing anything that touches settings.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from chat.consumers import ChatConsumer  # noqa: E402
from peer.consumers import SignalConsumer  # noqa: E402
from peer.security import ConfabOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": ConfabOriginValidator(
            URLRouter(
                [
                    path("ws", SignalConsumer.as_asgi()),
                    path("chat/<uuid:room_id>", ChatConsumer.as_asgi()),
                ]
            )
        ),
    }
)
