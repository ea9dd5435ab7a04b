// Connection state recovery seen by the OFFICIAL socket.io-client 4.x with its
// default recovery behaviour (it sends `pid` and its last offset by itself):
// what was published while a socket's transport was cut arrives when it comes
// back — in order, once, `socket.recovered === true`, the same `socket.id`, its
// rooms — and every case that must connect as new does, with nothing replayed.
// On one socket-server node (embedded) or on two sharing one Redis (scaled).
// Started by tests/cross_service/recovery.rs, once per mode.
//
// The transport is cut by a TCP proxy in front of the node (as a load balancer
// would sit there): `cut()` drops every connection and refuses new ones (the
// server sees the transport close at once), `hold()` only refuses new ones,
// `restore(url)` lets the client's own reconnection through, to that node.
// The race test cuts with `socket.io.engine.close()` instead.
//
// Inputs (environment):
//   MODE                embedded | scaled
//   SOCKET_URLS         node A and node B (one node: the same URL twice), with
//                       the recovery defaults (120 s, 1,000 events per target)
//   WEB_URL             the web-frontend of those nodes (logins and logouts)
//   SHORT_SOCKET_URLS   two more nodes (or one twice) with
//                       socket.recovery_secs = SHORT_SECS and
//                       socket.recovery_max_events = SHORT_MAX
//   SHORT_SECS, SHORT_MAX
//   MAIN_REDIS_URL, SHORT_REDIS_URL   scaled: the Redis of each set ('' embedded)
//   SOCKET_SERVER_BIN   the socket-server binary (the restart tests run it)
//   PACKAGE_ROOT        where it runs (config/default.toml)
//   API_KEY, JWT_SECRET the nodes' api.key and HS256 key (the suite mints tokens)
//   PYTHON              Debian's /usr/bin/python3 with python3-socketio
//
// Users, sessions and rooms are unique per test; tests run one after another
// (publications to `everyone` reach every socket, which no test minds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn, execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import net from 'node:net';
import { io } from 'socket.io-client';
import ioV2 from 'socket.io-client-v2';
import { SignJWT } from 'jose';

const REQUIRED = [
  'MODE', 'SOCKET_URLS', 'WEB_URL', 'SHORT_SOCKET_URLS', 'SHORT_SECS', 'SHORT_MAX',
  'SOCKET_SERVER_BIN', 'PACKAGE_ROOT', 'API_KEY', 'JWT_SECRET', 'PYTHON',
];
const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length) {
  throw new Error(`recovery.test.mjs: missing environment variable(s): ${missing.join(', ')}`);
}
const { MODE, WEB_URL, API_KEY, JWT_SECRET, PYTHON, SOCKET_SERVER_BIN, PACKAGE_ROOT } = process.env;
const [A, B] = process.env.SOCKET_URLS.split(',');
const [SA, SB] = process.env.SHORT_SOCKET_URLS.split(',');
const SHORT_SECS = Number(process.env.SHORT_SECS);
const SHORT_MAX = Number(process.env.SHORT_MAX);
const MAIN_REDIS_URL = process.env.MAIN_REDIS_URL || '';
const SHORT_REDIS_URL = process.env.SHORT_REDIS_URL || '';
const SCALED = MODE === 'scaled';
if (!A || !B || !SA || !SB) throw new Error('recovery.test.mjs: two URLs in SOCKET_URLS and SHORT_SOCKET_URLS');
if (SCALED && !(MAIN_REDIS_URL && SHORT_REDIS_URL)) throw new Error('recovery.test.mjs: scaled needs the Redis URLs');

const DEADLINE_MS = 60_000; // hard deadline of every test
const WAIT_MS = 8_000; // one awaited outcome
const opts = { timeout: DEADLINE_MS };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const tag = () => randomUUID().slice(0, 8);
const unique = (prefix) => `${prefix}-${tag()}`;
const newSid = () => `sid-${randomUUID()}`;
const OFFSET = /^[0-9]+$/;

// ---------------------------------------------------------------------------
// Tokens, the server API, the web-frontend

// A token as the application's own JWT code would make it: `sid` (when given)
// and `rooms` (when given) as claims.
async function mint(user, { sid, rooms, key = JWT_SECRET, expired = false } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    user: { username: user },
    ...(sid !== undefined && { sid }),
    ...(rooms !== undefined && { rooms }),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt(expired ? now - 600 : now)
    .setExpirationTime(expired ? now - 300 : now + 300)
    .setIssuer('web-frontend')
    .setAudience('socket-server')
    .setJti(randomUUID())
    .sign(new TextEncoder().encode(key));
}

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

// POST /api/publish through `node`, carried out.
async function publish(node, to, data, event = 'notice') {
  const res = await api(node, '/api/publish', { to, event, data });
  assert.equal(res.status, 200, `publish to ${JSON.stringify(to)}: ${res.text}`);
  return res.json;
}

async function sockets(node, path) {
  const res = await api(node, `/api/presence/${path}`);
  assert.equal(res.status, 200, `presence ${path}: ${res.text}`);
  return res.json.sockets;
}

// Polls until the node counts no socket of `user` (it noticed the cut: from
// then on its session is kept for the recovery window only).
async function noSocketsOf(node, user) {
  await waitFor(async () => (await sockets(node, `user:${encodeURIComponent(user)}`)) === 0,
    () => `${user} still has sockets on ${node}`);
}

// `authbridge_recoveries_total` of one node, by outcome.
async function recoveries(node) {
  const response = await fetch(`${node}/metrics`, { signal: AbortSignal.timeout(WAIT_MS) });
  const text = await response.text();
  const count = (outcome) => {
    const line = text.split('\n').find((l) => l.startsWith(`authbridge_recoveries_total{outcome="${outcome}"}`));
    assert.ok(line, `no ${outcome} sample in ${node}/metrics`);
    return Number(line.split(' ').pop());
  };
  return { new: count('new'), recovered: count('recovered'), notRecovered: count('not recovered') };
}

