// The live page in a real headless Chromium (Debian's), driven by playwright-core:
// log in through the pages, watch the page's own socket connect and receive
// `welcome`, chat between two browser contexts, log out; how the page
// answers a refused, an expired and a missing token; the notices it shows
// (a sign-in elsewhere, anything published through the server API); and its
// rooms (join, a refusal, room messages, leave, back in after a reconnection,
// rooms a narrower token no longer allows dropped); connection state recovery
// (what was sent while the transport was cut arrives once after it comes
// back, "Reconnected — nothing missed"; past the server's window,
// "Reconnected — some updates may be missing").
//
// Inputs (environment):
//   WEB_URL          the web-frontend, e.g. http://127.0.0.1:41234
//   SOCKET_URL       the socket server the page is configured with
//   USER1, PASS1     a user (the article's gonzalo / password)
//   USER2, PASS2     a second user, who may join no room
//   USER3, PASS3     a third user, who may join `team:42` (USER1 has
//                    config/default.toml's rooms: lobby, team:42, org:7:*)
//   TOKEN_NARROW_ROOMS  a valid token of USER1 whose rooms are only `team:42`
//   TOKEN_EXPIRED    a token whose only fault is its passed exp
//   TOKEN_TTL_SECS   the lifetime of the tokens the web-frontend issues (short here)
//   API_KEY          the socket server's server-API key (both services have it)
//   RECOVERY_SECS    the socket server's socket.recovery_secs (short here)
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   where to write screenshots of the live page (optional)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const REQUIRED = [
  'WEB_URL', 'SOCKET_URL', 'USER1', 'PASS1', 'USER2', 'PASS2', 'USER3', 'PASS3',
  'TOKEN_EXPIRED', 'TOKEN_NARROW_ROOMS', 'TOKEN_TTL_SECS', 'API_KEY', 'RECOVERY_SECS',
];
const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length) throw new Error(`browser.test.mjs: missing environment variable(s): ${missing.join(', ')}`);
const {
  WEB_URL, SOCKET_URL, USER1, PASS1, USER2, PASS2, USER3, PASS3,
  TOKEN_EXPIRED, TOKEN_NARROW_ROOMS, API_KEY, RECOVERY_SECS, SCREENSHOT_DIR,
} = process.env;

const WAIT_MS = 10_000;
const opts = { timeout: 60_000 };

// As this machine needs them: no sandbox (root), no GPU, no background traffic.
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
  });
});
after(async () => {
  await browser?.close();
});

// A fresh browser profile (its own cookies) with a page that fails the test on
// any script error or Content-Security-Policy violation.
async function newPage(t, viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 40[13]/.test(message.text())) {
      problems.push(`console error: ${message.text()} (${message.location().url})`);
    }
  });
  t.after(() => assert.deepEqual(problems, [], 'no script error and no CSP violation'));
  return page;
}

// Counts the page's requests to /getIoConnectionToken (and lets them through).
async function countTokenFetches(page) {
  const tokens = { fetched: 0 };
  await page.route('**/getIoConnectionToken', (route) => {
    tokens.fetched += 1;
    return route.continue();
  });
  return tokens;
}

async function logIn(page, username, password) {
  await page.goto(`${WEB_URL}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${WEB_URL}/private`);
}

async function expectConnected(page, username) {
  await page.locator('#live[data-state="connected"]').waitFor();
  await page.locator('#welcome').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#welcome-username').textContent(), username);
  assert.equal(await page.locator('#connection-state').textContent(), 'Connected');
}

function messages(page) {
  return page.locator('#messages li').evaluateAll((items) => items.map((item) => ({
    from: item.querySelector('.from').textContent,
    text: item.querySelector('.text').textContent,
  })));
}

async function waitForMessage(page, expected) {
  await page.waitForFunction(
    ({ from, text }) => [...document.querySelectorAll('#messages li')].some((item) =>
      item.querySelector('.from').textContent === from && item.querySelector('.text').textContent === text),
    expected,
    { timeout: WAIT_MS },
  );
}

