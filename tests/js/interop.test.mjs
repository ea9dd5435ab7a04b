// Interop with another JWT library: tokens made by `jose` (npm) with our key
// pair are accepted by our socket-server, and jose accepts the web-frontend's
// tokens through its JWK Set. See README.md.
//
// Inputs (environment), for each PREFIX in EDDSA and ES256 (one running pair of
// services per algorithm, the web-frontend signing with a key pair):
//   {PREFIX}_SOCKET_URL        the socket server, e.g. http://127.0.0.1:41234
//   {PREFIX}_WEB_URL           the web-frontend (serves /.well-known/jwks.json)
//   {PREFIX}_PRIVATE_KEY_FILE  the web-frontend's signing key (PKCS#8 PEM)
//   {PREFIX}_PUBLIC_KEY_FILE   its public key (SPKI PEM)
//   {PREFIX}_TOKEN             a token the web-frontend issued to TOKEN_USER
// and
//   TOKEN_USER                 the username of the {PREFIX}_TOKEN tokens
//   HS256_SOCKET_URL           a socket server with the shared secret (HS256)
//   HS256_SECRET               that secret
import { describe, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';
import * as jose from 'jose';

const ALGORITHMS = [
  { alg: 'EdDSA', prefix: 'EDDSA' },
  { alg: 'ES256', prefix: 'ES256' },
];
const PER_ALGORITHM = ['SOCKET_URL', 'WEB_URL', 'PRIVATE_KEY_FILE', 'PUBLIC_KEY_FILE', 'TOKEN'];
const REQUIRED = [
  ...ALGORITHMS.flatMap(({ prefix }) => PER_ALGORITHM.map((name) => `${prefix}_${name}`)),
  'TOKEN_USER', 'HS256_SOCKET_URL', 'HS256_SECRET',
];
const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length) {
  throw new Error(`interop.test.mjs: missing environment variable(s): ${missing.join(', ')}`);
}
const env = (prefix, name) => process.env[`${prefix}_${name}`];
const { TOKEN_USER, HS256_SOCKET_URL, HS256_SECRET } = process.env;

const ISSUER = 'web-frontend';
const AUDIENCE = 'socket-server';
const NOT_VALID = 'not valid token';

const DEADLINE_MS = 10_000; // hard deadline of every test and hook
const WAIT_MS = 5_000; // one awaited event or HTTP request
const opts = { timeout: DEADLINE_MS };

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
  return {
    // A socket.io-client 4.x socket offering `token` in the handshake's auth.
    connect(url, token) {
      const s = io(url, {
        forceNew: true, reconnection: false, timeout: WAIT_MS, transports: ['websocket'], auth: { token },
      });
      sockets.add(s);
      return s;
    },
    // Resolves with {welcome: data} or {refused: message}, whichever comes first.
    outcome(socket, ms = WAIT_MS) {
      const promise = new Promise((resolve, reject) => {
        const done = (fn, value) => {
          clearTimeout(timer);
          socket.off('welcome', onWelcome);
          socket.off('connect_error', onRefused);
          ended.signal.removeEventListener('abort', onAbort);
          fn(value);
        };
        const onWelcome = (data) => done(resolve, { welcome: data });
        const onRefused = (err) => done(resolve, { refused: err?.message ?? String(err) });
        const onAbort = () => done(reject, ended.signal.reason);
        const timer = setTimeout(() => done(reject, new Error(`neither 'welcome' nor 'connect_error' within ${ms} ms`)), ms);
        socket.on('welcome', onWelcome);
        socket.on('connect_error', onRefused);
        ended.signal.addEventListener('abort', onAbort);
      });
      promise.catch(() => {});
      return promise;
    },
  };
}

async function expectWelcome(h, url, token, username, what) {
  const res = await h.outcome(h.connect(url, token));
  assert.deepEqual(res, { welcome: { username } }, `${what}: expected welcome`);
}

async function expectRefused(h, url, token, what) {
  const res = await h.outcome(h.connect(url, token));
  assert.deepEqual(res, { refused: NOT_VALID }, `${what}: expected refusal '${NOT_VALID}'`);
}

// A token with the claims the web-frontend issues, made by jose.
function sign(key, header, username) {
  return new jose.SignJWT({ user: { username }, sid: randomUUID() })
    .setProtectedHeader(header)
    .setSubject(username)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti(randomUUID())
    .sign(key);
}