// What one recovery outcome moved on `node` while `action` ran.
async function metricMoves(node, action) {
  const before = await recoveries(node);
  await action();
  const after = await recoveries(node);
  return {
    new: after.new - before.new,
    recovered: after.recovered - before.recovered,
    notRecovered: after.notRecovered - before.notRecovered,
  };
}

// A browser's login at the web-frontend: its cookie, tokens, logout.
async function webLogin(user, password) {
  const response = await fetch(`${WEB_URL}/login`, {
    method: 'POST',
    body: new URLSearchParams({ username: user, password }),
    redirect: 'manual',
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert.equal(response.status, 303, `login as ${user}`);
  const cookie = response.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return {
    async token() {
      const res = await fetch(`${WEB_URL}/getIoConnectionToken`, { headers: { cookie }, signal: AbortSignal.timeout(WAIT_MS) });
      assert.equal(res.status, 200, 'a token');
      return res.json();
    },
    async logout() {
      const res = await fetch(`${WEB_URL}/logout`, {
        method: 'POST', headers: { cookie, origin: WEB_URL }, redirect: 'manual', signal: AbortSignal.timeout(WAIT_MS),
      });
      assert.equal(res.status, 303, 'logout');
    },
  };
}

// `redis-cli` on the Redis of `url`: one command's answer.
function redisCli(url, ...args) {
  const port = new URL(url).port;
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-p', port, ...args], (error, stdout) => (error ? reject(error) : resolve(stdout.trim())));
  });
}

// ---------------------------------------------------------------------------
// Waiting

