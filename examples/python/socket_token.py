"""A socket token for a logged-in user, made by the Python application itself:
HS256 with the key the socket-server holds as jwt.secret (standard library only).

    JWT_SECRET=… python3 socket_token.py USERNAME SID      prints the token
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time


def new_session_id():
    """A new login session id: make one at login, keep it in the session and
    put it in every token of that login."""
    return secrets.token_hex(16)


def base64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def socket_token(username, sid, ttl=300):
    """ttl: at most the socket-server's jwt.ttl_secs (300 by default)."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "sub": username,
        "user": {"username": username},
        "iat": now,
        "exp": now + ttl,
        "iss": os.environ.get("JWT_ISSUER", "web-frontend"),  # jwt.issuer
        "aud": os.environ.get("JWT_AUDIENCE", "socket-server"),  # jwt.audience
        "sid": sid,
        "jti": secrets.token_hex(16),
    }
    signing_input = ".".join(
        base64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (header, claims)
    )
    secret = os.environ["JWT_SECRET"].encode("utf-8")
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + base64url(signature)


if __name__ == "__main__":
    if len(sys.argv) != 3 or "JWT_SECRET" not in os.environ:
        sys.exit("usage: JWT_SECRET=… python3 socket_token.py USERNAME SID")
    print(socket_token(sys.argv[1], sys.argv[2]))