test('the whole flow: home, a wrong password, login, live socket, chat between two users, logout', opts, async (t) => {
  const page = await newPage(t);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws));

  // Home: a clear way in.
  await page.goto(`${WEB_URL}/`);
  await page.getByRole('link', { name: 'Log in' }).click();
  await page.waitForURL(`${WEB_URL}/login`);

  // A wrong password first: the error inline, the username kept.
  await page.getByLabel('Username').fill(USER1);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /Wrong username or password/);
  assert.equal(await page.getByLabel('Username').inputValue(), USER1);

  // Then the right one, typed and submitted with the keyboard.
  await page.getByLabel('Password').fill(PASS1);
  await page.getByLabel('Password').press('Enter');
  await page.waitForURL(`${WEB_URL}/private`);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), `Welcome ${USER1}!`);

  // The page's own socket connects and receives the server's welcome.
  await expectConnected(page, USER1);
  assert.equal(await page.getByRole('status').count(), 1, 'the connection state is a live region');
  const socketId = await page.evaluate(() => window.socket.id);
  assert.ok(socketId, 'window.socket is the connected socket');

  // A second user in another browser profile.
  const other = await newPage(t);
  await logIn(other, USER2, PASS2);
  await expectConnected(other, USER2);

  // A message, sent with the keyboard, comes back with the sender's name, to both.
  await page.getByLabel('Message', { exact: true }).fill('hello from the browser');
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await waitForMessage(page, { from: USER1, text: 'hello from the browser' });
  await waitForMessage(other, { from: USER1, text: 'hello from the browser' });
  await other.getByLabel('Message', { exact: true }).fill(`hi ${USER1}, <b>not bold</b>`);
  await other.getByRole('button', { name: 'Send' }).click();
  await waitForMessage(page, { from: USER2, text: `hi ${USER1}, <b>not bold</b>` });
  assert.equal(await page.locator('#messages b').count(), 0, 'message text is text, never markup');
  assert.deepEqual(await messages(page), await messages(other));

  if (SCREENSHOT_DIR) {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'private-page.png') });
  }

  // The websocket the page holds goes to the socket server.
  const live = sockets.find((ws) => ws.url().startsWith(SOCKET_URL.replace(/^http/, 'ws')));
  assert.ok(live, `a websocket to ${SOCKET_URL}: ${sockets.map((ws) => ws.url())}`);
  const closed = live.isClosed() ? Promise.resolve() : live.waitForEvent('close', { timeout: WAIT_MS });

  // Logout: back home, the socket closed, the session gone.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(`${WEB_URL}/`);
  await closed;
  const token = await page.request.get(`${WEB_URL}/getIoConnectionToken`);
  assert.equal(token.status(), 403);
  await page.goto(`${WEB_URL}/private`);
  await page.waitForURL(`${WEB_URL}/login`);
});

test('the page works at phone width', opts, async (t) => {
  const page = await newPage(t, { width: 375, height: 740 });
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'no horizontal scrolling at 375 px');
  await page.getByLabel('Message', { exact: true }).fill('from a phone');
  await page.getByRole('button', { name: 'Send' }).click();
  await waitForMessage(page, { from: USER1, text: 'from a phone' });
  if (SCREENSHOT_DIR) await page.screenshot({ path: join(SCREENSHOT_DIR, 'private-page-phone.png') });
});

test('every connection asks /getIoConnectionToken for a fresh token, reconnections too', opts, async (t) => {
  const page = await newPage(t);
  const tokens = await countTokenFetches(page);
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  assert.equal(tokens.fetched, 1);

  // Drop the transport (as a network change would): the client reconnects
  // by itself, with a new token, and recovers its socket.
  await page.evaluate(() => window.socket.io.engine.close());
  await page.waitForFunction(() => window.socket.connected === false || document.querySelector('#live').dataset.state !== 'connected');
  await page.locator('#live[data-state="connected"]').waitFor();
  assert.equal(tokens.fetched, 2);
  assert.equal(await page.locator('#connection-state').textContent(), 'Reconnected — nothing missed');
  assert.equal(await page.evaluate(() => window.socket.recovered), true);
});