// Polls `condition` (sync or async) every 5 ms until it holds, or fails after `ms`.
async function waitFor(condition, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`);
    await sleep(5);
  }
}

// ---------------------------------------------------------------------------
// A TCP proxy in front of a node

async function startProxy(target) {
  let to = new URL(target);
  let accepting = true;
  const pairs = new Set();
  const server = net.createServer((down) => {
    if (!accepting) {
      down.destroy();
      return;
    }
    const up = net.connect(Number(to.port), to.hostname);
    const pair = [down, up];
    pairs.add(pair);
    const end = () => {
      down.destroy();
      up.destroy();
      pairs.delete(pair);
    };
    for (const side of pair) {
      side.on('error', end);
      side.on('close', end);
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    // No new connection; those open go on (until the node closes them).
    hold() { accepting = false; },
    // Every connection dropped, and no new one.
    cut() {
      accepting = false;
      for (const [down, up] of pairs) {
        down.destroy();
        up.destroy();
      }
      pairs.clear();
    },
    // New connections go to `url` (by default the same node).
    restore(url) {
      if (url) to = new URL(url);
      accepting = true;
    },
    close() {
      this.cut();
      server.close();
    },
  };
}

// ---------------------------------------------------------------------------
// socket-server processes (the restart tests)

const processes = new Set();
process.on('exit', () => {
  for (const child of processes) child.kill('SIGKILL');
});

// Starts the binary with `env` on port 0; resolves once it says where it listens
// and answers /readyz.
async function startNode(env) {
  const child = spawn(SOCKET_SERVER_BIN, [], {
    cwd: PACKAGE_ROOT,
    env: {
      APP_JWT__SECRET: JWT_SECRET,
      APP_API__KEY: API_KEY,
      APP_SOCKET__ADDR: '127.0.0.1:0',
      RUST_LOG: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  processes.add(child);
  const output = [];
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    processes.delete(child);
    resolve({ code, signal });
  }));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" within ${WAIT_MS} ms:\n${output.join('\n')}`)), WAIT_MS);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        const at = line.indexOf('listening on http://');
        if (at >= 0) {
          clearTimeout(timer);
          resolve(line.slice(at + 'listening on '.length).trim());
        }
      });
    }
    exited.then(() => reject(new Error(`socket-server exited:\n${output.join('\n')}`)));
  });
  await waitFor(async () => {
    try {
      return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
    } catch {
      return false;
    }
  }, () => `${url}/readyz`, 20_000);
  return {
    url,
    output,
    // SIGTERM (a graceful stop: transports closed, no DISCONNECT), then its exit.
    async term() {
      child.kill('SIGTERM');
      const status = await exited;
      assert.equal(status.code, 0, `a clean stop:\n${output.join('\n')}`);
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------
// Clients

// Every test's sockets, proxies and processes, closed when it ends.
function harness(t) {
  const closers = [];
  t.after(async () => {
    for (const close of closers.reverse()) {
      try { await close(); } catch { /* already gone */ }
    }
  });
  return {
    async proxy(target) {
      const proxy = await startProxy(target);
      closers.push(() => proxy.close());
      return proxy;
    },
    async node(env) {
      const node = await startNode(env);
      closers.push(() => node.kill());
      return node;
    },
    // An official 4.x socket of `user` at `url`. Its `auth` is a callback, so
    // each (re)connection sends a fresh token from `client.auth()` (by
    // default: minted now, with `sid` and `rooms`, and `recovery: true` unless
    // `recovery` is false); the client adds `pid` and `offset` itself.
    // It records every event (`log`), every connect (`connects`: id and
    // `recovered`), every CONNECT answer (`answers`) and every refusal.
    open(url, { user, sid, rooms, recovery = true, options = {} }) {
      const client = { user, sid, rooms, log: [], connects: [], answers: [], refusals: [] };
      client.auth = async () => ({
        token: await mint(user, { sid: client.sid, rooms: client.rooms }),
        ...(recovery && { recovery: true }),
      });
      const socket = io(url, {
        forceNew: true,
        timeout: WAIT_MS,
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
        auth: (send) => {
          client.auth().then(send, (error) => {
            client.refusals.push(`auth callback: ${error}`);
            send({});
          });
        },
        ...options,
      });
      client.socket = socket;
      socket.onAny((event, ...args) => client.log.push({ event, args }));
      socket.on('connect', () => {
        client.connects.push({ id: socket.id, recovered: socket.recovered, at: client.log.length });
      });
      socket.on('connect_error', (error) => {
        // A refusal by the server (not a transport error while reconnecting).
        if (!['xhr poll error', 'websocket error', 'timeout'].includes(error.message)) {
          client.refusals.push(error.message);
        }
      });
      socket.io.on('packet', (packet) => {
        if (packet.type === 0) client.answers.push(packet.data);
      });
      closers.push(() => socket.close());
      return client;
    },
    // As `open`, then waits for `welcome` and for the websocket upgrade (a
    // cut is then seen by the server at once).
    async connect(url, fields) {
      const client = this.open(url, fields);
      await welcomed(client, 1);
      await waitFor(() => client.socket.io.engine?.transport?.name === 'websocket',
        () => `${client.user}: still on ${client.socket.io.engine?.transport?.name}`);
      return client;
    },
  };
}

// Waits for the client's `count`-th connection and its `welcome`.
async function welcomed(client, count) {
  await waitFor(() => client.connects.length >= count && welcomes(client) >= count,
    () => `${client.user}: ${client.connects.length} connects, ${welcomes(client)} welcomes, refusals ${JSON.stringify(client.refusals)}`);
}

const welcomes = (client) => client.log.filter((e) => e.event === 'welcome').length;
const call = (client, event, ...args) => client.socket.timeout(WAIT_MS).emitWithAck(event, ...args);
const join = async (client, room) => assert.deepEqual(await call(client, 'join', { room }), { ok: true }, `join ${room}`);

// Events that go through the backplane (the ones with offsets), from log
// index `from` on.
const delivered = (client, from = 0) => client.log.slice(from).filter((e) => e.event === 'notice' || e.event === 'message');
// Their data (the first argument), from index `from` on.
const data = (client, from = 0) => delivered(client, from).map((e) => e.args[0]);
// Each backplane event's arguments: the data, then the offset as a string.
function assertOffsets(client, from = 0) {
  let last = -1n;
  for (const { event, args } of delivered(client, from)) {
    assert.equal(args.length, 2, `${event} ${JSON.stringify(args)}: data and offset`);
    assert.equal(typeof args[1], 'string', `${event} ${JSON.stringify(args)}: the offset is a string`);
    assert.match(args[1], OFFSET);
    const offset = BigInt(args[1]);
    assert.ok(offset > last, `offsets rise: ${offset} after ${last}`);
    last = offset;
  }
}
// A socket that did not opt in: exactly the v1 events, one argument each.
function assertPlain(client) {
  for (const { event, args } of client.log) {
    assert.equal(args.length, 1, `${client.user}'s ${event} ${JSON.stringify(args)}: one argument`);
  }
  for (const answer of client.answers) {
    assert.deepEqual(Object.keys(answer), ['sid'], `no pid: ${JSON.stringify(answer)}`);
  }
}

// Waits until `client` holds data `marker` (compared as JSON) since log index `from`.
async function received(client, marker, from = 0) {
  const wanted = JSON.stringify(marker);
  await waitFor(() => data(client, from).some((d) => JSON.stringify(d) === wanted),
    () => `${client.user} never got ${wanted}: ${JSON.stringify(data(client, from))}`);
}

// Publishes a fence to `user` and waits for it: anything replayed comes
// before it (missed events are sent before any live one).
async function fence(client, node = A) {
  const marker = { fence: tag() };
  await publish(node, `user:${client.user}`, marker);
  await received(client, marker, client.connects.at(-1).at);
  return marker;
}

// ---------------------------------------------------------------------------
// 1 and 2: everything missed comes back, in order, once

// A recovering socket of a user in a room behind a proxy to `from`, a plain
// socket (not opted in) of the same user and session in the same room, and a
// sender in the room on `senderNode`; the proxy cut; publications of every
// kind; the proxy restored to `to`. Returns the clients and the data of what
// was published while cut, in order.
async function missedWhileCut(h, { from, to, senderNode = B }) {
  const user = unique('rec');
  const sid = newSid();
  const room = `team:${tag()}`;
  const proxy = await h.proxy(from);
  const r = await h.connect(proxy.url, { user, sid, rooms: [room] });
  const p = await h.connect(B, { user, sid, rooms: [room], recovery: false });
  const s = await h.connect(senderNode, { user: unique('sender'), rooms: [room], recovery: false });
  for (const client of [r, p, s]) await join(client, room);

  // Live, before the cut: the recovering socket has an offset.
  await publish(A, `user:${user}`, { n: 0 });
  await received(r, { n: 0 });
  assert.equal(r.answers.length, 1);
  assert.match(r.answers[0].pid ?? '', /./, `a pid in the CONNECT answer: ${JSON.stringify(r.answers[0])}`);
  assert.equal(r.answers[0].sid, r.socket.id);

  proxy.cut();
  await waitFor(() => !r.socket.connected, () => 'still connected');
  const plain = { from: s.user, text: `plain ${tag()}` };
  const inRoom = { from: s.user, room, text: `in the room ${tag()}` };
  await publish(A, `user:${user}`, { n: 1 });
  await publish(B, `session:${sid}`, { n: 2 });
  await publish(A, `room:${room}`, { n: 3 });
  await publish(B, 'everyone', { n: 4 });
  // The relay is asynchronous: the plain socket having a message means it is
  // in the history, and its place in the order is known.
  s.socket.emit('message', plain.text);
  await received(p, plain);
  s.socket.emit('message', { room, text: inRoom.text });
  await received(p, inRoom);
  // Two targets the socket is in: once.
  await publish(B, [`user:${user}`, `room:${room}`], { n: 7 });
  await received(p, { n: 7 });
  const sent = [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, plain, inRoom, { n: 7 }];

  proxy.restore(to);
  await welcomed(r, 2);
  return { r, p, s, room, sent };
}

// After missedWhileCut: everything came back as it should; a room message
// and a publication after it arrive live; the plain socket saw v1 events.
async function assertRecovered({ r, p, s, room, sent }) {
  const [first, second] = r.connects;
  assert.equal(second.recovered, true, `recovered: refusals ${JSON.stringify(r.refusals)}`);
  assert.equal(second.id, first.id, 'the same socket.id');
  assert.equal(r.answers[1].pid, r.answers[0].pid, 'the same pid');
  assert.equal(r.answers[1].sid, first.id);
  // The welcome first (not replayed, no offset), then the missed events.
  assert.equal(r.log[second.at].event, 'welcome');
  assert.equal(r.log[second.at].args.length, 1);

  // Its room is kept: a room message now reaches it with no new join.
  const after = { from: s.user, room, text: `after ${tag()}` };
  s.socket.emit('message', { room, text: after.text });
  await received(r, after, second.at);
  const last = await fence(r, B);
  assert.deepEqual(data(r, second.at), [...sent, after, last], 'missed events in order, once, then live ones');
  assert.deepEqual(data(r), [{ n: 0 }, ...sent, after, last], 'nothing twice over its whole life');
  assertOffsets(r);

  await received(p, last);
  assert.deepEqual(data(p), [{ n: 0 }, ...sent, after, last]);
  assertPlain(p);
  assert.ok(!p.socket.recovered, 'a plain socket is never recovered');
}

test('1. cut, back to the same node: API (user, session, room, everyone, two targets), message and room messages come back in order, once; recovered, same id, rooms kept, offsets; a socket that did not opt in sees v1 events', opts, async (t) => {
  const h = harness(t);
  let state;
  const moved = await metricMoves(A, async () => {
    state = await missedWhileCut(h, { from: A, to: A });
  });
  await assertRecovered(state);
  assert.deepEqual(moved, { new: 1, recovered: 1, notRecovered: 0 }, 'the metric: one new, then one recovered');
});

test('2a. cut on node A, back on node B (embedded: the one node): the same', opts, async (t) => {
  const h = harness(t);
  let state;
  const moved = await metricMoves(B, async () => {
    state = await missedWhileCut(h, { from: A, to: B, senderNode: A });
  });
  await assertRecovered(state);
  assert.equal(moved.recovered, 1, `recovered on B: ${JSON.stringify(moved)}`);
});

test('1b. rooms come back as far as the fresh token allows: a room it no longer allows is not rejoined, and its missed events are not replayed', opts, async (t) => {
  const h = harness(t);
  const user = unique('narrow');
  const [kept, dropped] = [`keep:${tag()}`, `drop:${tag()}`];
  const proxy = await h.proxy(A);
  const r = await h.connect(proxy.url, { user, rooms: [kept, dropped] });
  const s = await h.connect(B, { user: unique('sender'), rooms: [kept, dropped], recovery: false });
  for (const room of [kept, dropped]) {
    await join(r, room);
    await join(s, room);
  }
  proxy.cut();
  await waitFor(() => !r.socket.connected, () => 'still connected');
  await publish(B, `room:${dropped}`, { n: 1 });
  await publish(B, `room:${kept}`, { n: 2 });
  r.rooms = [kept];
  proxy.restore();
  await welcomed(r, 2);
  assert.equal(r.connects[1].recovered, true);
  await publish(A, `room:${dropped}`, { n: 3 });
  await publish(A, `room:${kept}`, { n: 4 });
  const last = await fence(r);
  assert.deepEqual(data(r, r.connects[1].at), [{ n: 2 }, { n: 4 }, last]);
  const presence = await api(A, `/api/presence/room:${encodeURIComponent(dropped)}`);
  assert.deepEqual(presence.json.users, [s.user], `only the sender is left in ${dropped}`);
});

// ---------------------------------------------------------------------------
// 2: node restarts (the nodes as real processes)

const nodeEnv = (redis, extra = {}) => ({ ...(SCALED && { APP_REDIS__URL: redis }), ...extra });

test('2b. the node stops (SIGTERM). Scaled: back on the restarted node, then on the other one, then after a crash (SIGKILL) on a third: recovered each time, rooms kept. Embedded: a restart forgets (new)', opts, async (t) => {
  const h = harness(t);
  const user = unique('restart');
  const room = `r:${tag()}`;
  // Embedded: tokens without `sid`, so that a restarted node does not hold
  // them back for a web-frontend's revocation list (there is none here).
  const sid = SCALED ? newSid() : undefined;
  let x = await h.node(nodeEnv(MAIN_REDIS_URL));
  const proxy = await h.proxy(x.url);
  const r = await h.connect(proxy.url, { user, sid, rooms: [room] });
  await join(r, room);
  await publish(x.url, `user:${user}`, { n: 0 });
  await received(r, { n: 0 });

  proxy.hold();
  await x.term();
  await waitFor(() => !r.socket.connected, () => 'still connected');
  if (!SCALED) {
    x = await h.node(nodeEnv(''));
    proxy.restore(x.url);
    await assertNew(r, x.url);
    assert.deepEqual(await recoveries(x.url), { new: 0, recovered: 0, notRecovered: 1 });
    return;
  }
  const y = await h.node(nodeEnv(MAIN_REDIS_URL));
  const s = await h.connect(y.url, { user: unique('sender'), rooms: [room], recovery: false });
  await join(s, room);
  const whileDown = { from: s.user, room, text: 'while down' };
  await publish(y.url, `user:${user}`, { n: 1 });
  await publish(y.url, `room:${room}`, { n: 2 });
  s.socket.emit('message', { room, text: whileDown.text });
  await received(s, whileDown);
  await publish(y.url, 'everyone', { n: 4 });
  const expected = [{ n: 0 }];

  // Back on the restarted node.
  x = await h.node(nodeEnv(MAIN_REDIS_URL));
  proxy.restore(x.url);
  await welcomed(r, 2);
  const back = r.connects[1];
  assert.equal(back.recovered, true, `recovered on the restarted node: ${JSON.stringify(r.refusals)}`);
  assert.equal(back.id, r.connects[0].id);
  const kept = { from: s.user, room, text: 'room kept' };
  s.socket.emit('message', { room, text: kept.text });
  await received(r, kept, back.at);
  let last = await fence(r, y.url);
  assert.deepEqual(data(r, back.at), [{ n: 1 }, { n: 2 }, whileDown, { n: 4 }, kept, last]);
  expected.push(...data(r, back.at));
  assert.deepEqual(await recoveries(x.url), { new: 0, recovered: 1, notRecovered: 0 });

  // The restarted node stops too: on to the other one.
  proxy.hold();
  await x.term();
  await publish(y.url, `user:${user}`, { n: 5 });
  proxy.restore(y.url);
  await welcomed(r, 3);
  const moved = r.connects[2];
  assert.equal(moved.recovered, true, 'recovered on the other node');
  assert.equal(moved.id, r.connects[0].id);
  last = await fence(r, y.url);
  assert.deepEqual(data(r, moved.at), [{ n: 5 }, last]);
  expected.push(...data(r, moved.at));

  // A crash: nothing runs on the node that dies; a third node takes the client.
  const z = await h.node(nodeEnv(MAIN_REDIS_URL));
  proxy.hold();
  await y.kill();
  await publish(z.url, `user:${user}`, { n: 6 });
  await publish(z.url, `room:${room}`, { n: 7 });
  proxy.restore(z.url);
  await welcomed(r, 4);
  const crashed = r.connects[3];
  assert.equal(crashed.recovered, true, 'recovered after a crash');
  assert.equal(crashed.id, r.connects[0].id);
  last = await fence(r, z.url);
  assert.deepEqual(data(r, crashed.at), [{ n: 6 }, { n: 7 }, last]);
  expected.push(...data(r, crashed.at));
  assert.deepEqual(data(r), expected, 'once each over its whole life');
  assertOffsets(r);
});

test('2c. scaled: the node stops (SIGTERM) and the client comes back after socket.recovery_secs -> new, nothing replayed', { ...opts, skip: SCALED ? false : 'embedded: a restart forgets anyway (2b)' }, async (t) => {
  const h = harness(t);
  const short = { APP_SOCKET__RECOVERY_SECS: String(SHORT_SECS), APP_SOCKET__RECOVERY_MAX_EVENTS: String(SHORT_MAX) };
  const x = await h.node(nodeEnv(SHORT_REDIS_URL, short));
  const y = await h.node(nodeEnv(SHORT_REDIS_URL, short));
  const user = unique('late');
  const proxy = await h.proxy(x.url);
  const r = await h.connect(proxy.url, { user, sid: newSid() });
  await publish(y.url, `user:${user}`, { n: 0 });
  await received(r, { n: 0 });
  proxy.hold();
  await x.term();
  await publish(y.url, `user:${user}`, { n: 1 });
  await sleep(SHORT_SECS * 1000 + 1500); // the window itself is what is tested
  proxy.restore(y.url);
  await assertNew(r, y.url);
});

// A node that dies runs nothing at all: its sockets' sessions were saved
// (for the window and one refresh) every refresh while they were connected,
// so they expire with the window after the death, never after the history
// they would be owed.
test('2d. scaled: the node dies (SIGKILL) and the client comes back after socket.recovery_secs -> new, nothing replayed', { ...opts, skip: SCALED ? false : 'embedded: a restart forgets anyway (2b)' }, async (t) => {
  const h = harness(t);
  const short = { APP_SOCKET__RECOVERY_SECS: String(SHORT_SECS), APP_SOCKET__RECOVERY_MAX_EVENTS: String(SHORT_MAX) };
  const x = await h.node(nodeEnv(SHORT_REDIS_URL, short));
  const y = await h.node(nodeEnv(SHORT_REDIS_URL, short));
  const user = unique('dead');
  const proxy = await h.proxy(x.url);
  const r = await h.connect(proxy.url, { user, sid: newSid() });
  await publish(y.url, `user:${user}`, { n: 0 });
  await received(r, { n: 0 });
  proxy.hold();
  await x.kill();
  await publish(y.url, `user:${user}`, { n: 1 });
  // The window and one refresh (a third of it, at least 1 s): the longest a
  // dead node's session can be kept.
  await sleep(SHORT_SECS * 1000 + Math.max(1000, (SHORT_SECS * 1000) / 3) + 1500);
  proxy.restore(y.url);
  await assertNew(r, y.url);
});

// ---------------------------------------------------------------------------
// 3: every case that connects as new, with nothing replayed

// A recovering socket behind a proxy to `node` that got one live event, then
// cut (and the node noticed), with `n` publications to its user while cut.
async function cutWithMissed(h, node, { n = 2, user = unique('new'), sid = newSid() } = {}) {
  const proxy = await h.proxy(node);
  const r = await h.connect(proxy.url, { user, sid });
  await publish(node, `user:${user}`, { n: 0 });
  await received(r, { n: 0 });
  proxy.cut();
  await waitFor(() => !r.socket.connected, () => 'still connected');
  await noSocketsOf(node, user);
  for (let i = 1; i <= n; i += 1) await publish(node, `user:${user}`, { n: i });
  return { proxy, r, user, sid };
}

// The client's `count`-th connection is a new one: not recovered, another id
// and pid, and nothing replayed before a fence.
async function assertNew(r, node, count = 2) {
  await welcomed(r, count);
  const now = r.connects[count - 1];
  assert.equal(now.recovered, false, `not recovered (recovered: ${now.recovered})`);
  assert.notEqual(now.id, r.connects[0].id, 'a new socket.id');
  assert.notEqual(r.answers[count - 1].pid, r.answers[0].pid, 'a new pid');
  assert.match(r.answers[count - 1].pid ?? '', /./, 'still opted in: a pid');
  const last = await fence(r, node);
  assert.deepEqual(data(r, now.at), [last], 'nothing replayed');
}

test('3a. too late: back after socket.recovery_secs -> new, nothing replayed', opts, async (t) => {
  const h = harness(t);
  const moved = await metricMoves(SA, async () => {
    const { proxy, r } = await cutWithMissed(h, SA);
    await sleep(SHORT_SECS * 1000 + 1500); // the window itself is what is tested
    proxy.restore();
    await assertNew(r, SA);
  });
  assert.deepEqual(moved, { new: 1, recovered: 0, notRecovered: 1 });
});

test('3b. an unknown pid -> new, nothing replayed', opts, async (t) => {
  const h = harness(t);
  const moved = await metricMoves(A, async () => {
    const { proxy, r } = await cutWithMissed(h, A);
    const auth = r.auth;
    r.auth = async () => ({ ...(await auth()), pid: `unknown-${randomUUID()}`, offset: '1' });
    proxy.restore();
    await assertNew(r, A);
  });
  assert.deepEqual(moved, { new: 1, recovered: 0, notRecovered: 1 });
});

test("3c. another user's pid with that user's valid token -> new, never the first user's rooms or events; the first user's session is untouched", opts, async (t) => {
  const h = harness(t);
  const user = unique('victim');
  const sid = newSid();
  const room = `secret:${tag()}`;
  const mallory = unique('mallory');
  const proxy = await h.proxy(A);
  const r = await h.connect(proxy.url, { user, sid, rooms: [room] });
  const sender = await h.connect(B, { user: unique('sender'), rooms: [room], recovery: false });
  await join(r, room);
  await join(sender, room);
  await publish(A, `user:${user}`, { n: 0 });
  await received(r, { n: 0 });
  const [pid, id] = [r.answers[0].pid, r.connects[0].id];
  const lastOffset = delivered(r).at(-1).args[1];
  proxy.cut();
  await noSocketsOf(A, user);
  await publish(A, `room:${room}`, { n: 'room' });
  await publish(B, `user:${user}`, { n: 'user' });
  await publish(A, `session:${sid}`, { n: 'session' });

  // Mallory on the same client object: her valid token (whose patterns allow
  // the room too); the client sends the victim's pid and offset.
  r.auth = async () => ({ token: await mint(mallory, { sid: newSid(), rooms: [room] }), recovery: true });
  const moved = await metricMoves(A, async () => {
    proxy.restore();
    await welcomed(r, 2);
  });
  assert.deepEqual(moved, { new: 0, recovered: 0, notRecovered: 1 });
  const now = r.connects[1];
  assert.equal(now.recovered, false);
  assert.deepEqual(r.log[now.at].args, [{ username: mallory }], "mallory's welcome");
  assert.notEqual(now.id, id);
  assert.notEqual(r.answers[1].pid, pid);
  const membersOnly = { from: sender.user, room, text: 'members only' };
  sender.socket.emit('message', { room, text: membersOnly.text });
  await received(sender, membersOnly);
  const marker = { fence: tag() };
  await publish(A, `user:${mallory}`, marker);
  await received(r, marker, now.at);
  assert.deepEqual(data(r, now.at), [marker], 'no replay, no room message');
  const presence = await api(B, `/api/presence/room:${encodeURIComponent(room)}`);
  assert.deepEqual(presence.json.users, [sender.user], 'mallory is not in the room');
  r.socket.close();

  // The victim's session is still there: its own token, pid and offset (sent
  // by hand on a fresh client, which can only compare the answer) bring back
  // its id, its room and what it missed.
  const victim = h.open(A, { user, sid, rooms: [room] });
  const auth = victim.auth;
  victim.auth = async () => ({ ...(await auth()), pid, offset: lastOffset });
  await welcomed(victim, 1);
  assert.equal(victim.answers[0].pid, pid);
  assert.equal(victim.connects[0].id, id, 'its own id back');
  // The room message sent meanwhile was missed by the victim too.
  await received(victim, membersOnly);
  assert.deepEqual(data(victim), [{ n: 'room' }, { n: 'user' }, { n: 'session' }, membersOnly]);
  const stillMember = { from: sender.user, room, text: 'still a member' };
  sender.socket.emit('message', { room, text: stillMember.text });
  await received(victim, stillMember);
});

// One handshake with `auth` on a fresh client: `{welcome}` or `{refused}`.
async function outcome(url, auth) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: WAIT_MS, auth });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no outcome')), WAIT_MS);
      socket.once('welcome', (d) => { clearTimeout(timer); resolve({ welcome: d }); });
      socket.once('connect_error', (e) => { clearTimeout(timer); resolve({ refused: e.message }); });
    });
  } finally {
    socket.close();
  }
}