// ES256 (P-256) signatures: s above n/2 is as valid as its low twin; a verifier
// that insisted on low s would refuse about half of other libraries' tokens.
const P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n;
function highS(token) {
  const signature = jose.base64url.decode(token.split('.')[2]);
  assert.equal(signature.length, 64, 'an ES256 signature is r || s, 32 bytes each');
  const s = BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`);
  return s > P256_N / 2n;
}

// [label, token] pairs. EdDSA signatures are deterministic: one token. ES256:
// one token with a low s and one with a high s (ECDSA signatures are
// randomized: sign until both turn up).
async function signedVariants(alg, signOnce) {
  if (alg !== 'ES256') return [['', await signOnce()]];
  const found = new Map();
  for (let i = 0; i < 64 && found.size < 2; i += 1) {
    const token = await signOnce();
    const key = highS(token) ? 'high s' : 'low s';
    if (!found.has(key)) found.set(key, token);
  }
  assert.equal(found.size, 2, 'a low-s and a high-s signature within 64 tries');
  return [...found];
}

for (const { alg, prefix } of ALGORITHMS) {
  const SOCKET_URL = env(prefix, 'SOCKET_URL');
  const WEB_URL = env(prefix, 'WEB_URL');
  const OUR_TOKEN = env(prefix, 'TOKEN');
  const JWKS_URL = new URL('/.well-known/jwks.json', WEB_URL);

  describe(`${alg}`, () => {
    let privateKey; // our private key, imported by jose
    let publicKey; // our public key, imported by jose
    let kid; // its RFC 7638 thumbprint, as jose computes it

    before(async () => {
      privateKey = await jose.importPKCS8(await readFile(env(prefix, 'PRIVATE_KEY_FILE'), 'utf8'), alg);
      publicKey = await jose.importSPKI(await readFile(env(prefix, 'PUBLIC_KEY_FILE'), 'utf8'), alg, { extractable: true });
      kid = await jose.calculateJwkThumbprint(await jose.exportJWK(publicKey), 'sha256');
    }, opts);

    test(`${alg}: jose signs with our private key, kid = thumbprint -> welcome`, opts, async (t) => {
      const h = harness(t);
      const username = `jose-${alg}-kid`;
      const tokens = await signedVariants(alg, () => sign(privateKey, { alg, typ: 'JWT', kid }, username));
      for (const [what, token] of tokens) {
        assert.deepEqual(jose.decodeProtectedHeader(token), { alg, typ: 'JWT', kid });
        await expectWelcome(h, SOCKET_URL, token, username, `${alg} with kid ${what}`);
      }
    });

    test(`${alg}: jose signs with our private key, no kid -> welcome`, opts, async (t) => {
      const h = harness(t);
      const username = `jose-${alg}-no-kid`;
      const token = await sign(privateKey, { alg, typ: 'JWT' }, username);
      assert.deepEqual(jose.decodeProtectedHeader(token), { alg, typ: 'JWT' }, 'no kid in the header');
      await expectWelcome(h, SOCKET_URL, token, username, `${alg} without kid`);
    });

    test(`${alg}: jose signs with a key pair of its own -> connect_error '${NOT_VALID}'`, opts, async (t) => {
      const h = harness(t);
      const username = `jose-${alg}-stranger`;
      const stranger = await jose.generateKeyPair(alg, { extractable: true });
      const strangerKid = await jose.calculateJwkThumbprint(await jose.exportJWK(stranger.publicKey), 'sha256');
      assert.notEqual(strangerKid, kid, 'a key pair of its own');
      for (const [what, header] of [
        ['naming our kid', { alg, typ: 'JWT', kid }],
        ['naming its own kid', { alg, typ: 'JWT', kid: strangerKid }],
        ['without kid', { alg, typ: 'JWT' }],
      ]) {
        const token = await sign(stranger.privateKey, header, username);
        await expectRefused(h, SOCKET_URL, token, `${alg} stranger ${what}`);
      }
    });

    test(`${alg}: jose verifies our token with our JWK Set`, opts, async () => {
      const header = jose.decodeProtectedHeader(OUR_TOKEN);
      assert.deepEqual(header, { alg, typ: 'JWT', kid }, 'our header, kid = the thumbprint jose computes');

      const jwks = jose.createRemoteJWKSet(JWKS_URL, { timeoutDuration: WAIT_MS });
      const { payload, protectedHeader } = await jose.jwtVerify(OUR_TOKEN, jwks, {
        issuer: ISSUER, audience: AUDIENCE, algorithms: [alg],
      });
      assert.deepEqual(protectedHeader, header);
      assert.equal(payload.sub, TOKEN_USER);
      assert.deepEqual(payload.user, { username: TOKEN_USER });
      assert.equal(typeof payload.sid, 'string');
      assert.equal(typeof payload.jti, 'string');

      // The thumbprint jose computes for the set's key is the token's kid.
      const response = await fetch(JWKS_URL, { signal: AbortSignal.timeout(WAIT_MS) });
      assert.equal(response.status, 200);
      const set = await response.json();
      assert.equal(set.keys?.length, 1, `one key in ${JSON.stringify(set)}`);
      assert.equal(await jose.calculateJwkThumbprint(set.keys[0], 'sha256'), header.kid);
      assert.equal(set.keys[0].kid, header.kid);

      // And with the public key PEM alone (no JWK Set), the same.
      const direct = await jose.jwtVerify(OUR_TOKEN, publicKey, {
        issuer: ISSUER, audience: AUDIENCE, algorithms: [alg],
      });
      assert.equal(direct.payload.sub, TOKEN_USER);
    });
  });
}

describe('HS256', () => {
  test('HS256: jose signs with the shared secret -> welcome', opts, async (t) => {
    const h = harness(t);
    const username = 'jose-HS256';
    const token = await sign(new TextEncoder().encode(HS256_SECRET), { alg: 'HS256', typ: 'JWT' }, username);
    assert.deepEqual(jose.decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT' });
    await expectWelcome(h, HS256_SOCKET_URL, token, username, 'HS256');
  });

  test(`HS256: jose signs with another secret -> connect_error '${NOT_VALID}'`, opts, async (t) => {
    const h = harness(t);
    const other = new TextEncoder().encode(`not-${HS256_SECRET}`);
    const token = await sign(other, { alg: 'HS256', typ: 'JWT' }, 'jose-HS256');
    await expectRefused(h, HS256_SOCKET_URL, token, 'HS256 with another secret');
  });
});
