// The server API seen by the OFFICIAL socket.io-client 4.x: what
// POST /api/publish, /api/sessions/revoke and /api/disconnect do to real
// sockets, on one socket-server node or on two sharing one Redis (the sockets
// spread over both, the requests sent through either). Started by
// tests/cross_service/api.rs, once per mode.
//
// Inputs (environment):
//   SOCKET_URLS   two base URLs, comma-separated: node A and node B (one node:
//                 the same URL twice)
//   API_KEY       the nodes' api.key
//   JWT_SECRET    the HS256 shared key: the suite mints its own tokens, each
//                 with a `sid`, as an application that issues tokens would
//
// The nodes must be used by this suite alone while it runs: publications to
// `everyone` and the presence counts see every socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';
import { SignJWT } from 'jose';

const REQUIRED = ['SOCKET_URLS', 'API_KEY', 'JWT_SECRET'];
const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length) {
  throw new Error(`api.test.mjs: missing environment variable(s): ${missing.join(', ')}`);
}
const [A, B] = process.env.SOCKET_URLS.split(',');
if (!A || !B) throw new Error('api.test.mjs: SOCKET_URLS names two nodes (the same one twice for one node)');
const { API_KEY, JWT_SECRET } = process.env;

const DEADLINE_MS = 20_000; // hard deadline of every test
const WAIT_MS = 5_000; // one awaited outcome
const opts = { timeout: DEADLINE_MS };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;
// A login session id as the contract has them: opaque, at least 16 characters.
const newSid = () => `sid-${randomUUID()}`;

// A token as the application's own JWT code would make it.
async function mint(user, sid) {
  return new SignJWT({ user: { username: user }, sid })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setIssuer('web-frontend')
    .setAudience('socket-server')
    .setJti(randomUUID())
    .sign(new TextEncoder().encode(JWT_SECRET));
}