test("3d. a revoked session's pid (API revoke) with a fresh token of a new session -> new, nothing replayed", opts, async (t) => {
  const h = harness(t);
  const { proxy, r, user, sid } = await cutWithMissed(h, A);
  const res = await api(B, '/api/sessions/revoke', { sid, until: Math.floor(Date.now() / 1000) + 600 });
  assert.equal(res.status, 200, res.text);
  await waitFor(async () => (await outcome(A, { token: await mint(user, { sid }) })).refused === 'token revoked',
    () => 'the revoked session still accepted');
  r.sid = newSid();
  const moved = await metricMoves(A, async () => {
    proxy.restore();
    await assertNew(r, A);
  });
  assert.deepEqual(moved, { new: 0, recovered: 0, notRecovered: 1 });
});

test("3e. a revoked session's pid (logout at the web-frontend) with a fresh token of a new login -> new, nothing replayed", opts, async (t) => {
  const h = harness(t);
  let session = await webLogin('alice', "alice's password");
  const first = session;
  const proxy = await h.proxy(A);
  const r = h.open(proxy.url, { user: 'alice' });
  r.auth = async () => ({ token: await session.token(), recovery: true });
  await welcomed(r, 1);
  await waitFor(() => r.socket.io.engine?.transport?.name === 'websocket', () => 'no upgrade');
  await publish(A, 'user:alice', { n: 0 });
  await received(r, { n: 0 });
  const oldToken = await first.token();
  proxy.cut();
  await noSocketsOf(A, 'alice');
  await publish(A, 'user:alice', { n: 1 });
  await first.logout();
  await waitFor(async () => (await outcome(A, { token: oldToken })).refused === 'token revoked',
    () => 'the logged-out session still accepted');
  session = await webLogin('alice', "alice's password");
  const moved = await metricMoves(A, async () => {
    proxy.restore();
    await assertNew(r, A);
  });
  assert.deepEqual(moved, { new: 0, recovered: 0, notRecovered: 1 });
  await session.logout();
});

