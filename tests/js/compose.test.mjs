// The compose deployment, from the host: the web-frontend and the socket server
// run in their containers; this logs in over HTTP, connects the official
// socket.io-client with a token fetched in its `auth` callback, then stops and
// starts the socket-server container and expects a reconnection with a fresh
// token; a logout then ends the socket (the revocation channel between the
// containers). Run by scripts/docker-test.
//
// Inputs: WEB_URL, SOCKET_URL, STOP_SOCKET_SERVER and START_SOCKET_SERVER (shell
// commands).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { io } from 'socket.io-client';
import * as support from './compose-support.mjs';
import { nextEvent } from './compose-support.mjs';

const { WEB_URL, SOCKET_URL, STOP_SOCKET_SERVER, START_SOCKET_SERVER } = process.env;
for (const [name, value] of Object.entries({ WEB_URL, SOCKET_URL, STOP_SOCKET_SERVER, START_SOCKET_SERVER })) {
  if (!value) throw new Error(`compose.test.mjs: ${name} is not set`);
}

const logIn = (username, password) => support.logIn(WEB_URL, username, password);

test('log in, connect, welcome; the socket server restarts and the client comes back with a fresh token', { timeout: 90_000 }, async () => {
  assert.equal((await fetch(`${WEB_URL}/healthz`)).status, 200);
  assert.equal((await fetch(`${SOCKET_URL}/healthz`)).status, 200);
  const cookie = await logIn('gonzalo', 'password');
  const page = await fetch(`${WEB_URL}/private`, { headers: { cookie } });
  assert.match(await page.text(), /Welcome gonzalo!/);

  const tokens = [];
  const socket = io(SOCKET_URL, {
    transports: ['websocket'],
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    auth: (cb) => {
      fetch(`${WEB_URL}/getIoConnectionToken`, { headers: { cookie } })
        .then((response) => response.json())
        .then((token) => {
          tokens.push(token);
          cb({ token });
        });
    },
  });
  try {
    const welcome = await nextEvent(socket, 'welcome');
    assert.deepEqual(welcome, { username: 'gonzalo' });
    socket.emit('message', 'hello from the host');
    assert.deepEqual(await nextEvent(socket, 'message'), { from: 'gonzalo', text: 'hello from the host' });

    const closed = nextEvent(socket, 'disconnect');
    execSync(STOP_SOCKET_SERVER, { stdio: 'inherit' });
    assert.equal(await closed, 'transport close', 'a transport close, so the client reconnects');
    const again = nextEvent(socket, 'welcome', 60_000);
    execSync(START_SOCKET_SERVER, { stdio: 'inherit' });
    assert.deepEqual(await again, { username: 'gonzalo' });
    assert.ok(tokens.length >= 2, 'the reconnection asked for a token');
    assert.notEqual(tokens.at(-1), tokens[0], 'a fresh token');

    const metrics = await (await fetch(`${SOCKET_URL}/metrics`)).text();
    assert.match(metrics, /authbridge_connected_sockets 1/);

    // Logout travels from the web-frontend's container to the socket server's
    // (the revocation channel, over the compose network).
    const ended = nextEvent(socket, 'session_ended', 5_000);
    const logout = await fetch(`${WEB_URL}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie } });
    assert.equal(logout.status, 303);
    await ended;
  } finally {
    socket.close();
  }
});