test('a refused token is shown with the reason', opts, async (t) => {
  const page = await newPage(t);
  await page.route('**/getIoConnectionToken', (route) => route.fulfill({ json: 'this.is.forged' }));
  await logIn(page, USER1, PASS1);
  await page.locator('#live[data-state="refused"]').waitFor();
  assert.equal(await page.locator('#connection-state').textContent(), 'Refused: not valid token');
  assert.equal(await page.getByLabel('Message', { exact: true }).isDisabled(), true);
});

test('an expired token is answered with a fresh one', opts, async (t) => {
  const page = await newPage(t);
  let fetched = 0;
  await page.route('**/getIoConnectionToken', (route) => {
    fetched += 1;
    return fetched === 1 ? route.fulfill({ json: TOKEN_EXPIRED }) : route.continue();
  });
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  assert.equal(fetched, 2, 'one expired token, then a fresh one');
});

test('a 403 from /getIoConnectionToken (the session gone) sends the user to /login', opts, async (t) => {
  const page = await newPage(t);
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  await page.route('**/getIoConnectionToken', (route) => route.fulfill({ status: 403, json: { error: 'not logged in' } }));
  // Drop the transport: the reconnection asks for a token and gets 403.
  await page.evaluate(() => window.socket.io.engine.close());
  await page.waitForURL(`${WEB_URL}/login`);
});

test('a logout elsewhere ends the socket of the page at once (session_ended) and sends the user to /login', opts, async (t) => {
  const page = await newPage(t);
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  // The same session logs out from another tab.
  const loggedOut = Date.now();
  await page.request.post(`${WEB_URL}/logout`, { headers: { Origin: WEB_URL } });
  await page.waitForURL(`${WEB_URL}/login`, { timeout: 5000 });
  assert.ok(Date.now() - loggedOut < 3000, 'the page learnt of the logout within moments');
});

test('the page refreshes its token in-band before it expires and never disconnects', opts, async (t) => {
  const page = await newPage(t);
  const tokens = await countTokenFetches(page);
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  const socketId = await page.evaluate(() => window.socket.id);
  await page.evaluate(() => {
    window.stateChanges = [];
    new MutationObserver(() => window.stateChanges.push(document.querySelector('#live').dataset.state))
      .observe(document.querySelector('#live'), { attributes: true, attributeFilter: ['data-state'] });
  });
  // Two and a half token lifetimes (the suite runs with short tokens: TOKEN_TTL_SECS).
  await page.waitForTimeout(Number(process.env.TOKEN_TTL_SECS) * 2500);
  assert.deepEqual(await page.evaluate(() => window.stateChanges), [], 'never left "connected"');
  assert.equal(await page.evaluate(() => window.socket.id), socketId, 'the same socket throughout');
  assert.ok(tokens.fetched >= 3, `the token was refreshed in-band (${tokens.fetched} tokens fetched)`);
  await page.getByLabel('Message', { exact: true }).fill('still here');
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await waitForMessage(page, { from: USER1, text: 'still here' });
});

// What the page shows of its notices: each one's message text and the instant
// its <time> names (null when it has none).
function notices(page) {
  return page.locator('#notices .notice-message').evaluateAll((items) => items.map((item) => ({
    text: item.textContent,
    time: item.querySelector('time')?.dateTime ?? null,
  })));
}

// `POST /api/publish` on the socket server, as the application's backend would.
async function publish(body) {
  const response = await fetch(`${SOCKET_URL}/api/publish`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, `publish: ${await response.text()}`);
}

