// Contract tests for the socket-server, driven by the OFFICIAL socket.io clients
// from npm: socket.io-client 4.x (protocol v5 / Engine.IO v4) and 2.x
// (protocol v4 / Engine.IO v3, the article's client). See README.md.
//
// Inputs (environment):
//   SOCKET_URL            e.g. http://127.0.0.1:41234
//   TOKEN_VALID           a valid JWT (reused for several connections)
//   TOKEN_VALID_USER      the username (sub) inside TOKEN_VALID
//   TOKEN_EXPIRED         a token whose only fault is its passed exp
//   TOKEN_FORGED          a token signed with another key
//   TOKEN_WRONG_AUDIENCE  a token with another aud
//
// The server must be used by this harness alone while it runs: broadcasts from
// other clients would show up in the message assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioV4 } from 'socket.io-client';
import ioV2 from 'socket.io-client-v2';

const REQUIRED = ['SOCKET_URL', 'TOKEN_VALID', 'TOKEN_VALID_USER', 'TOKEN_EXPIRED', 'TOKEN_FORGED', 'TOKEN_WRONG_AUDIENCE'];
const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length) {
  throw new Error(`clients.test.mjs: missing environment variable(s): ${missing.join(', ')}`);
}
const {
  SOCKET_URL: URL_, TOKEN_VALID, TOKEN_VALID_USER: USER, TOKEN_EXPIRED, TOKEN_FORGED, TOKEN_WRONG_AUDIENCE,
} = process.env;

const DEADLINE_MS = 10_000; // hard deadline of every test
const WAIT_MS = 5_000; // one awaited event
const QUIET_MS = 300; // how long to wait for a broadcast that must not happen

const NOT_VALID = 'not valid token';
const EXPIRED = 'token expired';

// Every test gets a harness whose sockets are all closed (and whose pending
// waits are rejected) when the test ends, passed, failed or timed out.
function harness(t) {
  const sockets = new Set();
  const ended = new AbortController();
  t.after(() => {
    ended.abort(new Error('test ended'));
    for (const s of sockets) {
      try { s.close(); } catch { /* already gone */ }
    }
    sockets.clear();
  });

  const base = { forceNew: true, reconnection: false, timeout: WAIT_MS };
  return {
    // socket.io-client 4.x
    v4(opts = {}) {
      const s = ioV4(URL_, { ...base, ...opts });
      sockets.add(s);
      return s;
    },
    // socket.io-client 2.x (Engine.IO v3)
    v2(opts = {}) {
      const s = ioV2(URL_, { ...base, ...opts });
      sockets.add(s);
      return s;
    },
    // Resolves with the arguments of the next `event` on `emitter`.
    next(emitter, event, ms = WAIT_MS) {
      return handled(new Promise((resolve, reject) => {
        const done = (fn, value) => {
          clearTimeout(timer);
          emitter.off(event, onEvent);
          ended.signal.removeEventListener('abort', onAbort);
          fn(value);
        };
        const onEvent = (...args) => done(resolve, args);
        const onAbort = () => done(reject, ended.signal.reason);
        const timer = setTimeout(() => done(reject, new Error(`no '${event}' within ${ms} ms`)), ms);
        emitter.on(event, onEvent);
        ended.signal.addEventListener('abort', onAbort);
      }));
    },
    // Resolves with {welcome: data} or {refused: message}: whichever of
    // `welcome` and the refusal event (connect_error for 4.x, error for 2.x) comes first.
    // 2.x reports transport failures as connect_error: {connectFailed: message}.
    outcome(socket, refusalEvent = 'connect_error', ms = WAIT_MS) {
      const failEvent = refusalEvent === 'connect_error' ? null : 'connect_error';
      return handled(new Promise((resolve, reject) => {
        const done = (fn, value) => {
          clearTimeout(timer);
          socket.off('welcome', onWelcome);
          socket.off(refusalEvent, onRefused);
          if (failEvent) socket.off(failEvent, onFailed);
          ended.signal.removeEventListener('abort', onAbort);
          fn(value);
        };
        const onWelcome = (data) => done(resolve, { welcome: data });
        // 4.x: an Error. 2.x: the ERROR packet's data as sent — a Node socket.io 2
        // server sends the bare string, socketioxide the v5 shape {message}; the
        // message itself must match exactly either way.
        const text = (err) => (err instanceof Error
          ? err.message + (err.description !== undefined ? ` (${err.description?.message ?? err.description})` : '')
          : (typeof err?.message === 'string' ? err.message : err));
        const onRefused = (err) => done(resolve, { refused: text(err) });
        const onFailed = (err) => done(resolve, { connectFailed: text(err) });
        const onAbort = () => done(reject, ended.signal.reason);
        const timer = setTimeout(
          () => done(reject, new Error(`neither 'welcome' nor '${refusalEvent}' within ${ms} ms`)), ms);
        socket.on('welcome', onWelcome);
        socket.on(refusalEvent, onRefused);
        if (failEvent) socket.on(failEvent, onFailed);
        ended.signal.addEventListener('abort', onAbort);
      }));
    },
    // Records every `message` the socket receives from now on.
    inbox(socket) {
      const got = [];
      socket.on('message', (...args) => got.push(args.length === 1 ? args[0] : args));
      return got;
    },
    // Resolves once `got` holds at least n entries.
    async until(got, n, ms = WAIT_MS) {
      const start = Date.now();
      while (got.length < n) {
        if (ended.signal.aborted) throw ended.signal.reason;
        if (Date.now() - start > ms) {
          throw new Error(`expected ${n} message(s) within ${ms} ms, got ${JSON.stringify(got)}`);
        }
        await sleep(10);
      }
    },
  };
}

