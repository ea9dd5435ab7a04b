// Rooms seen by the OFFICIAL socket.io-client 4.x (and, in one test, by
// python-socketio beside it): joins allowed and refused by the token's
// `rooms` patterns, leave, room messages reaching exactly the members,
// narrowing on `reauth`, the server API's room:NAME target and room presence.
// On one socket-server node, or on two sharing one Redis (members spread over
// both). Started by tests/cross_service/rooms.rs, once per mode.
//
// Inputs (environment):
//   SOCKET_URLS   two base URLs, comma-separated: node A and node B (one node:
//                 the same URL twice)
//   API_KEY       the nodes' api.key
//   JWT_SECRET    the HS256 shared key: the suite mints its own tokens, with
//                 the `rooms` claim, as an application that issues tokens would
//   PYTHON        Debian's /usr/bin/python3, with python3-socketio
//   PY_CLIENT     tests/py/rooms_client.py
//
// Every user and room name is unique to its test, so tests never see each
// other's sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { io } from 'socket.io-client';
import { SignJWT } from 'jose';

const REQUIRED = ['SOCKET_URLS', 'API_KEY', 'JWT_SECRET', 'PYTHON', 'PY_CLIENT'];
const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length) {
  throw new Error(`rooms.test.mjs: missing environment variable(s): ${missing.join(', ')}`);
}
const [A, B] = process.env.SOCKET_URLS.split(',');
if (!A || !B) throw new Error('rooms.test.mjs: SOCKET_URLS names two nodes (the same one twice for one node)');
const { API_KEY, JWT_SECRET, PYTHON, PY_CLIENT } = process.env;

const DEADLINE_MS = 20_000; // hard deadline of every test
const WAIT_MS = 5_000; // one awaited outcome
const opts = { timeout: DEADLINE_MS };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const tag = () => randomUUID().slice(0, 8);
const unique = (prefix) => `${prefix}-${tag()}`;

const OK = { ok: true };
const FORBIDDEN = { ok: false, error: 'forbidden' };

// A token as the application's own JWT code would make it; `rooms` undefined:
// no claim at all.
async function mint(user, rooms, extra = {}) {
  return new SignJWT({ user: { username: user }, sid: `sid-${randomUUID()}`, ...(rooms !== undefined && { rooms }), ...extra })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setIssuer('web-frontend')
    .setAudience('socket-server')
    .setJti(randomUUID())
    .sign(new TextEncoder().encode(JWT_SECRET));
}

// One server API request to `node`: GET without a body, else POST of JSON.
async function api(node, path, body) {
  const response = await fetch(`${node}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${API_KEY}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await response.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: response.status, text, json };
}

// GET /api/presence/room:NAME through `node`: its JSON answer.
async function roomPresence(node, name) {
  const res = await api(node, `/api/presence/room:${encodeURIComponent(name)}`);
  assert.equal(res.status, 200, `presence of room ${name}: ${res.text}`);
  return res.json;
}

// Polls room presence through both nodes until it is `expected`
// (disconnections are noticed by the server a moment after the client closes).
async function roomPresenceBecomes(name, expected) {
  for (const node of [A, B]) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const now = await roomPresence(node, name);
      try {
        assert.deepEqual(now, expected);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      await sleep(20);
    }
  }
}

const presenceOf = (room, users, sockets) => ({ room, users: [...users].sort(), sockets });

// Polls `condition` every 5 ms until it holds, or fails after `ms`.
async function waitFor(condition, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`);
    await sleep(5);
  }
}