test('a sign-in elsewhere shows a notice on the open page, with the browser family and the time', opts, async (t) => {
  const page = await newPage(t);
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  assert.equal(await page.locator('#notices').getAttribute('aria-live'), 'polite', 'the notices are a live region');
  const before = (await notices(page)).length;
  // Headless Chromium says `HeadlessChrome/…`: the Chrome family.
  assert.match(await page.evaluate(() => navigator.userAgent), /Chrome\//);

  // The same user logs in from another browser profile.
  const other = await newPage(t);
  await other.goto(`${WEB_URL}/login`);
  await other.getByLabel('Username').fill(USER1);
  await other.getByLabel('Password').fill(PASS1);
  const signedIn = Date.now();
  await other.getByRole('button', { name: 'Log in' }).click();

  await page.waitForFunction(
    (count) => document.querySelectorAll('#notices .notice-message').length > count,
    before,
    { timeout: 2000 },
  );
  assert.ok(Date.now() - signedIn < 2000, 'the notice arrived within 2 s of the sign-in');
  const notice = (await notices(page)).at(-1);
  assert.match(notice.text, /^New sign-in to your account — Chrome, \d{1,2}:\d{2}/);
  assert.ok(notice.time, 'the time is a <time> element');
  assert.ok(Math.abs(Date.parse(notice.time) - signedIn) < 5000, `the time of the sign-in (${notice.time})`);
  const shown = await page.evaluate((iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), notice.time);
  assert.ok(notice.text.endsWith(shown), `in the page's local time (${shown})`);
  assert.ok(await page.locator('#notices .notice').last().isVisible(), 'the notice is visible');
  await other.waitForURL(`${WEB_URL}/private`);
  if (SCREENSHOT_DIR) await page.screenshot({ path: join(SCREENSHOT_DIR, 'private-page-notice.png') });

  // A notice is dismissed with its button.
  const count = await page.locator('#notices .notice').count();
  await page.locator('#notices .notice').last().getByRole('button', { name: 'Dismiss' }).click();
  assert.equal(await page.locator('#notices .notice').count(), count - 1);
});

test('notices published through the server API are shown as text; others are ignored', opts, async (t) => {
  const page = await newPage(t);
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  const before = (await notices(page)).length;

  // Not notices the page can show: ignored, no error.
  for (const data of [null, 42, 'a bare string', { kind: 'sign-in' }, { text: 7 }, { text: '   ' }]) {
    await publish({ to: `user:${USER1}`, event: 'notice', data });
  }
  // A generic notice, with markup in it that must stay text.
  await publish({ to: `user:${USER1}`, event: 'notice', data: { text: 'Maintenance at <b>18:00</b>', extra: { nested: true } } });

  await page.waitForFunction(
    (count) => document.querySelectorAll('#notices .notice-message').length > count,
    before,
  );
  const shown = (await notices(page)).slice(before);
  assert.deepEqual(shown, [{ text: 'Maintenance at <b>18:00</b>', time: null }]);
  assert.equal(await page.locator('#notices b').count(), 0, 'notice text is text, never markup');
});

// Rooms.

// The rooms the page lists as joined, in order.
function joinedRooms(page) {
  return page.locator('#joined-rooms li').evaluateAll((items) => items.map((item) => item.dataset.room));
}

// Waits until the page lists exactly `rooms` as joined, every one of them
// confirmed by the server (none still re-joining).
async function waitForJoined(page, rooms) {
  await page.waitForFunction(
    (expected) => {
      const items = [...document.querySelectorAll('#joined-rooms li')];
      return JSON.stringify(items.map((item) => item.dataset.room)) === JSON.stringify(expected)
        && items.every((item) => item.dataset.state === 'joined');
    },
    rooms,
  );
}

// Waits for the rooms panel's live region to say `expected` (a string or a RegExp).
async function expectRoomsStatus(page, expected) {
  const status = page.locator('#rooms-status');
  if (expected instanceof RegExp) {
    await page.waitForFunction((source) => new RegExp(source).test(document.querySelector('#rooms-status').textContent), expected.source);
  } else {
    await page.waitForFunction((text) => document.querySelector('#rooms-status').textContent === text, expected);
  }
  return status.textContent();
}

// Sends `text` with the keyboard, to `room` or (null) to everyone.
async function sendTo(page, room, text) {
  if (room !== null || await page.getByLabel('Send to').isVisible()) {
    await page.getByLabel('Send to').selectOption(room ?? '');
  }
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
}

// Every line of the message list: its room (null for everyone), sender and text.
function lines(page) {
  return page.locator('#messages li').evaluateAll((items) => items.map((item) => ({
    room: item.dataset.room ?? null,
    from: item.querySelector('.from').textContent,
    text: item.querySelector('.text').textContent,
  })));
}

async function waitForLine(page, expected) {
  await page.waitForFunction(
    ({ room, from, text }) => [...document.querySelectorAll('#messages li')].some((item) =>
      (item.dataset.room ?? null) === room
      && item.querySelector('.from').textContent === from
      && item.querySelector('.text').textContent === text),
    expected,
  );
}

// `GET /api/presence/room:NAME` on the socket server.
async function roomPresence(name) {
  const response = await fetch(`${SOCKET_URL}/api/presence/room:${encodeURIComponent(name)}`, {
    headers: { Authorization: `Bearer ${API_KEY}` },
  });
  const body = await response.text();
  assert.equal(response.status, 200, `presence: ${body}`);
  return JSON.parse(body);
}

// Drops the page's transport (as a network change or a socket-server restart
// would) and waits until the client has reconnected by itself (recovered: the
// same socket id; otherwise a new socket).
async function reconnect(page) {
  await page.evaluate(() => new Promise((resolve) => {
    window.socket.once('connect', resolve);
    window.socket.io.engine.close();
  }));
  await page.locator('#live[data-state="connected"]').waitFor();
}

test('rooms: join by a click or by name, a refusal, room messages reach members only, leave, back in after a reconnection', opts, async (t) => {
  const page = await newPage(t);
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);

  // His rooms, as the server rendered them: a button for each exact room, a
  // way to name one for the pattern with `*`.
  const patterns = await page.locator('#room-patterns li').evaluateAll((items) => items.map((item) => item.dataset.pattern));
  assert.deepEqual(patterns, ['lobby', 'team:42', 'org:7:*']);
  assert.equal(await page.getByRole('button', { name: 'Join lobby' }).count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Name a room in org:7:*' }).count(), 1);
  assert.deepEqual(await joinedRooms(page), []);
  assert.equal(await page.getByLabel('Send to').isVisible(), false, 'no room selector before a room is joined');
  assert.equal(await page.locator('#rooms-status').getAttribute('aria-live'), 'polite', 'the outcome is a live region');

  // One click joins an exact room.
  await page.getByRole('button', { name: 'Join team:42' }).click();
  await expectRoomsStatus(page, 'Joined team:42.');
  await waitForJoined(page, ['team:42']);

  // Names no pattern allows are refused, and the refusal is shown.
  for (const name of ['secret', 'org:70']) {
    await page.getByLabel('Room name').fill(name);
    await page.getByLabel('Room name').press('Enter');
    await expectRoomsStatus(page, `Could not join ${name}: forbidden.`);
    assert.equal(await page.getByLabel('Room name').inputValue(), name, 'the refused name stays, to be corrected');
  }
  assert.deepEqual(await joinedRooms(page), ['team:42']);

  // A room under `org:7:*`, with the keyboard: the pattern's button puts the
  // prefix in the name field and focuses it.
  await page.getByRole('button', { name: 'Name a room in org:7:*' }).press('Enter');
  assert.equal(await page.getByLabel('Room name').inputValue(), 'org:7:');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'room-name');
  await page.keyboard.type('sales');
  await page.keyboard.press('Enter');
  await expectRoomsStatus(page, 'Joined org:7:sales.');
  await waitForJoined(page, ['team:42', 'org:7:sales']);
  assert.equal(await page.getByLabel('Room name').inputValue(), '');
  const options = await page.getByLabel('Send to').locator('option').evaluateAll((items) => items.map((item) => [item.value, item.textContent]));
  assert.deepEqual(options, [['', 'Everyone'], ['team:42', 'team:42'], ['org:7:sales', 'org:7:sales']]);

  // A member of team:42, and a user who may join no room.
  const member = await newPage(t);
  await logIn(member, USER3, PASS3);
  await expectConnected(member, USER3);
  await member.getByRole('button', { name: 'Join team:42' }).click();
  await waitForJoined(member, ['team:42']);
  const outsider = await newPage(t);
  await logIn(outsider, USER2, PASS2);
  await expectConnected(outsider, USER2);
  assert.equal(await outsider.locator('#room-patterns').count(), 0);
  assert.match(await outsider.locator('#rooms-none').textContent(), /may not join any room/);
  const presence = await roomPresence('team:42');
  assert.deepEqual([...presence.users].sort(), [USER3, USER1].sort());

  // A room message reaches the room's members, marked with its room; then an
  // everyone-message reaches everybody. The relay keeps the order: once the
  // outsider has the second, the first would have come before it.
  await sendTo(page, 'team:42', 'for the team only');
  await waitForLine(page, { room: 'team:42', from: USER1, text: 'for the team only' });
  await waitForLine(member, { room: 'team:42', from: USER1, text: 'for the team only' });
  await sendTo(page, null, 'for everyone');
  for (const p of [page, member, outsider]) await waitForLine(p, { room: null, from: USER1, text: 'for everyone' });
  assert.ok(!(await lines(outsider)).some((line) => line.text === 'for the team only'), 'a non-member gets no room message');
  await sendTo(member, 'team:42', `hi ${USER1}, <b>team</b>`);
  await waitForLine(page, { room: 'team:42', from: USER3, text: `hi ${USER1}, <b>team</b>` });
  assert.equal(await page.locator('#messages b').count(), 0, 'room message text is text, never markup');

  // A room message is distinct from an everyone-message: "[team:42] gonzalo: …".
  const roomLine = page.locator('#messages li', { hasText: 'for the team only' });
  assert.equal(await roomLine.getAttribute('class'), 'room-message');
  assert.equal(await roomLine.locator('.room').textContent(), '[team:42]');
  assert.equal(await roomLine.textContent(), `[team:42] ${USER1} for the team only`);
  const plainLine = page.locator('#messages li', { hasText: 'for everyone' });
  assert.equal(await plainLine.locator('.room').count(), 0);
  assert.equal(await plainLine.getAttribute('data-room'), null);
  if (SCREENSHOT_DIR) await page.screenshot({ path: join(SCREENSHOT_DIR, 'private-page-rooms.png'), fullPage: true });

  // Back after a cut: the socket recovered (the server restored its rooms),
  // the page confirms its rooms, and room messages reach it.
  await reconnect(page);
  await waitForJoined(page, ['team:42', 'org:7:sales']);
  assert.equal(await page.locator('#connection-state').textContent(), 'Reconnected — nothing missed');
  await sendTo(member, 'team:42', 'after the reconnection');
  await waitForLine(page, { room: 'team:42', from: USER3, text: 'after the reconnection' });
  await sendTo(page, 'team:42', 'back in');
  await waitForLine(member, { room: 'team:42', from: USER1, text: 'back in' });

  // Leave, with the keyboard: the ack shown, the room gone from the list and
  // the selector (which falls back to everyone), the focus on the next Leave.
  await page.getByLabel('Send to').selectOption('team:42');
  await page.getByRole('button', { name: 'Leave team:42' }).focus();
  await page.keyboard.press('Enter');
  await expectRoomsStatus(page, 'Left team:42.');
  await waitForJoined(page, ['org:7:sales']);
  assert.equal(await page.getByLabel('Send to').inputValue(), '');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Leave org:7:sales');
  await sendTo(member, 'team:42', 'after the leave');
  await sendTo(member, null, 'a barrier');
  await waitForLine(page, { room: null, from: USER3, text: 'a barrier' });
  assert.ok(!(await lines(page)).some((line) => line.text === 'after the leave'), 'a room left brings no more of its messages');
  assert.deepEqual((await roomPresence('team:42')).users, [USER3]);
});