test('3f. history trimmed: more than socket.recovery_max_events for a target while cut -> new, nothing replayed (exactly the bound -> recovered)', opts, async (t) => {
  const h = harness(t);
  const user = unique('trim');
  const { proxy, r } = await cutWithMissed(h, SA, { user, n: SHORT_MAX });
  proxy.restore();
  await welcomed(r, 2);
  assert.equal(r.connects[1].recovered, true, 'exactly the bound: recovered');
  const wanted = Array.from({ length: SHORT_MAX }, (_, i) => ({ n: i + 1 }));
  await received(r, wanted.at(-1), r.connects[1].at);
  assert.deepEqual(data(r, r.connects[1].at), wanted);

  await waitFor(() => r.socket.io.engine?.transport?.name === 'websocket', () => 'no upgrade');
  proxy.cut();
  await waitFor(() => !r.socket.connected, () => 'still connected');
  await noSocketsOf(SA, user);
  for (let i = 1; i <= SHORT_MAX + 1; i += 1) await publish(SA, `user:${user}`, { m: i });
  if (SCALED) {
    // Bounded: the stream holds the bound, no more.
    assert.equal(await redisCli(SHORT_REDIS_URL, 'XLEN', `authbridge:history:user:${user}`), String(SHORT_MAX));
  }
  const moved = await metricMoves(SA, async () => {
    proxy.restore();
    await assertNew(r, SA, 3);
  });
  assert.deepEqual(moved, { new: 0, recovered: 0, notRecovered: 1 });
});