// Every test's sockets, closed when it ends (passed, failed or timed out).
function harness(t) {
  const clients = new Set();
  t.after(() => {
    for (const c of clients) {
      try { c.socket.close(); } catch { /* already gone */ }
    }
  });
  return {
    // A welcomed socket.io-client 4.x socket of `user` on `node`, its token
    // allowing `rooms`; every event it receives is logged in arrival order.
    async connect(node, user, rooms, options = {}) {
      const token = await mint(user, rooms);
      const socket = io(node, {
        forceNew: true, reconnection: false, timeout: WAIT_MS, auth: { token }, ...options,
      });
      const client = { socket, node, user, log: [] };
      clients.add(client);
      socket.onAny((event, ...args) => client.log.push({ event, args }));
      const welcome = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${user}: no welcome within ${WAIT_MS} ms`)), WAIT_MS);
        socket.once('welcome', (data) => { clearTimeout(timer); resolve(data); });
        socket.once('connect_error', (err) => { clearTimeout(timer); reject(new Error(`${user}: refused: ${err.message}`)); });
      });
      assert.deepEqual(welcome, { username: user });
      return client;
    },
  };
}

// Emits `event` with `args` and an ack: the ack's first argument.
const call = (client, event, ...args) => client.socket.timeout(WAIT_MS).emitWithAck(event, ...args);
const join = (client, room) => call(client, 'join', { room });
const leave = (client, room) => call(client, 'leave', { room });
const say = (client, room, text) => client.socket.emit('message', { room, text });

// The first arguments of every `message` the client received, in order.
const messages = (client) => client.log.filter((e) => e.event === 'message').map((e) => e.args[0]);
const roomMessages = (client, room) => messages(client).filter((m) => m && m.room === room);

// A barrier behind everything `sender` sent before: a plain message (to
// everyone) travels the same ordered relay as its room messages, so once it
// has reached `clients`, any room message sent before it has too.
async function fence(sender, clients) {
  const nonce = `fence-${randomUUID()}`;
  sender.socket.emit('message', nonce);
  await waitFor(
    () => clients.every((c) => messages(c).some((m) => m.text === nonce && m.from === sender.user)),
    () => `the fence from ${sender.user} at ${JSON.stringify(clients.map((c) => messages(c)))}`,
  );
}

// ---------------------------------------------------------------------------
// Joining

test('a join the token allows is acked {"ok": true}; one it does not is {"ok": false, "error": "forbidden"}', opts, async (t) => {
  const h = harness(t);
  const t42 = `team:${tag()}`;
  const ann = await h.connect(A, unique('ann'), [t42, 'lobby']);
  const none = await h.connect(B, unique('bob'));
  const empty = await h.connect(B, unique('cid'), []);

  assert.deepEqual(await join(ann, t42), OK);
  assert.deepEqual(await join(ann, t42), OK, 'joining again is fine');
  assert.deepEqual(await join(ann, 'lobby'), OK);
  assert.deepEqual(await join(ann, `team:${tag()}`), FORBIDDEN);
  assert.deepEqual(await join(ann, 'Lobby'), FORBIDDEN, 'names are compared exactly');
  assert.deepEqual(await join(ann, ' lobby'), FORBIDDEN);
  for (const client of [none, empty]) {
    assert.deepEqual(await join(client, t42), FORBIDDEN, 'a token without rooms allows none');
    assert.deepEqual(await join(client, 'lobby'), FORBIDDEN);
  }
  assert.deepEqual(await roomPresence(B, t42), presenceOf(t42, [ann.user], 1));
});

test('patterns: org:7:* matches org:7:x and org:7: but not org:70 nor org:7; team:42 does not match team:420', opts, async (t) => {
  const h = harness(t);
  const [org, team] = [`org${tag()}:7`, `team${tag()}:42`];
  const client = await h.connect(B, unique('dee'), [team, `${org}:*`]);

  for (const allowed of [`${org}:x`, `${org}:`, `${org}:x:y`, `${org}:*`, `${org}:🚀`, team]) {
    assert.deepEqual(await join(client, allowed), OK, allowed);
  }
  for (const refused of [`${org}0`, org, `${org.slice(0, -1)}`, `${team}0`, team.slice(0, -1), `${team}:x`, `x${team}`, `${org.toUpperCase()}:x`]) {
    assert.deepEqual(await join(client, refused), FORBIDDEN, refused);
  }
  // A `*` that is not last is a character: "a*b" allows "a*b" only.
  const star = await h.connect(A, unique('eli'), ['a*b']);
  assert.deepEqual(await join(star, 'a*b'), OK);
  assert.deepEqual(await join(star, 'axb'), FORBIDDEN);
  assert.deepEqual(await join(star, 'ab'), FORBIDDEN);
});

test('names that are not strings, empty, over 100 characters, with control characters or reserved are forbidden', opts, async (t) => {
  const h = harness(t);
  const user = unique('fay');
  const other = await h.connect(A, unique('gus'));
  // `*` allows every name: only the name's own rules refuse these.
  const client = await h.connect(B, user, ['*']);

  const hundred = 'é'.repeat(100);
  assert.deepEqual(await join(client, hundred), OK, '100 characters (200 bytes) is fine');
  assert.deepEqual(await join(client, `${tag()}${'x'.repeat(92)}`), OK, '100 ASCII characters');
  const refused = [
    '', 'é'.repeat(101), 'x'.repeat(101), 'x'.repeat(10_000),
    'a\u0000b', 'tab\there', 'new\nline', 'cr\r', '\u001b[31m', 'del\u007f', 'nel\u0085',
    `user:${user}`, `user:${other.user}`, 'user:', `session:${randomUUID()}`, 'session:',
  ];
  for (const name of refused) {
    assert.deepEqual(await join(client, name), FORBIDDEN, JSON.stringify(name.slice(0, 20)));
  }
  for (const payload of [
    { room: 42 }, { room: null }, { room: ['lobby'] }, { room: { name: 'lobby' } }, { room: true },
    {}, { name: 'lobby' }, 'lobby', 42, null, ['lobby'], { room: Buffer.from('lobby') },
  ]) {
    assert.deepEqual(await call(client, 'join', payload), FORBIDDEN, JSON.stringify(payload));
    assert.deepEqual(await call(client, 'leave', payload), FORBIDDEN, `leave ${JSON.stringify(payload)}: not {"room": NAME}`);
  }
  assert.deepEqual(await call(client, 'join'), FORBIDDEN, 'no argument at all');
  // Refused names leave the user's own rooms alone: `user:` still reaches only its sockets.
  const res = await api(A, '/api/publish', { to: `user:${other.user}`, event: 'only', data: 1 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.sockets, 1, 'the user room holds its own socket only');
  await waitFor(() => other.log.some((e) => e.event === 'only'), () => 'the publication');
  assert.ok(!client.log.some((e) => e.event === 'only'), 'never in another user\'s room');
});

test('leave is acked {"ok": true}, whether the socket was in the room or not, and stops its room messages', opts, async (t) => {
  const h = harness(t);
  const room = `team:${tag()}`;
  const rooms = [room];
  const [ann, bob] = [await h.connect(A, unique('hal'), rooms), await h.connect(B, unique('ida'), rooms)];
  assert.deepEqual(await join(ann, room), OK);
  assert.deepEqual(await join(bob, room), OK);
  assert.deepEqual(await roomPresence(A, room), presenceOf(room, [ann.user, bob.user], 2));

  assert.deepEqual(await leave(bob, room), OK);
  assert.deepEqual(await leave(bob, room), OK, 'again');
  assert.deepEqual(await leave(bob, `team:${tag()}`), OK, 'a room it never joined');
  // Names no socket can be in: nothing to leave, still {"ok": true} — and
  // the rooms a socket is in by who it is stay as they are.
  for (const name of ['', 'x'.repeat(101), 'a\u0000b', `user:${bob.user}`, 'session:x']) {
    assert.deepEqual(await leave(bob, name), OK, JSON.stringify(name.slice(0, 20)));
  }
  const own = await api(A, '/api/publish', { to: `user:${bob.user}`, event: 'still.yours', data: 1 });
  assert.equal(own.json?.sockets, 1, `bob is still in his user room: ${own.text}`);
  assert.deepEqual(await roomPresence(B, room), presenceOf(room, [ann.user], 1));

  say(ann, room, 'after bob left');
  await fence(ann, [ann, bob]);
  assert.deepEqual(roomMessages(ann, room), [{ from: ann.user, room, text: 'after bob left' }]);
  assert.deepEqual(roomMessages(bob, room), [], 'a socket that left gets no room message');
  // bob's room messages are ignored now; it may come back.
  say(bob, room, 'not a member');
  await fence(bob, [ann, bob]);
  assert.deepEqual(roomMessages(ann, room).length, 1);
  assert.deepEqual(await join(bob, room), OK);
  assert.deepEqual(await roomPresence(A, room), presenceOf(room, [ann.user, bob.user], 2));
});

// ---------------------------------------------------------------------------
// Messages

test('a room message reaches exactly the room\'s members, on both nodes, from either node', opts, async (t) => {
  const h = harness(t);
  const room = `team:${tag()}`;
  const rooms = [room, 'elsewhere:*'];
  const a1 = await h.connect(A, unique('jo'), rooms);
  const b1 = await h.connect(B, unique('kai'), rooms, { transports: ['polling'] });
  const b2 = await h.connect(B, a1.user, rooms, { transports: ['websocket'] }); // a1's user, second socket
  const outsider = await h.connect(A, unique('lea'), rooms); // may join, has not
  const elsewhere = await h.connect(B, unique('max'), rooms);
  for (const member of [a1, b1, b2]) assert.deepEqual(await join(member, room), OK);
  assert.deepEqual(await join(elsewhere, 'elsewhere:1'), OK);

  say(a1, room, 'sent on A');
  say(b1, room, 'sent on B');
  say(outsider, room, 'from outside'); // ignored: not a member
  say(elsewhere, room, 'from another room'); // ignored too
  const everyone = [a1, b1, b2, outsider, elsewhere];
  for (const sender of [a1, b1, outsider, elsewhere]) await fence(sender, everyone);

  for (const member of [a1, b1, b2]) {
    const got = roomMessages(member, room);
    assert.equal(got.length, 2, `${member.user} on ${member.node}: ${JSON.stringify(got)}`);
    assert.deepEqual(
      [...got].sort((x, y) => x.text.localeCompare(y.text)),
      [{ from: b1.user, room, text: 'sent on B' }, { from: a1.user, room, text: 'sent on A' }]
        .sort((x, y) => x.text.localeCompare(y.text)),
      'the exact payload, `from` from the token',
    );
  }
  for (const other of [outsider, elsewhere]) {
    assert.deepEqual(roomMessages(other, room), [], `${other.user} is not in ${room}`);
  }
});

test('room messages keep their order; a plain string message keeps its v1 meaning', opts, async (t) => {
  const h = harness(t);
  const room = `team:${tag()}`;
  const sender = await h.connect(A, unique('ned'), [room]);
  const member = await h.connect(B, unique('oli'), [room]);
  const outsider = await h.connect(B, unique('pam'));
  assert.deepEqual(await join(sender, room), OK);
  assert.deepEqual(await join(member, room), OK);

  for (let i = 0; i < 50; i += 1) say(sender, room, `n${i}`);
  sender.socket.emit('message', 'hello everyone');
  const hello = { from: sender.user, text: 'hello everyone' };
  await waitFor(() => [sender, member, outsider].every((c) => messages(c).some((m) => m.text === hello.text)), () => 'hello');

  const expected = Array.from({ length: 50 }, (_, i) => ({ from: sender.user, room, text: `n${i}` }));
  for (const client of [sender, member]) {
    assert.deepEqual(roomMessages(client, room), expected, `${client.user}: in order, each once`);
  }
  for (const client of [sender, member, outsider]) {
    const plain = messages(client).filter((m) => m.text === hello.text);
    assert.deepEqual(plain, [hello], 'everyone, exactly {"from", "text"}: no room key');
  }
});

test('room messages that are malformed, too long or for a room not joined are ignored', opts, async (t) => {
  const h = harness(t);
  const room = `team:${tag()}`;
  const member = await h.connect(A, unique('quin'), [room, 'other:*']);
  const watcher = await h.connect(B, unique('ray'), [room]);
  assert.deepEqual(await join(member, room), OK);
  assert.deepEqual(await join(watcher, room), OK);

  for (const payload of [
    { room }, { room, text: 5 }, { room, text: null }, { room: 5, text: 'x' }, { room: null, text: 'x' },
    { room: 'other:1', text: 'not joined' }, { room: `user:${watcher.user}`, text: 'reserved' },
    { room, text: 'x'.repeat(4097) }, { room, text: ['x'] },
    // Binary is not a string, even when its bytes are valid UTF-8.
    { room, text: Buffer.from('binary text') }, { room: Buffer.from(room), text: 'binary room' },
  ]) {
    member.socket.emit('message', payload);
  }
  say(member, room, 'é'.repeat(2048)); // 4096 bytes: the longest relayed
  await fence(member, [member, watcher]);
  for (const client of [member, watcher]) {
    assert.deepEqual(roomMessages(client, room), [{ from: member.user, room, text: 'é'.repeat(2048) }]);
    assert.deepEqual(messages(client).filter((m) => !m.text.startsWith('fence-') && m.room !== room), []);
  }
});

// ---------------------------------------------------------------------------
// reauth

test('reauth with a narrower token leaves the rooms it no longer allows at once; an allowed room stays', opts, async (t) => {
  const h = harness(t);
  const [team, org] = [`team:${tag()}`, `org:${tag()}`];
  const wide = [team, `${org}:*`];
  const user = unique('sam');
  const narrowed = await h.connect(B, user, wide);
  const member = await h.connect(A, unique('tia'), wide);
  for (const client of [narrowed, member]) {
    assert.deepEqual(await join(client, team), OK);
    assert.deepEqual(await join(client, `${org}:x`), OK);
  }

  // A refused reauth (another user's token) changes nothing.
  const refused = await call(narrowed, 'reauth', { token: await mint(member.user, []) });
  assert.deepEqual(refused, { ok: false, error: 'not valid token' });
  assert.deepEqual(await roomPresence(A, team), presenceOf(team, [user, member.user], 2));

  const ack = await call(narrowed, 'reauth', { token: await mint(user, [`${org}:*`]) });
  assert.equal(ack.ok, true, JSON.stringify(ack));
  // Right after the ack, from the other node: the room it left, then one it kept.
  const before = roomMessages(narrowed, team).length;
  say(member, team, 'after the reauth');
  say(member, `${org}:x`, 'still here');
  await waitFor(() => roomMessages(narrowed, `${org}:x`).length === 1, () => JSON.stringify(messages(narrowed)));
  assert.deepEqual(roomMessages(narrowed, `${org}:x`), [{ from: member.user, room: `${org}:x`, text: 'still here' }]);
  assert.equal(roomMessages(narrowed, team).length, before, 'nothing from the room it left');
  await fence(member, [member]);
  assert.deepEqual(roomMessages(member, team), [{ from: member.user, room: team, text: 'after the reauth' }]);

  assert.deepEqual(await roomPresence(A, team), presenceOf(team, [member.user], 1));
  assert.deepEqual(await roomPresence(B, `${org}:x`), presenceOf(`${org}:x`, [user, member.user], 2));
  assert.deepEqual(await join(narrowed, team), FORBIDDEN, 'the fresh token decides');
  assert.deepEqual(await join(narrowed, `${org}:y`), OK);
  say(narrowed, team, 'not a member any more');
  await fence(narrowed, [member]);
  assert.equal(roomMessages(member, team).length, 1, 'its room message to the left room is ignored');
  const pub = await api(B, '/api/publish', { to: `room:${team}`, event: 'room.note', data: 'n' });
  assert.equal(pub.json?.sockets, 1, pub.text);

  // A token without the claim allows no room: every room is left.
  const bare = await call(narrowed, 'reauth', { token: await mint(user) });
  assert.equal(bare.ok, true, JSON.stringify(bare));
  assert.deepEqual(await roomPresence(A, `${org}:x`), presenceOf(`${org}:x`, [member.user], 1));
  assert.deepEqual(await roomPresence(A, `${org}:y`), presenceOf(`${org}:y`, [], 0));
  await waitFor(() => member.log.some((e) => e.event === 'room.note'), () => 'the note');
  assert.ok(!narrowed.log.some((e) => e.event === 'room.note'));
});

// ---------------------------------------------------------------------------
// The server API

test('the API\'s room:NAME target reaches the room\'s sockets on every node, counted, each once', opts, async (t) => {
  const h = harness(t);
  const room = `order:${tag()}`;
  const user = unique('uma');
  const members = [
    await h.connect(A, user, [room]),
    await h.connect(B, user, [room]),
    await h.connect(B, unique('vic'), [room], { transports: ['polling'] }),
  ];
  const outsider = await h.connect(A, unique('wes'), [room]);
  for (const member of members) assert.deepEqual(await join(member, room), OK);

  const viaA = await api(A, '/api/publish', { to: `room:${room}`, event: 'order.shipped', data: { id: 7 } });
  const viaB = await api(B, '/api/publish', { to: [`room:${room}`, `user:${user}`], event: 'order.shipped', data: { id: 8 } });
  const nobody = await api(A, '/api/publish', { to: `room:${room}-empty`, event: 'order.shipped', data: 0 });
  for (const res of [viaA, viaB, nobody]) assert.equal(res.status, 200, res.text);
  assert.equal(viaA.json.sockets, 3, 'cluster-wide');
  assert.equal(viaB.json.sockets, 3, 'a socket in two targets counts once');
  assert.equal(nobody.json.sockets, 0);
  const shipped = (c) => c.log.filter((e) => e.event === 'order.shipped').map((e) => e.args);
  await waitFor(() => members.every((c) => shipped(c).length === 2), () => JSON.stringify(members.map(shipped)));
  // A fence through the API (same ordered path): nothing more, nothing for the outsider.
  const fence = await api(B, '/api/publish', { to: 'everyone', event: 'api.fence', data: room });
  assert.equal(fence.status, 200, fence.text);
  await waitFor(() => [...members, outsider].every((c) => c.log.some((e) => e.event === 'api.fence' && e.args[0] === room)), () => 'the fence');
  for (const member of members) assert.deepEqual(shipped(member), [[{ id: 7 }], [{ id: 8 }]], member.node);
  assert.deepEqual(shipped(outsider), []);
});

test('GET /api/presence/room:NAME names the room\'s users, sorted, and counts its sockets, cluster-wide', opts, async (t) => {
  const h = harness(t);
  const room = `team:${tag()}`;
  const [zed, amy, kim] = ['zed', 'amy', 'kim'].map(unique);
  const clients = [
    await h.connect(A, zed, [room]),
    await h.connect(B, amy, [room]),
    await h.connect(A, kim, [room]),
    await h.connect(B, kim, [room]),
  ];
  assert.deepEqual(await roomPresence(A, room), presenceOf(room, [], 0), 'a room nobody joined');
  for (const client of clients) assert.deepEqual(await join(client, room), OK);
  for (const node of [A, B]) {
    const answer = await roomPresence(node, room);
    assert.deepEqual(answer, { room, users: [amy, kim, zed].sort(), sockets: 4 });
    assert.deepEqual(Object.keys(answer).sort(), ['room', 'sockets', 'users'], 'no "truncated" below 1,000 users');
  }
  assert.deepEqual(await leave(clients[2], room), OK);
  assert.deepEqual(await roomPresence(B, room), presenceOf(room, [amy, kim, zed], 3), 'kim still has a socket in it');
  clients[3].socket.close();
  await roomPresenceBecomes(room, presenceOf(room, [amy, zed], 2));
  clients[0].socket.close();
  clients[1].socket.close();
  await roomPresenceBecomes(room, presenceOf(room, [], 0));
  // A name with characters a URL must escape, and bad names.
  const odd = `a room/with?odd#chars ${tag()}`;
  const oddOne = await h.connect(B, unique('odd'), [odd]);
  assert.deepEqual(await join(oddOne, odd), OK);
  assert.deepEqual(await roomPresence(A, odd), presenceOf(odd, [oddOne.user], 1));
  for (const bad of ['room:', `room:${'x'.repeat(101)}`, 'room:a%00b']) {
    const res = await api(A, `/api/presence/${bad}`);
    assert.equal(res.status, 400, `${bad.slice(0, 20)}: ${res.text}`);
    assert.equal(typeof res.json?.error, 'string');
  }
});

// ---------------------------------------------------------------------------
// The claim

test('a token whose rooms claim is not an array of 1 to 100 patterns of 1 to 100 characters is refused', opts, async (t) => {
  const h = harness(t);
  const refusal = async (rooms) => {
    const socket = io(A, { forceNew: true, reconnection: false, timeout: WAIT_MS, auth: { token: await mint(unique('bad'), rooms) } });
    try {
      return await new Promise((resolve) => {
        socket.once('welcome', () => resolve('welcomed'));
        socket.once('connect_error', (err) => resolve(err.message));
      });
    } finally {
      socket.close();
    }
  };
  for (const rooms of ['team:42', 42, { team: 42 }, [42], [null], [['team:42']], [''], ['x'.repeat(101)], Array.from({ length: 101 }, (_, i) => `r${i}`), ['tab\t']]) {
    assert.equal(await refusal(rooms), 'not valid token', JSON.stringify(rooms).slice(0, 60));
  }
  // At the bounds: 100 patterns, 100 characters and a `*`.
  const most = Array.from({ length: 99 }, (_, i) => `r${i}`).concat([`${'x'.repeat(100)}*`]);
  const client = await h.connect(B, unique('max'), most);
  assert.deepEqual(await join(client, `${'x'.repeat(100)}`), OK);
  assert.deepEqual(await join(client, 'r99'), FORBIDDEN);
  assert.deepEqual(await join(client, 'r98'), OK);
});

// ---------------------------------------------------------------------------
// python-socketio beside the official client

test('python-socketio joins (ack), is refused, exchanges room messages with an official client and leaves', opts, async (t) => {
  const h = harness(t);
  const room = `team:${tag()}`;
  const member = await h.connect(A, unique('node'), [room]);
  assert.deepEqual(await join(member, room), OK);
  const py = unique('py');
  const child = spawn(PYTHON, [PY_CLIENT], {
    env: {
      SOCKET_URL: B,
      TOKEN: await mint(py, [room, 'org:9:*']),
      USERNAME: py,
      ROOM: room,
      FORBIDDEN: `team:${tag()}`,
      MEMBER: member.user,
      PATH: process.env.PATH,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill());
  const steps = [];
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  createInterface({ input: child.stdout }).on('line', (line) => {
    try { steps.push(JSON.parse(line)); } catch { steps.push({ step: 'unparsed', line }); }
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const report = () => `${JSON.stringify(steps)}\n${stderr}`;
  const step = (name) => waitFor(() => steps.some((s) => s.step === name) || steps.some((s) => s.step === 'error'), report, DEADLINE_MS / 2)
    .then(() => { assert.ok(steps.some((s) => s.step === name), `python: ${report()}`); });

  await step('ready');
  assert.deepEqual(await roomPresence(A, room), presenceOf(room, [member.user, py], 2));
  say(member, room, 'from node');
  await step('sent');
  await waitFor(() => roomMessages(member, room).some((m) => m.from === py), report);
  assert.deepEqual(roomMessages(member, room), [
    { from: member.user, room, text: 'from node' },
    { from: py, room, text: 'from python' },
  ]);
  await step('left');
  assert.deepEqual(await roomPresence(B, room), presenceOf(room, [member.user], 1));
  say(member, room, 'after leave');
  member.socket.emit('message', 'marker');
  assert.equal(await exited, 0, `python-socketio: ${report()}`);
  assert.deepEqual(steps.map((s) => s.step), ['welcome', 'ready', 'got', 'sent', 'left', 'marker', 'done'], report());
});
