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
(() => {
  'use strict';

  const MAX_MESSAGE_BYTES = 4096;
  const EXPIRED_RETRIES = 3;
  const REFRESH_AT = 0.8; // of a token's lifetime
  const REAUTH_TIMEOUT_MS = 5000;
  const MAX_NOTICES = 5;
  const MAX_NOTICE_CHARS = 500;
  const LABELS = {
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    refused: 'Refused',
    disconnected: 'Disconnected',
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
  const encoder = new TextEncoder();

  function setState(name, detail) {
    live.dataset.state = name;
    state.textContent = detail ? `${LABELS[name]}: ${detail}` : LABELS[name];
    const connected = name === 'connected';
    input.disabled = !connected;
    sendButton.disabled = !connected;
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
          cb({ token });
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
  socket.on('connect', () => {
    expiredRetries = 0;
    expiredByServer = false;
    setState('connected');
    scheduleRefresh();
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

  socket.on('message', (message) => {
    if (!message || typeof message.from !== 'string' || typeof message.text !== 'string') return;
    const item = document.createElement('li');
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = message.from;
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = message.text;
    item.append(from, text);
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
  // else is ignored.
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
    socket.emit('message', text);
    input.value = '';
    hint.textContent = '';
    input.focus();
  });

  // Close the socket before the logout, so the server sees a clean goodbye.
  logout.addEventListener('submit', () => socket.disconnect());

  setState('connecting');
})();