test("3g. the pid never lets anybody in: a forged, expired or missing token with a valid pid is refused with the contract's message; the session is still there for a valid token", opts, async (t) => {
  const h = harness(t);
  const { proxy, r, user, sid } = await cutWithMissed(h, A);
  const pid = r.answers[0].pid;
  const before = await recoveries(A);
  r.auth = async () => ({ token: await mint(user, { sid, key: 'another-key-another-key-another-key-0123' }), recovery: true });
  proxy.restore();
  await waitFor(() => r.refusals.includes('not valid token'), () => JSON.stringify(r.refusals));
  r.auth = async () => ({ token: await mint(user, { sid, expired: true }), recovery: true });
  r.socket.connect();
  await waitFor(() => r.refusals.includes('token expired'), () => JSON.stringify(r.refusals));
  r.auth = async () => ({ recovery: true, pid });
  r.socket.connect();
  await waitFor(() => r.refusals.filter((m) => m === 'not valid token').length === 2, () => JSON.stringify(r.refusals));
  assert.equal(r.connects.length, 1, 'never connected');
  assert.deepEqual(data(r), [{ n: 0 }], 'nothing delivered to a refused handshake');
  assert.deepEqual(await recoveries(A), before, 'a refused handshake is no recovery outcome');

  r.auth = async () => ({ token: await mint(user, { sid }), recovery: true });
  r.socket.connect();
  await welcomed(r, 2);
  assert.equal(r.connects[1].recovered, true);
  assert.equal(r.connects[1].id, r.connects[0].id);
  await received(r, { n: 2 }, r.connects[1].at);
  assert.deepEqual(data(r, r.connects[1].at), [{ n: 1 }, { n: 2 }]);
});

