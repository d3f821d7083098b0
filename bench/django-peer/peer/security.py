"""Origin check with Confab's rule: a browser's Origin must be an allowed one, and a
request without an Origin header (a native client, the load tool) is let through.
Channels' stock AllowedHostsOriginValidator refuses requests without Origin."""

from channels.security.websocket import OriginValidator
from django.conf import settings


class _Validator(OriginValidator):
    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def ConfabOriginValidator(application):
    return _Validator(application, settings.ALLOWED_HOSTS)