test('rooms a narrower token no longer allows leave the list: a refused re-join, and after an in-band refresh', opts, async (t) => {
  async function inTwoRooms(p) {
    await logIn(p, USER1, PASS1);
    await expectConnected(p, USER1);
    await p.getByRole('button', { name: 'Join team:42' }).click();
    await waitForJoined(p, ['team:42']);
    await p.getByLabel('Room name').fill('org:7:narrowed');
    await p.getByRole('button', { name: 'Join', exact: true }).click();
    await waitForJoined(p, ['team:42', 'org:7:narrowed']);
  }

  // A new socket whose token allows only team:42: that re-join succeeds, the
  // other one is refused and dropped.
  const page = await newPage(t);
  await inTwoRooms(page);
  await page.route('**/getIoConnectionToken', (route) => route.fulfill({ json: TOKEN_NARROW_ROOMS }));
  await reconnect(page);
  await waitForJoined(page, ['team:42']);
  assert.match(await expectRoomsStatus(page, /org:7:narrowed/), /^No longer in org:7:narrowed \(forbidden\)/);
  assert.equal((await roomPresence('org:7:narrowed')).sockets, 0);

  // The same socket, refreshed in-band with that token: the server leaves the
  // room silently; the page confirms its rooms and drops it too.
  const other = await newPage(t);
  await inTwoRooms(other);
  const socketId = await other.evaluate(() => window.socket.id);
  await other.route('**/getIoConnectionToken', (route) => route.fulfill({ json: TOKEN_NARROW_ROOMS }));
  await waitForJoined(other, ['team:42']);
  assert.match(await other.locator('#rooms-status').textContent(), /^No longer in org:7:narrowed \(forbidden\)/);
  assert.equal(await other.evaluate(() => window.socket.id), socketId, 'the same socket: the refresh was in-band');
  assert.equal((await roomPresence('org:7:narrowed')).sockets, 0);
  assert.equal((await roomPresence('team:42')).sockets, 2);
});