// One server API request to `node`; `body` a value (sent as JSON) or raw text.
async function api(node, path, body, headers = {}) {
  const response = await fetch(`${node}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${API_KEY}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined || typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await response.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: response.status, headers: response.headers, text, json };
}

// POST /api/publish, expected to be carried out: its answer.
async function publish(node, body, headers) {
  const res = await api(node, '/api/publish', body, headers);
  assert.equal(res.status, 200, `publish ${JSON.stringify(body)}: ${res.text}`);
  assert.equal(typeof res.json?.id, 'string', `an id: ${res.text}`);
  assert.ok(res.json.id.length > 0, 'a non-empty id');
  assert.equal(typeof res.json.sockets, 'number', `a count: ${res.text}`);
  return res;
}

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
  const sockets = new Set();
  t.after(() => {
    for (const s of sockets) {
      try { s.socket.close(); } catch { /* already gone */ }
    }
  });
  return {
    // A socket.io-client 4.x socket on `node` with `token`, recording every
    // event it receives (and its disconnect) in `log`, in arrival order.
    open(node, token, options = {}) {
      const socket = io(node, {
        forceNew: true, reconnection: false, timeout: WAIT_MS, auth: { token }, ...options,
      });
      const client = { socket, node, log: [] };
      socket.onAny((event, ...args) => client.log.push({ event, args }));
      socket.on('disconnect', (reason) => client.log.push({ event: 'disconnect', args: [reason] }));
      // Listened for at once: the handshake's outcome may come before it is awaited.
      client.outcome = outcomeOf(client);
      client.outcome.catch(() => {});
      sockets.add(client);
      return client;
    },
    // As `open`, then waits for `welcome`.
    async connect(node, user, sid, options = {}) {
      const client = this.open(node, await mint(user, sid), options);
      assert.deepEqual(await client.outcome, { welcome: { username: user } }, `${user} on ${node}`);
      return client;
    },
  };
}

// `{welcome: data}` or `{refused: message}`, whichever comes first.
function outcomeOf(client) {
  return new Promise((resolve, reject) => {
    const { socket } = client;
    const done = (value) => {
      clearTimeout(timer);
      socket.off('welcome', onWelcome);
      socket.off('connect_error', onRefused);
      resolve(value);
    };
    const onWelcome = (data) => done({ welcome: data });
    const onRefused = (err) => done({ refused: err.message });
    const timer = setTimeout(() => {
      socket.off('welcome', onWelcome);
      socket.off('connect_error', onRefused);
      reject(new Error(`neither welcome nor connect_error within ${WAIT_MS} ms`));
    }, WAIT_MS);
    socket.on('welcome', onWelcome);
    socket.on('connect_error', onRefused);
  });
}

// The arguments of every `event` the client received, in order.
const received = (client, event) => client.log.filter((e) => e.event === event).map((e) => e.args);
const names = (client) => client.log.map((e) => e.event);

// A barrier: a publication to everyone, sent after every request before it
// was answered, must reach `clients` after whatever those requests delivered
// (one order per node, every node in one order). Once it has arrived, a
// duplicate or a stray delivery would be in the logs already.
async function fence(clients) {
  const nonce = randomUUID();
  await publish(A, { to: 'everyone', event: 'fence', data: nonce });
  await waitFor(
    () => clients.every((c) => received(c, 'fence').some(([data]) => data === nonce)),
    () => `the fence at ${JSON.stringify(clients.map(names))}`,
  );
}

// The cluster's presence, polled (in the scaled mode it follows within moments).
async function presenceBecomes(expected) {
  let last;
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    last = (await api(A, '/api/presence')).json;
    if (last && last.users === expected.users && last.sockets === expected.sockets) return;
    if (Date.now() > deadline) {
      assert.fail(`presence ${JSON.stringify(last)}, expected ${JSON.stringify(expected)}`);
    }
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------
// Publications

test('a publication to user:NAME reaches every socket of that user once, on both nodes, through either node', opts, async (t) => {
  const h = harness(t);
  const [user, other] = [unique('ann'), unique('bob')];
  const [s1, s2] = [newSid(), newSid()];
  const ann = [
    await h.connect(A, user, s1),
    await h.connect(A, user, s2, { transports: ['websocket'] }),
    await h.connect(B, user, s1),
  ];
  const bob = await h.connect(B, other, newSid());

  const viaA = await publish(A, { to: `user:${user}`, event: 'notice', data: { via: 'A' } });
  const viaB = await publish(B, { to: `user:${user}`, event: 'notice', data: { via: 'B' } });
  await fence([...ann, bob]);

  assert.equal(viaA.json.sockets, 3, 'every socket of the user, on both nodes');
  assert.equal(viaB.json.sockets, 3);
  assert.notEqual(viaA.json.id, viaB.json.id, 'each publication has its own id');
  for (const client of ann) {
    assert.deepEqual(received(client, 'notice'), [[{ via: 'A' }], [{ via: 'B' }]], `${client.node}`);
  }
  assert.deepEqual(received(bob, 'notice'), [], 'another user gets nothing');
});

test('a publication to session:SID reaches the sockets of that login session only', opts, async (t) => {
  const h = harness(t);
  const user = unique('cid');
  const [session, otherSession] = [newSid(), newSid()];
  const inSession = [await h.connect(A, user, session), await h.connect(B, user, session)];
  const outside = [await h.connect(A, user, otherSession), await h.connect(B, unique('dan'), newSid())];

  const res = await publish(B, { to: `session:${session}`, event: 'session.note', data: 'yours' });
  const nobody = await publish(A, { to: `session:${newSid()}`, event: 'session.note', data: 'lost' });
  await fence([...inSession, ...outside]);

  assert.equal(res.json.sockets, 2);
  assert.equal(nobody.json.sockets, 0, 'a session without sockets counts 0');
  for (const client of inSession) assert.deepEqual(received(client, 'session.note'), [['yours']]);
  for (const client of outside) assert.deepEqual(received(client, 'session.note'), []);
});

test('a publication to everyone reaches every socket on every node and counts them all', opts, async (t) => {
  const h = harness(t);
  // Earlier tests' sockets are gone first: `everyone` counts every socket.
  await presenceBecomes({ users: 0, sockets: 0 });
  const [eve, fay] = [unique('eve'), unique('fay')];
  const clients = [
    await h.connect(A, eve, newSid()),
    await h.connect(B, eve, newSid(), { transports: ['polling'] }),
    await h.connect(B, fay, newSid()),
  ];
  await presenceBecomes({ users: 2, sockets: 3 });

  const viaA = await publish(A, { to: 'everyone', event: 'broadcast', data: 1 });
  const viaB = await publish(B, { to: ['everyone'], event: 'broadcast', data: 2 });
  await fence(clients);

  assert.equal(viaA.json.sockets, 3, 'cluster-wide');
  assert.equal(viaB.json.sockets, 3);
  for (const client of clients) assert.deepEqual(received(client, 'broadcast'), [[1], [2]]);
});

test('a socket matched by two targets gets the publication once and is counted once', opts, async (t) => {
  const h = harness(t);
  const [gil, hal] = [unique('gil'), unique('hal')];
  const [session, other] = [newSid(), newSid()];
  const both = [await h.connect(A, gil, session), await h.connect(B, gil, session)];
  const userOnly = await h.connect(B, gil, other);
  const hals = await h.connect(A, hal, newSid());

  const overlap = await publish(A, { to: [`user:${gil}`, `session:${session}`], event: 'twice', data: 'a' });
  const repeated = await publish(B, { to: [`session:${session}`, `session:${session}`, `user:${gil}`, `user:${hal}`], event: 'twice', data: 'b' });
  await fence([...both, userOnly, hals]);

  assert.equal(overlap.json.sockets, 3, 'the union of the targets, each socket once');
  assert.equal(repeated.json.sockets, 4);
  for (const client of both) assert.deepEqual(received(client, 'twice'), [['a'], ['b']]);
  assert.deepEqual(received(userOnly, 'twice'), [['a'], ['b']]);
  assert.deepEqual(received(hals, 'twice'), [['b']]);
});

test('data arrives exactly as published, as the one argument of the event', opts, async (t) => {
  const h = harness(t);
  const user = unique('ida');
  const clients = [await h.connect(A, user, newSid()), await h.connect(B, user, newSid(), { transports: ['polling'] })];
  const values = [
    { text: 'hi', n: 1, nested: { list: [1, 2, { deep: null }], empty: {} } },
    [1, 'two', null, true, false, [], {}, -0.5],
    'a string with "quotes", a \\ backslash, a\nnewline, ünïcödé ✓, 😀 and \u2028',
    '',
    0,
    -12.5,
    1e21,
    9007199254740991,
    null,
    true,
    false,
    [],
    {},
  ];
  for (const [i, data] of values.entries()) {
    await publish(i % 2 ? B : A, { to: `user:${user}`, event: 'exact', data });
  }
  // The body's own bytes are what travels: escapes and spacing included.
  await publish(A, `{"to": "user:${user}", "event": "exact", "data": { "k" : "\\u00e9\\ud83d\\ude00" , "x":[ 1 ,2 ] }}`);
  await fence(clients);

  for (const client of clients) {
    assert.deepEqual(
      received(client, 'exact'),
      [...values.map((data) => [data]), [{ k: 'é😀', x: [1, 2] }]],
      `${client.node}`,
    );
  }
});

test('publications to one target arrive in the order the API accepted them, alternating nodes', opts, async (t) => {
  const h = harness(t);
  const user = unique('ole');
  const clients = [
    await h.connect(A, user, newSid()),
    await h.connect(B, user, newSid(), { transports: ['websocket'] }),
  ];
  const ids = new Set();
  for (let i = 1; i <= 200; i += 1) {
    const res = await publish(i % 2 ? A : B, { to: `user:${user}`, event: 'seq', data: i });
    assert.equal(res.json.sockets, 2, `publication ${i}`);
    ids.add(res.json.id);
  }
  await fence(clients);

  const expected = Array.from({ length: 200 }, (_, i) => [i + 1]);
  for (const client of clients) assert.deepEqual(received(client, 'seq'), expected, `${client.node}`);
  assert.equal(ids.size, 200, 'every publication has its own id');
});

// ---------------------------------------------------------------------------
// Idempotency-Key

test('an idempotent repeat gets the first answer again, says so and delivers nothing, through either node', opts, async (t) => {
  const h = harness(t);
  const user = unique('kim');
  const clients = [await h.connect(A, user, newSid()), await h.connect(B, user, newSid())];
  const key = `order-${randomUUID()}`;
  const body = { to: `user:${user}`, event: 'paid', data: { order: 1 } };

  const first = await publish(A, body, { 'idempotency-key': key });
  const againA = await publish(A, body, { 'idempotency-key': key });
  const againB = await publish(B, body, { 'idempotency-key': key });
  // The key decides, whatever the repeat says.
  const altered = await publish(B, { ...body, data: { order: 'other' } }, { 'idempotency-key': key });
  const otherKey = await publish(B, body, { 'idempotency-key': `${key}-2` });
  await fence(clients);

  assert.equal(first.json.sockets, 2);
  assert.equal(first.headers.get('idempotent-replayed'), null, 'the first is no repeat');
  for (const repeat of [againA, againB, altered]) {
    assert.equal(repeat.text, first.text, 'the first answer, byte for byte');
    assert.equal(repeat.headers.get('idempotent-replayed'), 'true');
  }
  assert.equal(otherKey.headers.get('idempotent-replayed'), null);
  assert.notEqual(otherKey.json.id, first.json.id);
  assert.equal(otherKey.json.sockets, 2);
  for (const client of clients) {
    assert.deepEqual(received(client, 'paid'), [[{ order: 1 }], [{ order: 1 }]], 'once per key');
  }
});

test('two requests with one Idempotency-Key at the same time, one per node, deliver once', opts, async (t) => {
  const h = harness(t);
  const user = unique('lea');
  const clients = [await h.connect(A, user, newSid()), await h.connect(B, user, newSid())];
  const key = randomUUID();
  const body = { to: `user:${user}`, event: 'race', data: 'once' };

  const answers = await Promise.all([
    publish(A, body, { 'idempotency-key': key }),
    publish(B, body, { 'idempotency-key': key }),
  ]);
  await fence(clients);

  assert.equal(answers[0].text, answers[1].text, 'both get the one answer');
  const replayed = answers.map((a) => a.headers.get('idempotent-replayed'));
  assert.deepEqual(replayed.sort(), ['true', null].sort(), 'one carried out, one replayed');
  for (const client of clients) assert.deepEqual(received(client, 'race'), [['once']]);
});

// ---------------------------------------------------------------------------
// Revoke and disconnect

test('a revoked session ends on every node, and its tokens are refused there on connect and reauth', opts, async (t) => {
  const h = harness(t);
  const user = unique('max');
  const [session, kept] = [newSid(), newSid()];
  const ended = [await h.connect(A, user, session), await h.connect(B, user, session)];
  const staying = [await h.connect(A, user, kept), await h.connect(B, user, kept)];
  const revokedUntil = Math.floor(Date.now() / 1000) + 300;

  const res = await api(B, '/api/sessions/revoke', { sid: session, until: revokedUntil });

  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { sockets: 2 });
  for (const client of ended) {
    await waitForClient(() => received(client, 'disconnect').length === 1, client);
    assert.deepEqual(
      client.log.filter((e) => e.event !== 'welcome'),
      [{ event: 'session_ended', args: [{ reason: 'logged out' }] }, { event: 'disconnect', args: ['io server disconnect'] }],
      'session_ended, then the server disconnects',
    );
  }
  for (const node of [A, B]) {
    const refused = await h.open(node, await mint(user, session)).outcome;
    assert.deepEqual(refused, { refused: 'token revoked' }, `a new connect on ${node}`);
    for (const client of staying.filter((c) => c.node === node)) {
      const ack = await client.socket.timeout(WAIT_MS).emitWithAck('reauth', { token: await mint(user, session) });
      assert.deepEqual(ack, { ok: false, error: 'token revoked' }, `reauth on ${node}`);
    }
  }
  await fence(staying);
  for (const client of staying) {
    assert.equal(client.socket.connected, true, 'another session of the same user stays');
    assert.deepEqual(received(client, 'session_ended'), []);
  }
  // Revoked again: nothing left to end.
  assert.deepEqual((await api(A, '/api/sessions/revoke', { sid: session, until: revokedUntil })).json, { sockets: 0 });
});

test('a revocation far in the future is kept no longer than a token lives, and refuses at once', opts, async (t) => {
  const h = harness(t);
  const user = unique('ned');
  const session = newSid();
  const client = await h.connect(B, user, session);

  const res = await api(A, '/api/sessions/revoke', { sid: session, until: Number.MAX_SAFE_INTEGER });

  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { sockets: 1 });
  await waitForClient(() => received(client, 'disconnect').length === 1, client);
  for (const node of [A, B]) {
    assert.deepEqual(await h.open(node, await mint(user, session)).outcome, { refused: 'token revoked' });
  }
  // The node still serves.
  const fresh = await h.connect(A, user, newSid());
  await fence([fresh]);
});

test('a revocation whose end has passed ends the sockets and refuses no later token', opts, async (t) => {
  const h = harness(t);
  const user = unique('ora');
  const now = Math.floor(Date.now() / 1000);
  for (const until of [now - 60, 1, 0, -1]) {
    const session = newSid();
    const clients = [await h.connect(A, user, session), await h.connect(B, user, session)];

    const res = await api(B, '/api/sessions/revoke', { sid: session, until });

    assert.equal(res.status, 200, `until ${until}: ${res.text}`);
    assert.deepEqual(res.json, { sockets: 2 }, `until ${until}`);
    for (const client of clients) {
      await waitForClient(() => received(client, 'disconnect').length === 1, client);
      assert.deepEqual(received(client, 'session_ended'), [[{ reason: 'logged out' }]]);
    }
    const again = await h.connect(B, user, session);
    again.socket.close();
  }
});

test('a disconnect ends the targets\' sockets on every node and their tokens stay valid', opts, async (t) => {
  const h = harness(t);
  const [pat, quinn] = [unique('pat'), unique('quinn')];
  const session = newSid();
  const token = await mint(pat, session);
  const pats = [h.open(A, token), h.open(B, token, { transports: ['websocket'] })];
  for (const client of pats) assert.deepEqual(await client.outcome, { welcome: { username: pat } });
  const bystander = await h.connect(A, quinn, newSid());

  const res = await api(A, '/api/disconnect', { to: [`user:${pat}`, `session:${session}`] });

  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { sockets: 2 }, 'each socket once');
  for (const client of pats) {
    await waitForClient(() => received(client, 'disconnect').length === 1, client);
    const [ended, disconnect] = client.log.filter((e) => e.event !== 'welcome');
    assert.equal(ended.event, 'session_ended');
    assert.equal(typeof ended.args[0]?.reason, 'string');
    assert.deepEqual(disconnect, { event: 'disconnect', args: ['io server disconnect'] });
  }
  // The same token connects again, on either node.
  for (const node of [A, B]) {
    assert.deepEqual(await h.open(node, token).outcome, { welcome: { username: pat } }, node);
  }
  await fence([bystander]);
  assert.deepEqual(received(bystander, 'session_ended'), []);
  assert.equal(bystander.socket.connected, true);
});

// Waits for a client's condition, naming the client when it fails.
async function waitForClient(condition, client) {
  await waitFor(condition, () => `${client.node}: ${JSON.stringify(client.log)}`);
}
