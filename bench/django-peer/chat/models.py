"""The chat tables, as a Django chat app has them: rooms, and messages with an
autoincrement id (which the consumer reports as the message's `seq`)."""

from django.db import models


class Room(models.Model):
    # The load tool picks random room ids, so the id is a UUID given by the client.
    id = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    # The JWT's `sub`: the peer has no user table (see README, "Known limits").
    author = models.UUIDField()
    client_id = models.CharField(max_length=64)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # A room's timeline in order: what the history endpoint pages.
        indexes = [models.Index(fields=["room", "id"])]
