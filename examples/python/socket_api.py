"""The socket-server's server API from Python (requests), with the key the
socket-server holds as api.key.

    python3 socket_api.py publish TARGET EVENT JSON    e.g. publish user:gonzalo notice '{"text":"hi"}'
    python3 socket_api.py revoke SID UNTIL             at logout; UNTIL: the exp of the session's last token
    python3 socket_api.py presence [user:USERNAME]

Each prints the API's JSON answer; a refusal goes to stderr, exit status 1.
"""
import json
import os
import sys
from urllib.parse import quote

import requests


def socket_api(method, path, body=None):
    """The API's answer, decoded; a refusal (4xx, 5xx) raises with its body."""
    response = requests.request(
        method,
        os.environ["SOCKET_URL"].rstrip("/") + path,
        headers={"Authorization": "Bearer " + os.environ["API_KEY"]},
        json=body,
        timeout=10,
    )
    if response.status_code != 200:
        raise RuntimeError(f"socket API {method} {path}: {response.status_code} {response.text}")
    return response.json()


def publish(to, event, data):
    """Sends `event` with `data` to a target ("user:NAME", "session:SID",
    "room:NAME", "everyone") or a list of them: {"id": …, "sockets": N}."""
    return socket_api("POST", "/api/publish", {"to": to, "event": event, "data": data})


def revoke_session(sid, until):
    """At logout: ends the session's sockets, and refuses its tokens until `until`."""
    return socket_api("POST", "/api/sessions/revoke", {"sid": sid, "until": until})


def presence(user=None):
    return socket_api("GET", "/api/presence" + ("" if user is None else "/" + quote(user)))


if __name__ == "__main__":
    command, args = (sys.argv[1] if len(sys.argv) > 1 else ""), sys.argv[2:]
    try:
        if command == "publish" and len(args) == 3:
            answer = publish(args[0], args[1], json.loads(args[2]))
        elif command == "revoke" and len(args) == 2:
            answer = revoke_session(args[0], int(args[1]))
        elif command == "presence" and len(args) <= 1:
            answer = presence(*args)
        else:
            sys.exit("usage: python3 socket_api.py publish TARGET EVENT JSON | revoke SID UNTIL | presence [user:USERNAME]")
    except (requests.RequestException, RuntimeError, ValueError) as error:
        sys.exit(str(error))
    print(json.dumps(answer))
