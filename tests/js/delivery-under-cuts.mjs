#!/usr/bin/env node
// Delivery under network cuts (the AnyCable-style test): N clients — the
// OFFICIAL socket.io-client 4.x, websocket transport, default reconnection —
// each behind a tiny TCP proxy of its own that this driver "unplugs" every few
// seconds for 2 s (every connection through it is dropped, and new ones are
// refused while it is unplugged), so each client sees a real transport loss
// and reconnects on its own; meanwhile a publisher sends numbered events at a
// steady rate. At the end every client is plugged back in, waits to be
// connected, and a final marker is published: what a client has by the time
// the marker reaches it is all it will ever get (missed events come back
// before live ones). Counted per client: delivered (unique), duplicates, and
// order violations, against what was sent.
//
// Publishing (--publish):
//   message  a publisher socket (not cut) emits `message` "n:<k>"; every socket
//            receives `message` {"from", "text"} (the contract's v1 surface, so
//            ours and the Node peer are driven the same way)
//   api      POST /api/publish {"to": "everyone", "event": "tick", "data":
//            {"n": k}} (ours only: the server API), one request at a time,
//            alternating nodes when there are two
// The publisher's own socket also counts what it receives (never cut: every
// event the server broadcast reaches it; `observer_missing` says otherwise).
//
// Servers (--url, once or twice): with two, client i starts on node i % 2 and
// every new connection through its proxy goes to the other node, so each
// reconnection moves it.
//
// Opt-in: clients send {token, recovery: true} (our server's connection state
// recovery opt-in; the Node peer ignores the extra field) unless --no-opt-in;
// --plain K adds K clients that never opt in, counted apart (a control group:
// they show the cuts do lose events when nothing recovers them).
//
// Environment: APP_JWT__SECRET (the HS256 shared key: tokens are minted here,
// one user and one login session `sid` per client, a fresh token at every
// connect), APP_API__KEY (for --publish api).
//
// Prints one JSON report on stdout (progress and problems on stderr); exits 0
// when the run completed (whatever it measured), 1 when it could not run.
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { io } from 'socket.io-client';
import { SignJWT } from 'jose';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string', multiple: true },
    label: { type: 'string', default: '' },
    clients: { type: 'string', default: '50' },
    plain: { type: 'string', default: '0' },
    duration: { type: 'string', default: '20' },
    rate: { type: 'string', default: '20' },
    'cut-every': { type: 'string', default: '5' },
    'cut-for': { type: 'string', default: '2' },
    publish: { type: 'string', default: 'message' },
    'no-opt-in': { type: 'boolean', default: false },
    'max-losses': { type: 'string', default: '10' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help || !opt.url?.length) {
  process.stderr.write(`usage: node delivery-under-cuts.mjs --url URL [--url URL2] [--label NAME]
  [--clients N=50] [--plain K=0] [--duration S=20] [--rate R=20] [--cut-every S=5]
  [--cut-for S=2] [--publish message|api] [--no-opt-in] [--max-losses N=10]
environment: APP_JWT__SECRET; APP_API__KEY for --publish api
`);
  process.exit(opt.help ? 0 : 1);
}
const number = (name) => {
  const value = Number(opt[name]);
  if (!Number.isFinite(value) || value < 0) die(`--${name} must be a number, not ${opt[name]}`);
  return value;
};
function die(message) {
  process.stderr.write(`delivery-under-cuts: ${message}\n`);
  process.exit(1);
}

const URLS = opt.url.map((u) => new URL(u));
const CLIENTS = number('clients');
const PLAIN = number('plain');
const DURATION_MS = number('duration') * 1000;
const RATE = number('rate');
const CUT_EVERY_MS = number('cut-every') * 1000;
const CUT_FOR_MS = number('cut-for') * 1000;
const PUBLISH = opt.publish;
const OPT_IN = !opt['no-opt-in'];
const MAX_LOSSES = number('max-losses');
const SECRET = process.env.APP_JWT__SECRET;
const API_KEY = process.env.APP_API__KEY;
if (!SECRET) die('APP_JWT__SECRET is not set');
if (!['message', 'api'].includes(PUBLISH)) die(`--publish is message or api, not ${PUBLISH}`);
if (PUBLISH === 'api' && !API_KEY) die('--publish api needs APP_API__KEY');
if (RATE <= 0 || CLIENTS + PLAIN < 1) die('--rate and --clients must be positive');

const CONNECT_WITHIN_MS = 15_000; // the start, and the way back at the end
const MARKER_WITHIN_MS = 15_000;
const TAG = randomUUID().slice(0, 8);
const KEY = new TextEncoder().encode(SECRET);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let T0 = performance.now();
const now = () => Math.round(performance.now() - T0); // ms since publishing began

