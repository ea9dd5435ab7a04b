// The asymmetric compose deployment (docker-compose.asymmetric.yml), from the
// host: the web-frontend signs with an EdDSA key generated into a volume by the
// one-shot `keygen` service, the socket-server holds no key and verifies with
// the web-frontend's JWK Set. This logs in, checks the token's header against
// the JWK Set (and the signature with `jose`), connects socket.io-client 4;
// restarts the socket-server (it fetches the keys again, the client comes back
// with a fresh token); reloads both services' keys with SIGHUP; logs out
// (revocation notices signed with the private key); then restarts the
// socket-server while the web-frontend is down (503 until the JWK Set answers)
// and the web-frontend with the same key from the volume. Run by
// scripts/docker-test.
//
// Inputs: WEB_URL, SOCKET_URL, COMPOSE (the docker-compose command line of the
// project, without a subcommand).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import * as jose from 'jose';
import { io } from 'socket.io-client';
import * as support from './compose-support.mjs';
import { nextEvent } from './compose-support.mjs';

const { WEB_URL, SOCKET_URL, COMPOSE } = process.env;
for (const [name, value] of Object.entries({ WEB_URL, SOCKET_URL, COMPOSE })) {
  if (!value) throw new Error(`compose-asymmetric.test.mjs: ${name} is not set`);
}

