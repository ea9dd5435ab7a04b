"""A receiver of authbridge's presence webhooks: it checks each request as the
Standard Webhooks specification says, then handles the event.

    WEBHOOK_SECRET='the value of webhooks.secret' PORT=8000 python3 verify.py
"""

import base64
import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE = 5 * 60  # seconds: an older (or newer) signature is a replay


def verify_webhook(secret: bytes, headers, body: bytes) -> dict:
    """The event, if the request is authentic and recent; ValueError otherwise."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (secret and msg_id and timestamp and signatures):
        raise ValueError("missing webhook headers (or secret)")
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(
        time.time() - int(timestamp)
    ) > TOLERANCE:
        raise ValueError("timestamp too old or too new")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    expected = b"v1," + base64.b64encode(digest)
    # A space-separated list of "v1,SIGNATURE": one match is enough.
    for signature in signatures.split(" "):
        if hmac.compare_digest(signature.encode(), expected):
            return json.loads(body)
    raise ValueError("no valid signature")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            secret = os.environ.get("WEBHOOK_SECRET", "").encode()
            event = verify_webhook(secret, self.headers, body)
        except ValueError as error:
            self.send_response(400)  # anything but 2xx: authbridge tries again later
            self.end_headers()
            self.wfile.write(str(error).encode())
            return
        # event["type"] is "user.online" or "user.offline", event["data"]["user"]
        # the username. An event may come twice (at least once): skip a
        # webhook-id already handled. Answer within 10 s; queue slow work.
        handled = {"id": self.headers["webhook-id"], "type": event["type"]}
        print(json.dumps({**handled, "user": event["data"]["user"]}), flush=True)
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
