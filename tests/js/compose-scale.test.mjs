// The scaled deployment (docker-compose.scale.yml), from the host: Redis, two
// web-frontend and two socket-server nodes, nginx in front. Through the load
// balancer: log in, see both web nodes serve the one session (the lb's
// `X-Upstream` header), connect sockets, relay messages between socket-server
// nodes exactly once, log out and see every socket of that session ended on
// every node within 1 s and its token revoked; restart Redis (the compose file
// gives it an append-only file) and see the system work again, with a session
// and a logout made before the restart both still in force. Run by scripts/docker-test.
//
// Inputs:
//   WEB_URL, SOCKET_URL          the lb's published web and socket origins
//   WEB_NODE_URLS                the two web-frontend nodes, space-separated
//   SOCKET_NODE_URLS             the two socket-server nodes, space-separated
//                                (through the lb every socket from this host
//                                lands on the same node: ip_hash)
//   RESTART_REDIS                a shell command that restarts the redis service
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { io } from 'socket.io-client';
import * as support from './compose-support.mjs';

const { WEB_URL, SOCKET_URL, WEB_NODE_URLS, SOCKET_NODE_URLS, RESTART_REDIS } = process.env;
for (const [name, value] of Object.entries({ WEB_URL, SOCKET_URL, WEB_NODE_URLS, SOCKET_NODE_URLS, RESTART_REDIS })) {
  if (!value) throw new Error(`compose-scale.test.mjs: ${name} is not set`);
}
const webNodes = WEB_NODE_URLS.split(/\s+/).filter(Boolean);
const socketNodes = SOCKET_NODE_URLS.split(/\s+/).filter(Boolean);
assert.equal(webNodes.length, 2, 'WEB_NODE_URLS names two nodes');
assert.equal(socketNodes.length, 2, 'SOCKET_NODE_URLS names two nodes');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const logIn = (base = WEB_URL) => support.logIn(base);
/** A token for the session, and the node that issued it (the lb's X-Upstream). */
const fetchToken = (cookie, base = WEB_URL) => support.fetchToken(base, cookie);

function claims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

/** Resolves once `check()` is true; rejects after `ms`. */
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${typeof what === 'function' ? what() : what}`);
    await sleep(20);
  }
}

/**
 * One socket that records what it receives. `welcome` settles with the
 * server's welcome, or rejects with the refusal message.
 */
function open(url, token, { transports = ['websocket'], ms = 10_000 } = {}) {
  const socket = io(url, { transports, forceNew: true, reconnection: false, auth: { token } });
  const received = { url, socket, messages: [], sessionEnded: [], disconnects: [] };
  socket.on('message', (message) => received.messages.push(message));
  socket.on('session_ended', () => received.sessionEnded.push(Date.now()));
  socket.on('disconnect', (reason) => received.disconnects.push(reason));
  received.welcome = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${url}: no welcome within ${ms} ms`)), ms);
    socket.once('welcome', (welcome) => {
      clearTimeout(timer);
      resolve(welcome);
    });
    socket.once('connect_error', (error) => {
      clearTimeout(timer);
      reject(new Error(error.message));
    });
  });
  received.welcome.catch(() => {}); // awaited by the caller; never an unhandled rejection
  return received;
}

/** The refusal message a connection with `token` gets at `url`. */
async function refusal(url, token) {
  const { socket, welcome } = open(url, token);
  try {
    await welcome;
  } catch (error) {
    return error.message;
  } finally {
    socket.close();
  }
  throw new Error(`${url}: the token was accepted`);
}

/**
 * Every socket sends one message; each must receive every one of them exactly
 * once (broadcasts cross socket-server nodes through Redis, never twice).
 */
async function exchangeMessages(sockets, tag, ms = 10_000) {
  const texts = sockets.map((_, i) => `${tag} ${i}`);
  sockets.forEach(({ socket }, i) => socket.emit('message', texts[i]));
  const mine = (received) => received.messages.filter((m) => m.text.startsWith(`${tag} `));
  await until(
    () => sockets.every((s) => mine(s).length >= texts.length),
    ms,
    () => `every socket gets ${texts.length} messages; got ${sockets.map((s) => `${s.url}: ${mine(s).length}`).join(', ')}`,
  );
  await sleep(300); // room for a duplicate to arrive
  for (const received of sockets) {
    const got = mine(received).map((m) => m.text).sort();
    assert.deepEqual(got, [...texts].sort(), `${received.url}: each message exactly once`);
    assert.ok(mine(received).every((m) => m.from === 'gonzalo'), 'from comes from the token');
  }
}

function closeAll(sockets) {
  for (const { socket } of sockets) socket.close();
}