const compose = (args) => execSync(`${COMPOSE} ${args}`, { stdio: ['ignore', 'ignore', 'inherit'] });
const composeLogs = (service) =>
  execSync(`${COMPOSE} logs --no-color ${service}`, { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const logIn = (username, password) => support.logIn(WEB_URL, username, password);
const fetchToken = async (cookie) => (await support.fetchToken(WEB_URL, cookie)).token;

async function jwks() {
  const response = await fetch(`${WEB_URL}/.well-known/jwks.json`);
  assert.equal(response.status, 200, 'the JWK Set');
  return response.json();
}

// A socket whose `auth` callback fetches a fresh token each time (pushed on `tokens`).
function connect(cookie, tokens = []) {
  return io(SOCKET_URL, {
    transports: ['websocket'],
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    auth: (cb) => {
      fetchToken(cookie).then(
        (token) => {
          tokens.push(token);
          cb({ token });
        },
        () => cb({}),
      );
    },
  });
}

// Polls `probe` (an async function returning true when done) until `ms` pass.
async function until(what, probe, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

const count = (text, needle) => text.split(needle).length - 1;

test('the token: EdDSA, its kid a key of the JWK Set (public parts only), verified by jose', { timeout: 30_000 }, async () => {
  assert.equal((await fetch(`${WEB_URL}/healthz`)).status, 200);
  assert.equal((await fetch(`${SOCKET_URL}/readyz`)).status, 200, 'the socket-server has keys');
  const set = await jwks();
  assert.ok(set.keys.length >= 1, 'at least one key');
  for (const key of set.keys) {
    assert.deepEqual(
      { kty: key.kty, crv: key.crv, alg: key.alg, use: key.use },
      { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' },
    );
    assert.equal(key.d, undefined, 'no private part in the JWK Set');
    assert.ok(key.kid, 'every key has a kid');
  }
  const cookie = await logIn('gonzalo', 'password');
  const token = await fetchToken(cookie);
  const header = jose.decodeProtectedHeader(token);
  assert.equal(header.alg, 'EdDSA');
  assert.ok(
    set.keys.some((key) => key.kid === header.kid),
    `the token's kid ${header.kid} is in the JWK Set (${set.keys.map((key) => key.kid).join(', ')})`,
  );
  const { payload } = await jose.jwtVerify(token, jose.createLocalJWKSet(set), {
    algorithms: ['EdDSA'],
    issuer: 'web-frontend',
    audience: 'socket-server',
  });
  assert.equal(payload.user.username, 'gonzalo');
});

test('welcome; the socket-server restarts and fetches the keys again, the client comes back with a fresh token; SIGHUP; logout', { timeout: 90_000 }, async () => {
  const cookie = await logIn('gonzalo', 'password');
  const { keys } = await jwks();
  const tokens = [];
  const socket = connect(cookie, tokens);
  try {
    assert.deepEqual(await nextEvent(socket, 'welcome'), { username: 'gonzalo' });
    socket.emit('message', 'hello, EdDSA');
    assert.deepEqual(await nextEvent(socket, 'message'), { from: 'gonzalo', text: 'hello, EdDSA' });

    // The socket-server holds no key: after a restart, the only way it can
    // check the client's new token is to fetch the JWK Set again.
    const fetchedBefore = count(composeLogs('socket-server'), 'JWK Set fetched from');
    const closed = nextEvent(socket, 'disconnect');
    const again = nextEvent(socket, 'welcome', 60_000);
    compose('restart socket-server');
    assert.equal(await closed, 'transport close', 'a transport close, so the client reconnects');
    assert.deepEqual(await again, { username: 'gonzalo' });
    assert.ok(tokens.length >= 2, 'the reconnection asked for a token');
    assert.notEqual(tokens.at(-1), tokens[0], 'a fresh token');
    assert.ok(keys.some((key) => key.kid === jose.decodeProtectedHeader(tokens.at(-1)).kid));
    assert.equal(
      count(composeLogs('socket-server'), 'JWK Set fetched from'),
      fetchedBefore + 1,
      'the restarted socket-server fetched the JWK Set',
    );
    assert.equal((await fetch(`${SOCKET_URL}/readyz`)).status, 200);
    const metrics = await (await fetch(`${SOCKET_URL}/metrics`)).text();
    assert.match(metrics, /authbridge_jwks_fetches_total\{result="ok"\} [1-9]/);
    assert.match(metrics, /authbridge_connected_sockets 1/);

    // SIGHUP: both reload their keys (the same ones) and keep serving.
    compose('kill -s HUP web-frontend socket-server');
    await until(
      'both services log "keys reloaded"',
      async () =>
        composeLogs('web-frontend').includes('web-frontend: keys reloaded') &&
        composeLogs('socket-server').includes('socket-server: keys reloaded'),
      10_000,
    );
    assert.ok(socket.connected, 'the socket stays connected through a reload');
    assert.deepEqual((await jwks()).keys.map((key) => key.kid), keys.map((key) => key.kid), 'the same keys');
    const second = connect(cookie);
    try {
      assert.deepEqual(await nextEvent(second, 'welcome'), { username: 'gonzalo' });

      // Logout: a revocation notice signed with the private key, checked by
      // the socket-server with the public one; both of the session's sockets end.
      const ended = [nextEvent(socket, 'session_ended', 5_000), nextEvent(second, 'session_ended', 5_000)];
      const logout = await fetch(`${WEB_URL}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie } });
      assert.equal(logout.status, 303);
      await Promise.all(ended);
    } finally {
      second.close();
    }
  } finally {
    socket.close();
  }
});

test('the socket-server starts without the web-frontend: 503 until the JWK Set answers; the web-frontend keeps its key', { timeout: 90_000 }, async () => {
  const kidsBefore = (await jwks()).keys.map((key) => key.kid);
  compose('stop web-frontend');
  compose('restart socket-server');
  // Up and healthy, but without keys: not ready, handshakes refused with 503.
  await until('the socket-server answers /healthz', async () => (await fetch(`${SOCKET_URL}/healthz`)).status === 200, 20_000);
  const readyz = await fetch(`${SOCKET_URL}/readyz`);
  assert.equal(readyz.status, 503, '/readyz without keys');
  assert.match(await readyz.text(), /JWK Set/);
  const handshake = await fetch(`${SOCKET_URL}/socket.io/?EIO=4&transport=polling`);
  assert.equal(handshake.status, 503, 'a handshake without keys');
  assert.equal(handshake.headers.get('retry-after'), '1');

  const started = Date.now();
  compose('start web-frontend');
  await until('the socket-server is ready', async () => (await fetch(`${SOCKET_URL}/readyz`)).status === 200, 45_000);
  console.log(`socket-server ready ${Date.now() - started} ms after \`start web-frontend\` returned`);

  // The key came from the volume: the same kid as before the restart.
  assert.deepEqual((await jwks()).keys.map((key) => key.kid), kidsBefore, 'the same key after a restart');
  // A new process, a new cookie key: log in again.
  const cookie = await logIn('gonzalo', 'password');
  const socket = connect(cookie);
  try {
    assert.deepEqual(await nextEvent(socket, 'welcome'), { username: 'gonzalo' });
  } finally {
    socket.close();
  }
});