// A token as an application's own JWT code would mint it (the contract's
// claims; `user` for the article's clients), valid for 5 minutes.
function mint(user, sid) {
  return new SignJWT({ user: { username: user }, sid })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setIssuer('web-frontend')
    .setAudience('socket-server')
    .setJti(randomUUID())
    .sign(KEY);
}

// One client's proxy: forwards each accepted connection to a node (the next
// one each time, starting at `first`), until unplugged: then every open
// connection is dropped at once and new ones are dropped as they arrive.
function proxy(first, log) {
  let plugged = true;
  let next = first;
  const pairs = new Set();
  const server = net.createServer((down) => {
    down.on('error', () => {});
    if (!plugged) {
      log.push({ t: now(), ev: 'refused' });
      down.destroy();
      return;
    }
    const node = next % URLS.length;
    next += 1;
    const up = net.connect({ host: URLS[node].hostname, port: Number(URLS[node].port) });
    up.on('error', () => {});
    const pair = { down, up, node };
    pairs.add(pair);
    log.push({ t: now(), ev: 'open', node });
    down.pipe(up);
    up.pipe(down);
    const close = () => {
      if (!pairs.delete(pair)) return;
      down.destroy();
      up.destroy();
    };
    down.on('close', close);
    up.on('close', close);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      get plugged() { return plugged; },
      unplug() {
        plugged = false;
        for (const pair of pairs) {
          pair.down.destroy();
          pair.up.destroy();
        }
        pairs.clear();
      },
      plug() { plugged = true; },
      close() { this.unplug(); server.close(); },
    }));
  });
}

// What one socket counts: every numbered event, in arrival order (with the
// offset it came with, when it had one), and each duplicate or out-of-order
// arrival (its place in that order).
function counter() {
  return { got: new Map(), duplicates: 0, outOfOrder: 0, last: 0, arrivals: [], anomalies: [], marker: false };
}
function record(c, k, offset) {
  c.arrivals.push(offset === undefined ? [now(), k] : [now(), k, offset]);
  if (c.got.has(k)) {
    c.duplicates += 1;
    c.anomalies.push({ kind: 'duplicate', k, at: c.arrivals.length - 1 });
  } else {
    if (k < c.last) {
      c.outOfOrder += 1;
      c.anomalies.push({ kind: 'out of order', k, after: c.last, at: c.arrivals.length - 1 });
    }
    c.got.set(k, now());
  }
  c.last = Math.max(c.last, k);
}

// The numbered event or the marker in one received event, else undefined.
function parse(event, data) {
  if (PUBLISH === 'message' && event === 'message' && typeof data?.text === 'string') {
    if (data.text === `end:${TAG}`) return 'end';
    const m = /^n:(\d+)$/.exec(data.text);
    return m ? Number(m[1]) : undefined;
  }
  if (PUBLISH === 'api' && event === 'tick' && data && typeof data === 'object') {
    if (data.end === TAG) return 'end';
    return Number.isSafeInteger(data.n) ? data.n : undefined;
  }
  return undefined;
}

function listen(socket, c, onMarker) {
  const handle = (event) => (data, ...rest) => {
    const k = parse(event, data);
    if (k === 'end') {
      c.marker = true;
      onMarker?.();
    } else if (k !== undefined) {
      record(c, k, typeof rest.at(-1) === 'string' ? rest.at(-1) : undefined);
    }
  };
  socket.on('message', handle('message'));
  socket.on('tick', handle('tick'));
}

// One cut client: its own user, login session, proxy and socket.
async function client(i, optIn) {
  const user = `cuts-${TAG}-${optIn ? 'r' : 'p'}${i}`;
  const sid = `sid-${randomUUID()}`;
  const log = [];
  const c = counter();
  const px = await proxy(i, log);
  const socket = io(`http://127.0.0.1:${px.port}`, {
    transports: ['websocket'],
    forceNew: true,
    auth: (cb) => {
      mint(user, sid).then(
        (token) => cb(optIn ? { token, recovery: true } : { token }),
        (error) => { process.stderr.write(`mint: ${error}\n`); cb({}); },
      );
    },
  });
  const me = { i, optIn, user, socket, proxy: px, log, c, cuts: 0, connects: 0, recovered: 0, ids: new Set(), connectedAt: 0 };
  socket.on('connect', () => {
    me.connects += 1;
    me.connectedAt = now();
    if (me.connects > 1 && socket.recovered) me.recovered += 1;
    me.ids.add(socket.id);
    log.push({ t: now(), ev: 'connect', recovered: me.connects > 1 ? socket.recovered : undefined, id: socket.id });
  });
  socket.on('disconnect', (reason) => log.push({ t: now(), ev: 'disconnect', reason }));
  socket.on('connect_error', (error) => log.push({ t: now(), ev: 'connect_error', message: error.message }));
  listen(socket, c, () => log.push({ t: now(), ev: 'marker' }));
  return me;
}