// ---------------------------------------------------------------------------
// 4: exactly once under races

test('4. publications every 10 ms (API through both nodes, and messages) while the client cuts (engine.close()) and comes back 8 times: gapless, duplicate-free, rising', opts, async (t) => {
  const h = harness(t);
  const user = unique('race');
  const proxy = await h.proxy(A);
  const r = await h.connect(proxy.url, { user, sid: newSid() });
  const s = await h.connect(B, { user: unique('sender'), recovery: false });
  const marker = `race-${tag()}`;
  let running = true;
  let published = 0;
  let said = 0;
  const publisher = (async () => {
    while (running) {
      await publish(published % 2 ? B : A, `user:${user}`, { n: published });
      published += 1;
      s.socket.emit('message', `${marker} ${said}`);
      said += 1;
      await sleep(10);
    }
  })();
  for (let cut = 0; cut < 8; cut += 1) {
    await sleep(150 + Math.floor(Math.random() * 150));
    // Scaled: every other time back on the other node.
    proxy.restore(cut % 2 ? A : B);
    r.socket.io.engine.close();
    await welcomed(r, cut + 2);
  }
  await sleep(200);
  running = false;
  await publisher;
  await received(r, { n: published - 1 });
  await received(r, { from: s.user, text: `${marker} ${said - 1}` });

  assert.ok(r.connects.every((c) => c.id === r.connects[0].id), `one id: ${JSON.stringify(r.connects)}`);
  assert.deepEqual(r.connects.map((c) => c.recovered), [false, ...Array(8).fill(true)]);
  // A failure's report: the log around the first event out of place, with
  // where the client came back.
  const story = (index) => r.log.slice(Math.max(0, index - 12), index + 12).map((e, i) => {
    const at = r.connects.findIndex((c) => c.at === i + Math.max(0, index - 12));
    const mark = at > 0 ? `[connect ${at}] ` : '';
    const what = e.args[0]?.n ?? e.args[0]?.text?.split(' ')[1] ?? '';
    return `${mark}${e.event}:${what}@${e.args[1] ?? '-'}`;
  }).join(' ');
  const sequence = (filter, number, count, what) => {
    const seen = r.log.map((e, index) => ({ e, index })).filter(({ e }) => filter(e));
    const wrong = seen.findIndex(({ e }, i) => number(e) !== i);
    assert.ok(wrong === -1 && seen.length === count,
      `${what}: ${seen.length} of ${count}, first out of place: ${story(seen[wrong]?.index ?? r.log.length)}\n`
      + `connects: ${JSON.stringify(r.connects)}\nlog: ${r.log.map((e) => `${e.event[0]}${e.args[0]?.n ?? e.args[0]?.text?.split(' ')[1] ?? ''}:${e.args[1] ?? '-'}`).join(' ')}`);
  };
  sequence((e) => e.event === 'notice' && e.args[0]?.n !== undefined, (e) => e.args[0].n, published, 'every publication once, in order');
  sequence((e) => e.event === 'message' && e.args[0]?.from === s.user, (e) => Number(e.args[0].text.split(' ')[1]), said, 'every message once, in order');
  assertOffsets(r);
  t.diagnostic(`${published} publications and ${said} messages over 8 cuts`);
});

