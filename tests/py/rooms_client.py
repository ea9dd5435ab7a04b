"""Rooms seen by python-socketio (Debian's python3-socketio 5.7): a client
connects with a token carrying `rooms` in its `auth` payload, joins an allowed
room (ack), is refused a forbidden one and a reserved one, exchanges room
messages with a member that uses the official JavaScript client, and leaves.

Driven by tests/js/rooms.test.mjs, which holds the other member: this script
prints one JSON line per step on stdout and waits for what the member sends.
The member sends `from node` to the room once this script prints `ready`,
and, once it prints `left`, a room message `after leave` followed by the plain
message `marker`: both travel the member's one ordered relay, so when
`marker` arrives, `after leave` would already be here had the room kept us.

Environment: SOCKET_URL (the node to use), TOKEN (its `sub` is USERNAME),
USERNAME, ROOM (allowed by the token), FORBIDDEN (a name the token does not
allow), MEMBER (the official client's username).
Run it with /usr/bin/python3: Debian's modules, not a pyenv shim's.
Exits 0 when every step held; otherwise prints `{"error": …}` and exits 1.
"""

import json
import os
import queue
import sys

import socketio

WAIT = 5.0


def say(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def fail(message):
    say("error", error=message)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def main():
    env = {name: os.environ[name] for name in
           ("SOCKET_URL", "TOKEN", "USERNAME", "ROOM", "FORBIDDEN", "MEMBER")}
    room, me, member = env["ROOM"], env["USERNAME"], env["MEMBER"]
    events = queue.Queue()
    sio = socketio.Client(reconnection=False)

    @sio.on("welcome")
    def on_welcome(data):
        events.put(("welcome", data))

    @sio.on("message")
    def on_message(data):
        events.put(("message", data))

    def next_event(name, what):
        """The next `name` event; any other event on the way is returned too."""
        try:
            while True:
                event, data = events.get(timeout=WAIT)
                if event == name:
                    return data
                events_seen.append((event, data))
        except queue.Empty:
            fail(f"no {what} within {WAIT} s")

    events_seen = []
    try:
        sio.connect(env["SOCKET_URL"], auth={"token": env["TOKEN"]}, wait_timeout=WAIT)
    except socketio.exceptions.ConnectionError as error:
        fail(f"connect: {error}")
    welcome = next_event("welcome", "welcome")
    check(welcome == {"username": me}, f"welcome {welcome!r}")
    say("welcome", data=welcome, transport=sio.transport())

    joined = sio.call("join", {"room": room}, timeout=WAIT)
    check(joined == {"ok": True}, f"join {room}: {joined!r}")
    refused = sio.call("join", {"room": env["FORBIDDEN"]}, timeout=WAIT)
    check(refused == {"ok": False, "error": "forbidden"}, f"join forbidden: {refused!r}")
    reserved = sio.call("join", {"room": f"user:{member}"}, timeout=WAIT)
    check(reserved == {"ok": False, "error": "forbidden"}, f"join user:…: {reserved!r}")
    say("ready", acks=[joined, refused, reserved])

    got = next_event("message", "the member's room message")
    check(got == {"from": member, "room": room, "text": "from node"}, f"got {got!r}")
    say("got", data=got)

    sio.emit("message", {"room": room, "text": "from python"})
    echo = next_event("message", "our own room message back")
    check(echo == {"from": me, "room": room, "text": "from python"}, f"echo {echo!r}")
    say("sent", echo=echo)

    left = sio.call("leave", {"room": room}, timeout=WAIT)
    check(left == {"ok": True}, f"leave: {left!r}")
    say("left", ack=left)

    marker = next_event("message", "the member's marker")
    check(marker == {"from": member, "text": "marker"}, f"marker {marker!r}")
    check(events_seen == [], f"after leaving, before the marker: {events_seen!r}")
    say("marker", data=marker)

    sio.disconnect()
    say("done")


if __name__ == "__main__":
    main()