// Connection state recovery.

// Cuts the page's transport and keeps it away (its client's automatic
// reconnection off) until `comeBack`.
async function cutAndHold(page) {
  await page.evaluate(() => {
    window.socket.io.reconnection(false);
    window.socket.io.engine.close();
  });
  await page.locator('#live[data-state="reconnecting"]').waitFor();
  assert.equal(await page.evaluate(() => window.socket.connected), false);
}

// Lets the page's client reconnect (with a fresh token, its pid and its last
// offset, as it would by itself) and waits for the socket.
async function comeBack(page) {
  await page.evaluate(() => new Promise((resolve) => {
    window.socket.once('connect', resolve);
    window.socket.io.reconnection(true);
    window.socket.connect();
  }));
  await page.locator('#live[data-state="connected"]').waitFor();
}

test('recovery: what was sent while the transport was cut arrives once ("Reconnected — nothing missed"); past the window, "some updates may be missing"', opts, async (t) => {
  const page = await newPage(t);
  await logIn(page, USER1, PASS1);
  await expectConnected(page, USER1);
  await page.getByRole('button', { name: 'Join team:42' }).click();
  await waitForJoined(page, ['team:42']);
  const member = await newPage(t);
  await logIn(member, USER3, PASS3);
  await expectConnected(member, USER3);
  await member.getByRole('button', { name: 'Join team:42' }).click();
  await waitForJoined(member, ['team:42']);
  const other = await newPage(t);
  await logIn(other, USER2, PASS2);
  await expectConnected(other, USER2);
  const socketId = await page.evaluate(() => window.socket.id);
  const noticesBefore = (await notices(page)).length;
  const linesBefore = (await lines(page)).length;

  // The transport cut; meanwhile a notice through the server API, a message
  // to everyone and a room message, each one seen delivered to the others.
  await cutAndHold(page);
  await publish({ to: `user:${USER1}`, event: 'notice', data: { text: 'Published while you were away' } });
  await sendTo(other, null, 'sent while you were away');
  await waitForLine(other, { room: null, from: USER2, text: 'sent while you were away' });
  await sendTo(member, 'team:42', 'for the team, while you were away');
  await waitForLine(member, { room: 'team:42', from: USER3, text: 'for the team, while you were away' });
  assert.equal(await page.evaluate(() => window.socket.connected), false, 'still away');
  assert.equal((await lines(page)).length, linesBefore);

  // Back: the same socket, recovered, what it missed shown once, in order,
  // before what comes after (a barrier: once it is in, so is all it missed).
  await comeBack(page);
  assert.equal(await page.locator('#connection-state').textContent(), 'Reconnected — nothing missed');
  assert.equal(await page.evaluate(() => window.socket.recovered), true);
  assert.equal(await page.evaluate(() => window.socket.id), socketId, 'the same socket id');
  await sendTo(other, null, 'after the recovery');
  await waitForLine(page, { room: null, from: USER2, text: 'after the recovery' });
  assert.deepEqual((await lines(page)).slice(linesBefore), [
    { room: null, from: USER2, text: 'sent while you were away' },
    { room: 'team:42', from: USER3, text: 'for the team, while you were away' },
    { room: null, from: USER2, text: 'after the recovery' },
  ]);
  assert.deepEqual((await notices(page)).slice(noticesBefore), [{ text: 'Published while you were away', time: null }]);
  // The room: restored by the server, confirmed by the page, in it once.
  await waitForJoined(page, ['team:42']);
  assert.equal((await roomPresence('team:42')).sockets, 2);
  await sendTo(member, 'team:42', 'to the recovered socket');
  await waitForLine(page, { room: 'team:42', from: USER3, text: 'to the recovered socket' });
  assert.equal((await lines(page)).filter((line) => line.text === 'to the recovered socket').length, 1);
  if (SCREENSHOT_DIR) await page.screenshot({ path: join(SCREENSHOT_DIR, 'private-page-recovered.png'), fullPage: true });

  // Cut again, for longer than the server keeps the session: a new socket,
  // and the page says that updates may be missing (the notice sent in the
  // gap is).
  await cutAndHold(page);
  await publish({ to: `user:${USER1}`, event: 'notice', data: { text: 'Published past the recovery window' } });
  await page.waitForTimeout((Number(RECOVERY_SECS) + 1.5) * 1000);
  const noticesAway = (await notices(page)).length;
  await comeBack(page);
  assert.equal(await page.locator('#connection-state').textContent(), 'Reconnected — some updates may be missing');
  assert.equal(await page.evaluate(() => window.socket.recovered), false);
  assert.notEqual(await page.evaluate(() => window.socket.id), socketId, 'a new socket');
  assert.equal(
    await page.locator('#connection-state').evaluate((node) => getComputedStyle(node).color),
    'rgb(138, 90, 0)',
    'the warning colour',
  );
  // The new socket is in no room: the page joins its room again.
  await waitForJoined(page, ['team:42']);
  await sendTo(member, 'team:42', 'to the new socket');
  await waitForLine(page, { room: 'team:42', from: USER3, text: 'to the new socket' });
  assert.equal((await roomPresence('team:42')).sockets, 2);
  assert.equal((await notices(page)).length, noticesAway, 'the notice sent in the gap is lost, as the page says');
  if (SCREENSHOT_DIR) await page.screenshot({ path: join(SCREENSHOT_DIR, 'private-page-missing.png'), fullPage: true });
  // The longer status fits a phone.
  await page.setViewportSize({ width: 375, height: 740 });
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth), false, 'no horizontal scrolling at 375 px');

  // Cut again, briefly: recovered once more.
  await reconnect(page);
  assert.equal(await page.locator('#connection-state').textContent(), 'Reconnected — nothing missed');
  assert.equal(await page.evaluate(() => window.socket.recovered), true);
});