// Waits until `check()` holds (polled), or `within` ms passed; returns whether it held.
async function until(check, within) {
  const deadline = performance.now() + within;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

// The cut loop of one client: the first cut at a random moment of the first
// period, then one every period; a client not back yet when its next cut is
// due is cut a random 0–1 s after it is back (every cut drops a live
// connection). No cut starts once publishing has ended.
async function cutLoop(me, stopAt) {
  let at = 500 + Math.random() * Math.max(CUT_EVERY_MS - 500, 0);
  for (;;) {
    await sleep(Math.max(at - now(), 0));
    if (!me.socket.connected) {
      await until(() => me.socket.connected || now() >= stopAt, Math.max(stopAt - now(), 0) + 50);
      if (now() >= stopAt) break;
      await sleep(Math.random() * 1000);
    }
    if (now() >= stopAt) break;
    const start = now();
    me.cuts += 1;
    me.log.push({ t: start, ev: 'cut' });
    me.proxy.unplug();
    await sleep(CUT_FOR_MS);
    me.proxy.plug();
    me.log.push({ t: now(), ev: 'plug' });
    at = start + CUT_EVERY_MS;
  }
}

// Publishes k = 1 … total at the rate, on schedule; returns the sent ks.
async function publish(publisher, total, sentAt) {
  const sent = [];
  const failures = [];
  let node = 0;
  for (let k = 1; k <= total; k++) {
    await sleep(Math.max(k * (1000 / RATE) - now(), 0));
    sentAt[k] = now();
    if (PUBLISH === 'message') {
      publisher.emit('message', `n:${k}`);
      sent.push(k);
    } else {
      const status = await api(URLS[node], { to: 'everyone', event: 'tick', data: { n: k } });
      node = (node + 1) % URLS.length;
      if (status === 200) sent.push(k);
      else failures.push({ k, status });
    }
  }
  return { sent, failures };
}

async function api(url, body) {
  try {
    const response = await fetch(new URL('/api/publish', url), {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    return String(error.message ?? error);
  }
}

async function marker(publisher) {
  if (PUBLISH === 'message') {
    publisher.emit('message', `end:${TAG}`);
    return true;
  }
  return (await api(URLS[0], { to: 'everyone', event: 'tick', data: { end: TAG } })) === 200;
}

// `[1,2,3,7,9,10]` → `"1–3, 7, 9–10"`.
function ranges(ks) {
  const out = [];
  for (let j = 0; j < ks.length; j++) {
    let e = j;
    while (e + 1 < ks.length && ks[e + 1] === ks[e] + 1) e++;
    out.push(e === j ? `${ks[j]}` : `${ks[j]}–${ks[e]}`);
    j = e;
  }
  return out.join(', ');
}

function summarize(group, sent, sentAt) {
  const expected = sent.length;
  const rows = group.map((me) => {
    const missing = sent.filter((k) => !me.c.got.has(k));
    return { me, delivered: expected - missing.length, missing };
  });
  const delivered = rows.reduce((s, r) => s + r.delivered, 0);
  const worst = rows.reduce((w, r) => (w === undefined || r.delivered < w.delivered ? r : w), undefined);
  const pct = (d, e) => (e === 0 ? 100 : Math.floor((d / e) * 100000) / 1000);
  const reconnects = group.reduce((s, me) => s + Math.max(me.connects - 1, 0), 0);
  // How long each cut kept a client away: its transport lost → connected again.
  const away = group.flatMap((me) => {
    const spans = [];
    let lost;
    for (const e of me.log) {
      if (e.ev === 'disconnect' && e.reason !== 'io client disconnect') lost ??= e.t;
      if (e.ev === 'connect' && lost !== undefined) {
        spans.push(e.t - lost);
        lost = undefined;
      }
    }
    return spans;
  }).sort((a, b) => a - b);
  return {
    clients: group.length,
    expected_deliveries: expected * group.length,
    delivered,
    delivered_pct: pct(delivered, expected * group.length),
    worst_client: worst && { client: worst.me.i, delivered: worst.delivered, delivered_pct: pct(worst.delivered, expected) },
    clients_complete: rows.filter((r) => r.missing.length === 0).length,
    duplicates: group.reduce((s, me) => s + me.c.duplicates, 0),
    order_violations: group.reduce((s, me) => s + me.c.outOfOrder, 0),
    cuts: group.reduce((s, me) => s + me.cuts, 0),
    min_cuts_per_client: Math.min(...group.map((me) => me.cuts)),
    reconnects,
    away_ms: away.length ? { p50: away[Math.floor(away.length / 2)], max: away[away.length - 1] } : undefined,
    recovered: group.reduce((s, me) => s + me.recovered, 0),
    socket_id_kept: group.every((me) => me.ids.size === 1),
    unfinished: group.filter((me) => !me.c.marker).map((me) => me.i),
    // Evidence for the first clients that lack something: what (ranges of
    // k, with when each range was sent), and the client's own timeline.
    losses: rows.filter((r) => r.missing.length > 0).slice(0, MAX_LOSSES).map((r) => ({
      client: r.me.i,
      missing: ranges(r.missing),
      missing_count: r.missing.length,
      sent_at_ms: ranges(r.missing).split(', ').map((range) => {
        const [a, b] = range.split('–').map(Number);
        return b === undefined ? `${sentAt[a]}` : `${sentAt[a]}–${sentAt[b]}`;
      }).join(', '),
      timeline: r.me.log,
    })),
    // Evidence for the first clients that got something twice or out of
    // order: each such arrival with the arrivals around it ([ms, k, offset]),
    // and the client's timeline.
    disorder: group.filter((me) => me.c.anomalies.length > 0).slice(0, MAX_LOSSES).map((me) => ({
      client: me.i,
      duplicates: me.c.duplicates,
      out_of_order: me.c.outOfOrder,
      first: [
        ...me.c.anomalies.filter((a) => a.kind === 'duplicate').slice(0, 3),
        ...me.c.anomalies.filter((a) => a.kind !== 'duplicate').slice(0, 3),
      ].map((a) => ({
        ...a,
        t: me.c.arrivals[a.at][0],
        around: me.c.arrivals.slice(Math.max(a.at - 6, 0), a.at + 4),
      })),
      timeline: me.log,
    })),
  };
}

async function main() {
  const total = Math.round((RATE * DURATION_MS) / 1000);
  process.stderr.write(`delivery-under-cuts ${opt.label}: ${CLIENTS} clients${PLAIN ? ` + ${PLAIN} plain` : ''}, ` +
    `${PUBLISH} at ${RATE}/s for ${DURATION_MS / 1000} s (${total} events), cut every ${CUT_EVERY_MS / 1000} s for ${CUT_FOR_MS / 1000} s, ` +
    `${URLS.length} node(s)\n`);

  // The publisher (message) / observer (api) socket: direct, never cut.
  const pc = counter();
  const publisher = io(URLS[0].origin, {
    transports: ['websocket'],
    forceNew: true,
    auth: (cb) => { mint(`cuts-${TAG}-publisher`, `sid-${randomUUID()}`).then((token) => cb({ token })); },
  });
  listen(publisher, pc);
  let publisherDrops = 0;
  publisher.on('disconnect', () => { publisherDrops += 1; });

  const group = [];
  for (let i = 0; i < CLIENTS; i++) group.push(await client(i, OPT_IN));
  const plain = [];
  for (let i = 0; i < PLAIN; i++) plain.push(await client(CLIENTS + i, false));
  const everyone = [...group, ...plain];
  const all = () => everyone.every((me) => me.socket.connected) && publisher.connected;
  if (!(await until(all, CONNECT_WITHIN_MS))) {
    const errors = everyone.flatMap((me) => me.log.filter((e) => e.ev === 'connect_error').map((e) => e.message));
    die(`not every client connected within ${CONNECT_WITHIN_MS} ms: ${[...new Set(errors)].join('; ') || 'no error given'}`);
  }
  await sleep(200);

  T0 = performance.now();
  for (const me of everyone) me.log.push({ t: 0, ev: 'start' });
  const sentAt = [];
  const cutting = everyone.map((me) => cutLoop(me, DURATION_MS));
  const { sent, failures } = await publish(publisher, total, sentAt);
  const publishedIn = now();
  await Promise.all(cutting); // the cuts under way end, plugged in again
  const back = await until(all, CONNECT_WITHIN_MS);
  const markerSent = await marker(publisher);
  await until(() => everyone.every((me) => me.c.marker) && pc.marker, MARKER_WITHIN_MS);

  const report = {
    scenario: 'delivery',
    label: opt.label,
    publish: PUBLISH,
    nodes: URLS.length,
    opted_in: OPT_IN,
    rate_per_sec: RATE,
    duration_s: DURATION_MS / 1000,
    cut_every_s: CUT_EVERY_MS / 1000,
    cut_for_s: CUT_FOR_MS / 1000,
    published_in_ms: publishedIn,
    sent: sent.length,
    publish_failures: failures,
    all_back: back,
    marker_sent: markerSent,
    observer_missing: ranges(sent.filter((k) => !pc.got.has(k))),
    publisher_drops: publisherDrops,
    ...summarize(group, sent, sentAt),
    plain: plain.length ? summarize(plain, sent, sentAt) : undefined,
  };
  for (const me of everyone) {
    me.socket.disconnect();
    me.proxy.close();
  }
  publisher.disconnect();
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}

main().catch((error) => die(error.stack ?? String(error)));
