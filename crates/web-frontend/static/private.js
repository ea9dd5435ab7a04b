// The live panel of /private: one authenticated socket to the socket server.
//
// The token is fetched in the `auth` callback, so every connection and every
// reconnection (after a socket-server restart, a network change…) presents a
// fresh, short-lived token. `token expired` is answered with a fresh one; `not
// valid token` is shown; a 403 from /getIoConnectionToken means the session
// is gone, and the user is sent to /login.
//
// While connected, the page refreshes its token in-band (`reauth`) at 80% of
// the token's lifetime, so the socket never reaches its expiry; should it
// anyway (`token_expired`), the page reconnects with a fresh token. A logout
// elsewhere (`session_ended`) sends the user to /login.
//
// `notice` events (a sign-in elsewhere, or anything the application publishes
// through the server API with a `text`) are shown in the notices list, a live
// region: as text only, never as markup.
//
// Rooms: the page offers the room patterns the user's tokens carry (rendered
// by the server), joins and leaves with acks, and keeps the list of joined
// rooms from those acks. The server forgets a socket's rooms when it
// disconnects: a new socket re-joins them. After an in-band refresh the rooms
// are confirmed the same way (a narrower token has made the server leave some
// silently). A refused re-join drops the room from the list, and says so.
//
// Connection state recovery: the page opts in (`recovery: true` beside the
// token), so the server gives its socket a private session id, and an offset
// as the LAST argument of every event it sends through its API, `message` and
// room messages; the client keeps the last one. Coming back after a cut
// transport, within the server's window, the client gets `socket.recovered`:
// true, the same socket with its rooms, and what it missed, right after the
// `connect`. Every handler here reads its first argument only (never the
// offset). The status says "Reconnected — nothing missed" or "Reconnected —
// some updates may be missing"; the rooms are confirmed either way (a
// recovered socket is in them already: the re-join is acked and changes
// nothing; a narrower token's refusal still drops a room).
(() => {
  'use strict';

  const MAX_MESSAGE_BYTES = 4096;
  const EXPIRED_RETRIES = 3;
  const REFRESH_AT = 0.8; // of a token's lifetime
  const REAUTH_TIMEOUT_MS = 5000;
  const ROOM_ACK_TIMEOUT_MS = 5000;
  const MAX_NOTICES = 5;
  const MAX_NOTICE_CHARS = 500;
  const LABELS = {
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    refused: 'Refused',
    disconnected: 'Disconnected',
  };
  // The status of a reconnection, from `socket.recovered`.
  const RECONNECTED = {
    recovered: 'Reconnected — nothing missed',
    missing: 'Reconnected — some updates may be missing',
  };

  const live = document.getElementById('live');
  const state = document.getElementById('connection-state');
  const welcome = document.getElementById('welcome');
  const welcomeName = document.getElementById('welcome-username');
  const messages = document.getElementById('messages');
  const emptyNote = document.getElementById('messages-empty');
  const form = document.getElementById('send-form');
  const input = document.getElementById('message-text');
  const sendButton = document.getElementById('send-button');
  const hint = document.getElementById('message-hint');
  const logout = document.getElementById('logout-form');
  const notices = document.getElementById('notices');
  // The rooms panel; absent (null) for a user who may join no room.
  const roomsStatus = document.getElementById('rooms-status');
  const joinForm = document.getElementById('join-form');
  const roomName = document.getElementById('room-name');
  const joinButton = document.getElementById('join-button');
  const joinedList = document.getElementById('joined-rooms');
  const joinedEmpty = document.getElementById('joined-empty');
  const roomChoice = document.getElementById('room-choice');
  const roomSelect = document.getElementById('message-room');
  const quickJoins = [...document.querySelectorAll('#room-patterns .room-join')];
  const prefixButtons = [...document.querySelectorAll('#room-patterns .room-prefix')];
  const encoder = new TextEncoder();

  // The rooms this page is in, in joining order: name → its list item, Leave
  // button and option in the room selector.
  const joined = new Map();

  // Every control that needs the socket follows the connection state.
  function syncControls() {
    const connected = live.dataset.state === 'connected';
    input.disabled = !connected;
    sendButton.disabled = !connected;
    roomSelect.disabled = !connected;
    for (const button of [...quickJoins, ...prefixButtons]) button.disabled = !connected;
    if (roomName) roomName.disabled = !connected;
    if (joinButton) joinButton.disabled = !connected;
    for (const room of joined.values()) room.leave.disabled = !connected;
  }

  function setState(name, detail, label = LABELS[name]) {
    live.dataset.state = name;
    state.textContent = detail ? `${label}: ${detail}` : label;
    syncControls();
  }

  // Never cached (the endpoint says no-store too); 403 means the login is gone.
  async function fetchToken() {
    const response = await fetch('/getIoConnectionToken', {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    });
    if (response.status === 403) {
      window.location.assign('/login');
      throw new Error('the session has ended');
    }
    if (!response.ok) throw new Error(`the token request failed (${response.status})`);
    return response.json();
  }

  // The claims of a token, read (not verified: the server does that) to know
  // when to refresh it.
  function claimsOf(token) {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(payload));
    } catch {
      return null;
    }
  }

  let currentToken = null;
  let refreshTimer = null;
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    const claims = currentToken && claimsOf(currentToken);
    const lifetimeMs = claims ? (claims.exp - claims.iat) * 1000 : NaN;
    if (!(lifetimeMs > 0)) return;
    refreshTimer = setTimeout(refresh, Math.max(1000, lifetimeMs * REFRESH_AT));
  }

  // In-band refresh: a fresh token over the live socket moves its deadline.
  async function refresh(attempt = 1) {
    if (!socket.connected) return;
    let token;
    try {
      token = await fetchToken();
    } catch {
      return; // 403 already sent the user to /login; a network error: the expiry reconnects
    }
    const reply = await socket.timeout(REAUTH_TIMEOUT_MS).emitWithAck('reauth', { token }).catch(() => null);
    if (reply && reply.ok) {
      currentToken = token;
      scheduleRefresh();
      // A narrower token has made the server leave rooms it no longer allows.
      confirmRooms();
    } else if (attempt < 3 && !(reply && reply.error === 'token revoked')) {
      refreshTimer = setTimeout(() => refresh(attempt + 1), 1000);
    }
  }

  let tokenProblem = null;
  const socket = io(live.dataset.socketUrl, {
    auth: (cb) => {
      fetchToken().then(
        (token) => {
          tokenProblem = null;
          currentToken = token;
          cb({ token, recovery: true });
        },
        (error) => {
          // The handshake goes on without a token and is refused; the
          // refusal handler below then retries instead of giving up.
          tokenProblem = error.message;
          cb({});
        },
      );
    },
  });
  // The article's page kept its socket in a global; so does this one.
  window.socket = socket;

  let expiredRetries = 0;
  let expiredByServer = false;
  let connectedBefore = false;
  socket.on('connect', () => {
    expiredRetries = 0;
    expiredByServer = false;
    if (connectedBefore) {
      // What the server said of this socket: recovered (what it missed is
      // on its way), or new.
      const recovered = socket.recovered === true;
      live.dataset.recovered = String(recovered);
      setState('connected', '', recovered ? RECONNECTED.recovered : RECONNECTED.missing);
    } else {
      connectedBefore = true;
      setState('connected');
    }
    scheduleRefresh();
    // A new socket is in no room yet, a recovered one is in its rooms
    // already: either way, back into (or confirmed in) the page's rooms.
    confirmRooms();
  });
  socket.on('token_expired', () => {
    expiredByServer = true;
  });
  socket.on('session_ended', () => {
    clearTimeout(refreshTimer);
    setState('disconnected', 'the session has ended');
    window.location.assign('/login');
  });
  socket.on('welcome', ({ username }) => {
    welcomeName.textContent = username;
    welcome.hidden = false;
  });
  socket.on('disconnect', (reason) => {
    clearTimeout(refreshTimer);
    delete live.dataset.recovered;
    for (const name of joined.keys()) markRoom(name, 'rejoining');
    if (reason === 'io server disconnect' && expiredByServer) {
      // The token ran out on the live socket: connect again with a fresh one.
      setState('reconnecting', 'token expired');
      socket.connect();
      return;
    }
    // `socket.active`: the client reconnects by itself (transport closed,
    // server restarted); otherwise the server or this page ended it.
    setState(socket.active ? 'reconnecting' : 'disconnected', socket.active ? '' : reason);
  });
  socket.io.on('reconnect_attempt', () => setState('reconnecting'));
  socket.on('connect_error', (error) => {
    if (socket.active) {
      setState('reconnecting', error.message);
      return;
    }
    // Refused by the server's middleware: the client does not retry on its own.
    const retry = tokenProblem !== null || (error.message === 'token expired' && expiredRetries < EXPIRED_RETRIES);
    if (retry) {
      expiredRetries += 1;
      setState('connecting', tokenProblem ?? 'getting a fresh token');
      setTimeout(() => socket.connect(), Math.min(1000 * expiredRetries, 5000));
      return;
    }
    setState('refused', error.message);
  });

  // `{from, text}` for everyone, `{from, room, text}` for a room: shown as
  // "[team:42] gonzalo: hi", marked as a room message. (A recovering socket
  // gets the offset as a second argument: not read.)
  socket.on('message', (message) => {
    if (!message || typeof message.from !== 'string' || typeof message.text !== 'string') return;
    if (message.room !== undefined && typeof message.room !== 'string') return;
    const item = document.createElement('li');
    if (typeof message.room === 'string') {
      item.className = 'room-message';
      item.dataset.room = message.room;
      const room = document.createElement('span');
      room.className = 'room';
      room.textContent = `[${message.room}]`;
      item.append(room, ' ');
    }
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = message.from;
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = message.text;
    item.append(from, ' ', text);
    messages.append(item);
    emptyNote.hidden = true;
    item.scrollIntoView({ block: 'nearest' });
  });

  // The short local time of an RFC 3339 instant, e.g. "17:03"; null if it is none.
  function localTime(value) {
    if (typeof value !== 'string') return null;
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return null;
    return { iso: date.toISOString(), short: date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) };
  }

  function clip(text) {
    return text.length > MAX_NOTICE_CHARS ? `${text.slice(0, MAX_NOTICE_CHARS - 1)}…` : text;
  }

  // A sign-in: "New sign-in to your account — Firefox, 17:03". Any other
  // notice with a `text`: the text (and its time, when it has one). Anything
  // else is ignored. (The offset, a second argument: not read.)
  socket.on('notice', (notice) => {
    if (!notice || typeof notice !== 'object' || typeof notice.text !== 'string' || notice.text.trim() === '') return;
    const item = document.createElement('li');
    item.className = 'notice';
    if (notice.kind === 'sign-in') item.classList.add('notice-sign-in');
    const message = document.createElement('span');
    message.className = 'notice-message';
    message.append(clip(notice.text));
    const details = [];
    if (typeof notice.browser === 'string' && notice.browser !== '') details.push(clip(notice.browser));
    const time = localTime(notice.time);
    if (details.length || time) {
      message.append(' — ');
      if (details.length) message.append(details.join(', '));
      if (details.length && time) message.append(', ');
      if (time) {
        const stamp = document.createElement('time');
        stamp.dateTime = time.iso;
        stamp.textContent = time.short;
        message.append(stamp);
      }
    }
    const dismiss = document.createElement('button');
    dismiss.type = 'button';
    dismiss.className = 'link notice-dismiss';
    dismiss.textContent = 'Dismiss';
    dismiss.addEventListener('click', () => item.remove());
    item.append(message, dismiss);
    notices.append(item);
    while (notices.children.length > MAX_NOTICES) notices.firstElementChild.remove();
  });

  input.addEventListener('input', () => {
    const bytes = encoder.encode(input.value).length;
    hint.textContent = bytes > MAX_MESSAGE_BYTES ? `Too long: ${bytes} of ${MAX_MESSAGE_BYTES} bytes.` : '';
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value;
    if (text.trim() === '' || encoder.encode(text).length > MAX_MESSAGE_BYTES) return;
    // To a joined room, or (unchanged) a plain string to everyone.
    const room = roomSelect.value;
    socket.emit('message', room ? { room, text } : text);
    input.value = '';
    hint.textContent = '';
    input.focus();
  });

  // Rooms.

  function say(text) {
    if (roomsStatus) roomsStatus.textContent = text;
  }

  // `join`/`leave` with an ack: `{ok: true}`, or `{ok: false, error}` (the
  // server's reason, or "no answer" when none came in time).
  async function ask(event, room) {
    try {
      const reply = await socket.timeout(ROOM_ACK_TIMEOUT_MS).emitWithAck(event, { room });
      if (reply && reply.ok === true) return { ok: true };
      return { ok: false, error: reply && typeof reply.error === 'string' ? reply.error : 'refused' };
    } catch {
      return { ok: false, error: 'no answer', unanswered: true };
    }
  }

  function updateRoomViews() {
    if (joinedEmpty) joinedEmpty.hidden = joined.size > 0;
    roomChoice.hidden = joined.size === 0;
  }

  // A room's state in the list: "joined", or "rejoining" while a new socket
  // has not yet been let back in.
  function markRoom(name, roomState) {
    const room = joined.get(name);
    if (!room) return;
    room.item.dataset.state = roomState;
    room.note.textContent = roomState === 'rejoining' ? ' (re-joining…)' : '';
  }

  function addRoom(name) {
    if (joined.has(name)) {
      markRoom(name, 'joined');
      return;
    }
    const item = document.createElement('li');
    item.dataset.room = name;
    item.dataset.state = 'joined';
    const label = document.createElement('span');
    label.className = 'joined-name';
    label.textContent = name;
    const note = document.createElement('span');
    note.className = 'joined-note';
    const leave = document.createElement('button');
    leave.type = 'button';
    leave.className = 'secondary small';
    const hidden = document.createElement('span');
    hidden.className = 'visually-hidden';
    hidden.textContent = ` ${name}`;
    leave.append('Leave', hidden);
    leave.disabled = live.dataset.state !== 'connected';
    leave.addEventListener('click', () => leaveRoom(name));
    item.append(label, note, leave);
    joinedList.append(item);
    const option = document.createElement('option');
    option.value = name;
    option.textContent = name;
    roomSelect.append(option);
    joined.set(name, { item, note, leave, option });
    updateRoomViews();
  }

  function removeRoom(name) {
    const room = joined.get(name);
    if (!room) return;
    const hadFocus = room.leave === document.activeElement;
    const next = room.item.nextElementSibling ?? room.item.previousElementSibling;
    room.item.remove();
    // Removing the selected option selects "Everyone".
    room.option.remove();
    joined.delete(name);
    updateRoomViews();
    if (hadFocus) (next?.querySelector('button') ?? roomName ?? input).focus();
  }

  async function joinRoom(name) {
    const reply = await ask('join', name);
    if (reply.ok) {
      addRoom(name);
      say(`Joined ${name}.`);
    } else {
      say(`Could not join ${name}: ${reply.error}.`);
    }
    return reply.ok;
  }

  async function leaveRoom(name) {
    const reply = await ask('leave', name);
    if (reply.ok) {
      removeRoom(name);
      say(`Left ${name}.`);
    } else {
      say(`Could not leave ${name}: ${reply.error}.`);
    }
  }

  // Joins again every room the page is in: on a new socket (which is in
  // none), and after a refresh (a narrower token has made the server leave
  // some). Already in: nothing changes. Refused: dropped from the list. No
  // answer: kept, for the next connection to try again.
  let confirming = 0;
  async function confirmRooms() {
    const names = [...joined.keys()];
    if (names.length === 0) return;
    const round = ++confirming;
    const replies = await Promise.all(names.map(async (name) => [name, await ask('join', name)]));
    if (round !== confirming) return; // a newer socket or token is being confirmed
    const dropped = [];
    for (const [name, reply] of replies) {
      if (!joined.has(name) || reply.unanswered) continue;
      if (reply.ok) {
        markRoom(name, 'joined');
      } else {
        removeRoom(name);
        dropped.push(`${name} (${reply.error})`);
      }
    }
    if (dropped.length) say(`No longer in ${dropped.join(', ')}: not allowed any more.`);
  }

  for (const button of quickJoins) {
    button.addEventListener('click', () => joinRoom(button.dataset.room));
  }
  // A pattern with `*`: its prefix in the name field, ready for the rest.
  for (const button of prefixButtons) {
    button.addEventListener('click', () => {
      roomName.value = button.dataset.prefix;
      roomName.focus();
    });
  }
  if (prefixButtons.length) roomName.placeholder = `${prefixButtons[0].dataset.prefix}…`;
  joinForm?.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = roomName.value.trim();
    if (name === '') {
      say('Type the name of a room first.');
      return;
    }
    if (await joinRoom(name)) roomName.value = '';
  });

  // Close the socket before the logout, so the server sees a clean goodbye.
  logout.addEventListener('submit', () => socket.disconnect());

  setState('connecting');
})();
