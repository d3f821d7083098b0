"""A real SMTP server for the tests (aiosmtpd): every message it receives is parsed and
written to OUT_DIR/N.json as {"to", "from", "subject", "text", "html"}.

Usage: python3 smtp_capture.py OUT_DIR PORT. Prints "ready" once it accepts connections;
runs until killed."""

import email
import json
import os
import sys
import threading
from email import policy

from aiosmtpd.controller import Controller

out_dir, port = sys.argv[1], int(sys.argv[2])


class Capture:
    count = 0
    lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "to": envelope.rcpt_tos,
            "from": envelope.mail_from,
            "subject": str(msg["subject"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        with Capture.lock:
            Capture.count += 1
            n = Capture.count
        # Written under another name, then renamed: a reader never sees half a file.
        tmp = os.path.join(out_dir, f".{n}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(out_dir, f"{n}.json"))
        return "250 Message accepted"


controller = Controller(Capture(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
threading.Event().wait()