test('4b. four publishers back to back (no pause, through both nodes, to the user and to everyone) while the client comes back 20 times: each publisher\'s sequence gapless, once, in order', opts, async (t) => {
  const h = harness(t);
  const user = unique('burst');
  const proxy = await h.proxy(A);
  const r = await h.connect(proxy.url, { user, sid: newSid() });
  const tagged = `burst-${tag()}`;
  let running = true;
  const counts = [0, 0, 0, 0];
  const publishers = counts.map(async (_, p) => {
    while (running) {
      const to = p % 2 ? 'everyone' : `user:${user}`;
      await publish(counts[p] % 2 ? B : A, to, { tagged, p, n: counts[p] });
      counts[p] += 1;
    }
  });
  for (let cut = 0; cut < 20; cut += 1) {
    await sleep(30 + Math.floor(Math.random() * 70));
    proxy.restore(cut % 2 ? A : B);
    r.socket.io.engine.close();
    await welcomed(r, cut + 2);
  }
  running = false;
  await Promise.all(publishers);
  for (const [p, count] of counts.entries()) await received(r, { tagged, p, n: count - 1 });
  assert.deepEqual(r.connects.map((c) => c.recovered), [false, ...Array(20).fill(true)]);
  for (const [p, count] of counts.entries()) {
    const seen = r.log.filter((e) => e.args[0]?.tagged === tagged && e.args[0].p === p).map((e) => e.args[0].n);
    const wrong = seen.findIndex((n, i) => n !== i);
    assert.ok(wrong === -1 && seen.length === count,
      `publisher ${p}: ${seen.length} of ${count}; first out of place at ${wrong}: ${JSON.stringify(seen.slice(Math.max(0, wrong - 3), wrong + 3))}`);
  }
  assertOffsets(r);
  t.diagnostic(`${counts.reduce((a, b) => a + b)} publications over 20 cuts`);
});

// ---------------------------------------------------------------------------
// 5: bounded growth (the embedded mode's exact gauge: recovery_bounds.rs)

test('5. scaled: each target keeps at most socket.recovery_max_events in Redis', { ...opts, skip: SCALED ? false : 'embedded: recovery_bounds.rs and 3f' }, async () => {
  const room = `flood:${tag()}`;
  const user = unique('flood');
  for (let i = 0; i < SHORT_MAX * 4; i += 1) {
    await publish(i % 2 ? SB : SA, [`room:${room}`, `user:${user}`], { i });
  }
  for (const key of [`room:${room}`, `user:${user}`]) {
    assert.equal(await redisCli(SHORT_REDIS_URL, 'XLEN', `authbridge:history:${key}`), String(SHORT_MAX), key);
  }
});

// ---------------------------------------------------------------------------
// 6: other clients keep working unchanged

test('6. socket.io-client 2.x (protocol v4) and python-socketio see exactly the v1 events: one argument each', opts, async (t) => {
  const h = harness(t);
  const user = unique('v1');
  const token = await mint(user, { sid: newSid() });
  // Protocol v4, the article's query token (it has no `auth` to opt in with).
  const v2 = ioV2(A, { forceNew: true, reconnection: false, query: `token=${token}` });
  t.after(() => v2.close());
  const v2log = [];
  for (const event of ['notice', 'message', 'welcome']) v2.on(event, (...args) => v2log.push({ event, args }));
  // python-socketio with the token in `auth`, as Python code sends it.
  const script = [
    'import json, sys, socketio',
    'sio = socketio.Client(reconnection=False)',
    "@sio.on('*')",
    'def any_event(event, *args):',
    '    print(json.dumps({"event": event, "args": list(args)}), flush=True)',
    'sio.connect(sys.argv[1], auth={"token": sys.argv[2]}, wait_timeout=5)',
    'sys.stdin.read()',
    'sio.disconnect()',
  ].join('\n');
  const py = spawn(PYTHON, ['-c', script, B, token], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => py.kill());
  const pylog = [];
  const stderr = [];
  py.stdin.on('error', () => { /* python gone: its log says why */ });
  createInterface({ input: py.stdout }).on('line', (line) => {
    try {
      pylog.push(JSON.parse(line));
    } catch {
      stderr.push(`stdout: ${line}`);
    }
  });
  createInterface({ input: py.stderr }).on('line', (line) => stderr.push(line));
  for (const [who, log] of [['socket.io-client 2.x', v2log], ['python-socketio', pylog]]) {
    await waitFor(() => log.some((e) => e.event === 'welcome'), () => `${who}: ${JSON.stringify(log)} ${stderr.join('\n')}`);
    assert.deepEqual(log.find((e) => e.event === 'welcome').args, [{ username: user }], who);
  }

  const s = await h.connect(B, { user: unique('sender'), recovery: false });
  await publish(A, `user:${user}`, { n: 1 });
  s.socket.emit('message', 'hello v1');
  await received(s, { from: s.user, text: 'hello v1' });
  await publish(B, 'everyone', { n: 2 });
  const expected = [
    { event: 'notice', args: [{ n: 1 }] },
    { event: 'message', args: [{ from: s.user, text: 'hello v1' }] },
    { event: 'notice', args: [{ n: 2 }] },
  ];
  const ours = (e) => e.event === 'notice' || (e.event === 'message' && e.args[0]?.from === s.user);
  for (const [who, log] of [['socket.io-client 2.x', v2log], ['python-socketio', pylog]]) {
    await waitFor(() => log.filter(ours).length >= expected.length, () => `${who}: ${JSON.stringify(log)}`);
    assert.deepEqual(log.filter(ours), expected, who);
  }
  py.stdin.end();
});