test('the lb serves both web nodes, and either serves the one session', { timeout: 30_000 }, async () => {
  for (const base of [WEB_URL, SOCKET_URL, ...webNodes, ...socketNodes]) {
    assert.equal((await fetch(`${base}/healthz`)).status, 200, `${base}/healthz`);
  }
  for (const base of [...webNodes, ...socketNodes]) {
    assert.equal((await fetch(`${base}/readyz`)).status, 200, `${base}/readyz`);
  }
  const cookie = await logIn();
  const upstreams = new Set();
  const sids = new Set();
  for (let i = 0; i < 20 && upstreams.size < 2; i++) {
    const { token, upstream } = await fetchToken(cookie);
    assert.ok(upstream, 'the lb names the node in X-Upstream');
    upstreams.add(upstream);
    sids.add(claims(token).sid);
  }
  assert.equal(upstreams.size, 2, `both web nodes answered through the lb (${[...upstreams].join(', ')})`);
  for (const base of webNodes) {
    const page = await fetch(`${base}/private`, { headers: { cookie } });
    assert.match(await page.text(), /Welcome gonzalo!/, `${base} knows the session`);
    sids.add(claims((await fetchToken(cookie, base)).token).sid);
  }
  assert.equal(sids.size, 1, 'every token carries the one session id');
});

test('sockets through the lb and on each node: welcome, and every message to every socket exactly once', { timeout: 60_000 }, async () => {
  const cookie = await logIn();
  const { token } = await fetchToken(cookie);
  const sockets = [
    open(SOCKET_URL, token),
    open(SOCKET_URL, token),
    // Long-polling through the lb works only if its requests stay on one node.
    open(SOCKET_URL, token, { transports: ['polling'] }),
    ...socketNodes.map((url) => open(url, token)),
  ];
  try {
    for (const { welcome } of sockets) assert.deepEqual(await welcome, { username: 'gonzalo' });
    await exchangeMessages(sockets, 'hello');
  } finally {
    closeAll(sockets);
  }
});

test('logout ends the session on every socket-server node within 1 s; its token is then revoked', { timeout: 60_000 }, async () => {
  const cookie = await logIn();
  const { token } = await fetchToken(cookie);
  const otherCookie = await logIn();
  const other = open(SOCKET_URL, (await fetchToken(otherCookie)).token);
  const sockets = [open(SOCKET_URL, token), ...socketNodes.map((url) => open(url, token))];
  try {
    for (const { welcome } of [other, ...sockets]) await welcome;

    const response = await fetch(`${WEB_URL}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, Origin: WEB_URL },
    });
    assert.equal(response.status, 303, 'logout redirects');
    const loggedOut = Date.now();
    await until(() => sockets.every((s) => s.sessionEnded.length > 0), 5_000, 'session_ended on every socket');
    for (const received of sockets) {
      const after = received.sessionEnded[0] - loggedOut;
      assert.ok(after <= 1_000, `${received.url}: session_ended ${after} ms after the logout response`);
    }
    await until(() => sockets.every((s) => s.disconnects.length > 0), 5_000, 'every socket of the session disconnected');

    // Another session of the same user is untouched.
    assert.equal(other.sessionEnded.length, 0, 'the other session goes on');
    assert.equal(other.socket.connected, true);

    for (const url of [SOCKET_URL, ...socketNodes]) {
      assert.equal(await refusal(url, token), 'token revoked', `${url} refuses the old token`);
    }
    for (const base of webNodes) {
      const response = await fetch(`${base}/getIoConnectionToken`, { headers: { cookie } });
      assert.equal(response.status, 403, `${base}: the old cookie no longer has a session`);
    }
  } finally {
    closeAll([other, ...sockets]);
  }
});

test('after a Redis restart the system works again; a session and a logout made before both stay', { timeout: 120_000 }, async () => {
  const kept = await logIn();
  const cookie = await logIn();
  const { token: revoked } = await fetchToken(cookie);
  const logout = await fetch(`${WEB_URL}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, Origin: WEB_URL } });
  assert.equal(logout.status, 303);
  assert.equal(await refusal(SOCKET_URL, revoked), 'token revoked');

  execSync(RESTART_REDIS, { stdio: 'inherit' });
  const restarted = Date.now();
  const deadline = restarted + 60_000;
  let working = false;
  let lastError;
  for (let attempt = 1; !working && Date.now() < deadline; attempt++) {
    let sockets = [];
    try {
      for (const base of [...webNodes, ...socketNodes]) {
        const status = (await fetch(`${base}/readyz`)).status;
        assert.equal(status, 200, `${base}/readyz`);
      }
      const cookie = await logIn();
      const { token } = await fetchToken(cookie);
      sockets = [open(SOCKET_URL, token, { ms: 5_000 }), ...socketNodes.map((url) => open(url, token, { ms: 5_000 }))];
      for (const { welcome } of sockets) assert.deepEqual(await welcome, { username: 'gonzalo' });
      await exchangeMessages(sockets, `after restart ${attempt}`, 1_500);
      working = true;
      console.log(`# working again ${Date.now() - restarted} ms after the restart (attempt ${attempt})`);
    } catch (error) {
      lastError = error;
      console.log(`# not yet (attempt ${attempt}, ${Date.now() - restarted} ms): ${error.message.split('\n')[0]}`);
      await sleep(500);
    } finally {
      closeAll(sockets);
    }
  }
  assert.ok(working, `working again within 60 s of the Redis restart; last: ${lastError?.stack ?? lastError}`);

  // Redis kept its data (append-only file): the session from before still works.
  const { token: stillGood } = await fetchToken(kept);
  assert.equal(claims(stillGood).sub, 'gonzalo');
  // The logout from before still holds.
  for (const url of [SOCKET_URL, ...socketNodes]) {
    assert.equal(await refusal(url, revoked), 'token revoked', `${url}: still revoked after the Redis restart`);
  }
});