// A wait started early (before awaiting something else) must not turn into an
// unhandled rejection when the test fails or ends first; awaiting it still throws.
function handled(promise) {
  promise.catch(() => {});
  return promise;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function expectWelcome(h, socket, refusalEvent) {
  const res = await h.outcome(socket, refusalEvent);
  assert.deepEqual(res, { welcome: { username: USER } }, 'expected welcome');
}

async function expectRefused(h, socket, message, refusalEvent) {
  const res = await h.outcome(socket, refusalEvent);
  assert.deepEqual(res, { refused: message }, `expected refusal '${message}'`);
}

const utf8 = (s) => Buffer.byteLength(s, 'utf8');
// Strings of an exact UTF-8 byte length, ASCII and multi-byte (a server
// counting characters or UTF-16 units instead of bytes accepts the 4097 ones).
const ASCII_4096 = 'a'.repeat(4096);
const ASCII_4097 = 'a'.repeat(4097);
const EURO_4096 = '€'.repeat(1365) + 'a'; // 3 bytes x 1365 + 1
const EURO_4097 = '€'.repeat(1365) + 'ab';
const EMOJI_4096 = '😀'.repeat(1024); // 4 bytes (2 UTF-16 units) x 1024
const EMOJI_4097 = '😀'.repeat(1024) + 'a';
assert.equal(utf8(ASCII_4096), 4096);
assert.equal(utf8(EURO_4096), 4096);
assert.equal(utf8(EMOJI_4096), 4096);
assert.equal(utf8(ASCII_4097), 4097);
assert.equal(utf8(EURO_4097), 4097);
assert.equal(utf8(EMOJI_4097), 4097);

const opts = { timeout: DEADLINE_MS };

// Sends `bad` (each an array of emit arguments) from `sender`, waits QUIET_MS,
// then sends `sentinel`: the next message every receiver sees must be the sentinel.
async function expectIgnored(h, sender, receivers, bad, sentinel) {
  const inboxes = receivers.map((r) => h.inbox(r));
  for (const args of bad) sender.emit('message', ...args);
  await sleep(QUIET_MS);
  sender.emit('message', sentinel);
  for (const got of inboxes) {
    await h.until(got, 1);
    await sleep(20); // let anything queued behind it arrive too
    assert.deepEqual(got, [{ from: USER, text: sentinel }], 'only the valid message is broadcast');
  }
  for (const r of receivers) r.off('message');
}

// Sends `text` and checks every receiver gets exactly {from, text}.
async function expectBroadcast(h, sender, receivers, text) {
  const inboxes = receivers.map((r) => h.inbox(r));
  sender.emit('message', text);
  for (const got of inboxes) {
    await h.until(got, 1);
    assert.deepEqual(got[0], { from: USER, text });
  }
  await sleep(20);
  for (const got of inboxes) assert.equal(got.length, 1, 'broadcast exactly once');
  for (const r of receivers) r.off('message');
}

// ---------------------------------------------------------------------------
// 1-4: socket.io-client 4.x connections

test('1. v4 client: token in auth -> welcome', opts, async (t) => {
  const h = harness(t);
  const s = h.v4({ auth: { token: TOKEN_VALID } });
  await expectWelcome(h, s);
  assert.equal(s.connected, true);
});

test('2. v4 client: token in query (no auth) -> welcome', opts, async (t) => {
  const h = harness(t);
  await expectWelcome(h, h.v4({ query: { token: TOKEN_VALID } }));
});

test('3. v4 client: auth callback -> welcome, called again on reconnection', opts, async (t) => {
  const h = harness(t);
  let calls = 0;
  const s = h.v4({
    auth: (cb) => { calls += 1; cb({ token: TOKEN_VALID }); },
    reconnection: true,
    reconnectionAttempts: 5,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    randomizationFactor: 0,
  });
  await expectWelcome(h, s);
  assert.equal(calls, 1, 'auth callback called once for the first connection');

  const disconnected = h.next(s, 'disconnect');
  const welcomeAgain = h.outcome(s);
  s.io.engine.close(); // transport closes under the socket: the client reconnects
  await disconnected; // reason 'forced close' (client-side close of the transport)
  assert.equal(s.active, true, 'the client is reconnecting');
  assert.deepEqual(await welcomeAgain, { welcome: { username: USER } }, 'welcome after reconnection');
  assert.equal(calls, 2, 'auth callback called again for the reconnection');
  assert.equal(s.connected, true);
});

test('4a. v4 client: websocket transport only -> welcome', opts, async (t) => {
  const h = harness(t);
  const s = h.v4({ auth: { token: TOKEN_VALID }, transports: ['websocket'] });
  await expectWelcome(h, s);
  assert.equal(s.io.engine.transport.name, 'websocket');
});

test('4b. v4 client: polling transport only -> welcome', opts, async (t) => {
  const h = harness(t);
  const s = h.v4({ auth: { token: TOKEN_VALID }, transports: ['polling'] });
  await expectWelcome(h, s);
  assert.equal(s.io.engine.transport.name, 'polling');
});

test('4c. v4 client: polling upgraded to websocket -> welcome', opts, async (t) => {
  const h = harness(t);
  const s = h.v4({ auth: { token: TOKEN_VALID }, transports: ['polling', 'websocket'] });
  await expectWelcome(h, s);
  if (s.io.engine.transport.name !== 'websocket') await h.next(s.io.engine, 'upgrade');
  assert.equal(s.io.engine.transport.name, 'websocket');
  // the socket still works after the upgrade
  const got = h.inbox(s);
  s.emit('message', 'after upgrade');
  await h.until(got, 1);
  assert.deepEqual(got[0], { from: USER, text: 'after upgrade' });
});

// ---------------------------------------------------------------------------
// 5: messages (v4 clients)

async function twoV4(h, transportsB) {
  const a = h.v4({ auth: { token: TOKEN_VALID } });
  const b = h.v4({ auth: { token: TOKEN_VALID }, ...(transportsB && { transports: transportsB }) });
  await Promise.all([expectWelcome(h, a), expectWelcome(h, b)]);
  return [a, b];
}

test('5a. messages: A sends, A and B receive {from, text}', opts, async (t) => {
  const h = harness(t);
  const [a, b] = await twoV4(h);
  await expectBroadcast(h, a, [a, b], 'hello from A');
  await expectBroadcast(h, b, [a, b], 'hello from B');
});

test('5b. messages: the empty string is broadcast', opts, async (t) => {
  const h = harness(t);
  const [a, b] = await twoV4(h);
  await expectBroadcast(h, a, [a, b], '');
});

test('5c. messages: non-string payloads are not broadcast', opts, async (t) => {
  const h = harness(t);
  const [a, b] = await twoV4(h);
  await expectIgnored(h, a, [a, b],
    [[{ text: 'x' }], [42], [null], [true], [['x']], [{ from: 'mallory', text: 'x' }], []],
    'valid after non-strings');
});

test('5d. messages: a binary payload is not broadcast', opts, async (t) => {
  const h = harness(t);
  const [a, b] = await twoV4(h);
  await expectIgnored(h, a, [a, b], [[Buffer.from('binary')]], 'valid after binary');
});

test('5e. messages: extra arguments after the string are ignored, the text is broadcast', opts, async (t) => {
  const h = harness(t);
  const [a, b] = await twoV4(h);
  const inboxes = [h.inbox(a), h.inbox(b)];
  a.emit('message', 'first arg', 'extra', { from: 'mallory' });
  for (const got of inboxes) {
    await h.until(got, 1);
    assert.deepEqual(got[0], { from: USER, text: 'first arg' });
  }
});

test('5f. messages: exactly 4096 UTF-8 bytes is broadcast (ASCII, 3-byte, 4-byte chars)', opts, async (t) => {
  const h = harness(t);
  const [a, b] = await twoV4(h);
  for (const text of [ASCII_4096, EURO_4096, EMOJI_4096]) await expectBroadcast(h, a, [a, b], text);
});

test('5g. messages: 4097 UTF-8 bytes is not broadcast (ASCII, 3-byte, 4-byte chars)', opts, async (t) => {
  const h = harness(t);
  const [a, b] = await twoV4(h);
  await expectIgnored(h, a, [a, b], [[ASCII_4097], [EURO_4097], [EMOJI_4097]], 'valid after oversized');
});

test('5h. messages: 4096 and 4097 bytes over polling', opts, async (t) => {
  const h = harness(t);
  const a = h.v4({ auth: { token: TOKEN_VALID }, transports: ['polling'] });
  const b = h.v4({ auth: { token: TOKEN_VALID }, transports: ['websocket'] });
  await Promise.all([expectWelcome(h, a), expectWelcome(h, b)]);
  await expectBroadcast(h, a, [a, b], EURO_4096);
  await expectBroadcast(h, b, [a, b], EMOJI_4096);
  await expectIgnored(h, a, [a, b], [[EURO_4097], [EMOJI_4097]], 'valid after oversized (polling)');
});

// ---------------------------------------------------------------------------
// 6: refusals (v4 client)

const refusals = [
  ['expired token in auth', { auth: { token: TOKEN_EXPIRED } }, EXPIRED],
  ['expired token in query', { query: { token: TOKEN_EXPIRED } }, EXPIRED],
  ['forged token', { auth: { token: TOKEN_FORGED } }, NOT_VALID],
  ['wrong audience', { auth: { token: TOKEN_WRONG_AUDIENCE } }, NOT_VALID],
  ['malformed token', { auth: { token: 'not.a.jwt' } }, NOT_VALID],
  ['missing token (no auth, no query)', {}, NOT_VALID],
  ['empty auth object', { auth: {} }, NOT_VALID],
  ['auth.token empty string', { auth: { token: '' } }, NOT_VALID],
  ['auth.token a number', { auth: { token: 42 } }, NOT_VALID],
  ['query token empty string', { query: { token: '' } }, NOT_VALID],
  ['forged token in query', { query: { token: TOKEN_FORGED } }, NOT_VALID],
];
for (const [name, options, message] of refusals) {
  test(`6. v4 client refused: ${name} -> connect_error '${message}'`, opts, async (t) => {
    const h = harness(t);
    const s = h.v4(options);
    await expectRefused(h, s, message);
    assert.equal(s.connected, false);
  });
}

test('6. v4 client: auth.token empty string + valid query token -> welcome', opts, async (t) => {
  const h = harness(t);
  await expectWelcome(h, h.v4({ auth: { token: '' }, query: { token: TOKEN_VALID } }));
});

test('6. v4 client: auth.token not a string + valid query token -> welcome', opts, async (t) => {
  const h = harness(t);
  await expectWelcome(h, h.v4({ auth: { token: 42 }, query: { token: TOKEN_VALID } }));
});

test('6. v4 client: refused over websocket only -> connect_error', opts, async (t) => {
  const h = harness(t);
  await expectRefused(h, h.v4({ auth: { token: TOKEN_FORGED }, transports: ['websocket'] }), NOT_VALID);
});

// ---------------------------------------------------------------------------
// 7: socket.io-client 2.x (protocol v4 / Engine.IO v3), the article's style

const articleStyle = (token, extra = {}) => ({ query: 'token=' + token, ...extra });

test('7a. v2 client: query "token=JWT" -> welcome (default transports)', opts, async (t) => {
  const h = harness(t);
  const s = h.v2(articleStyle(TOKEN_VALID));
  await expectWelcome(h, s, 'error');
  assert.equal(s.connected, true);
});

test('7b. v2 client: websocket only -> welcome', opts, async (t) => {
  const h = harness(t);
  const s = h.v2(articleStyle(TOKEN_VALID, { transports: ['websocket'] }));
  await expectWelcome(h, s, 'error');
  assert.equal(s.io.engine.transport.name, 'websocket');
});

test('7c. v2 client: polling only -> welcome', opts, async (t) => {
  const h = harness(t);
  const s = h.v2(articleStyle(TOKEN_VALID, { transports: ['polling'] }));
  await expectWelcome(h, s, 'error');
  assert.equal(s.io.engine.transport.name, 'polling');
});

// socket.io-client 2.x reports a middleware refusal as an `error` event whose
// argument carries the message (there is no connect_error for it in 2.x).
const refusalsV2 = [
  ['forged token', articleStyle(TOKEN_FORGED), NOT_VALID],
  ['forged token, websocket only', articleStyle(TOKEN_FORGED, { transports: ['websocket'] }), NOT_VALID],
  ['wrong audience', articleStyle(TOKEN_WRONG_AUDIENCE), NOT_VALID],
  ['expired token', articleStyle(TOKEN_EXPIRED), EXPIRED],
  ['missing token', {}, NOT_VALID],
];
for (const [name, options, message] of refusalsV2) {
  test(`7. v2 client refused: ${name} -> error '${message}'`, opts, async (t) => {
    const h = harness(t);
    const s = h.v2(options);
    await expectRefused(h, s, message, 'error');
    assert.equal(s.connected, false);
  });
}

test('7d. v2 clients: message round trip (and across protocol versions)', opts, async (t) => {
  const h = harness(t);
  const a = h.v2(articleStyle(TOKEN_VALID));
  const b = h.v2(articleStyle(TOKEN_VALID, { transports: ['polling'] }));
  const c = h.v4({ auth: { token: TOKEN_VALID } });
  await Promise.all([expectWelcome(h, a, 'error'), expectWelcome(h, b, 'error'), expectWelcome(h, c)]);
  await expectBroadcast(h, a, [a, b, c], 'hello from A');
  await expectBroadcast(h, c, [a, b, c], 'hello from a v4 client');
  await expectBroadcast(h, b, [a, b, c], EURO_4096); // multi-byte text over Engine.IO v3 polling
  await expectIgnored(h, a, [a, b, c], [[{ text: 'x' }], [42], [EMOJI_4097]], 'valid after v2 junk');
});
