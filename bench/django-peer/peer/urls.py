from django.http import HttpResponse
from django.urls import path

from chat import views
from peer import consumers


def healthz(_request):
    """Liveness, plus the live call state (to spot leaks after a run)."""
    calls = consumers.CALLS
    participants = sum(len(m) for m in calls.values())
    return HttpResponse(
        f"ok calls={len(calls)} participants={participants} dropped={consumers.dropped}\n",
        content_type="text/plain",
    )


urlpatterns = [
    path("healthz", healthz),
    path("api/rooms/<uuid:room_id>/messages", views.messages),
]
