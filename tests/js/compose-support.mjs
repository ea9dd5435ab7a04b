// What the compose suites (compose, compose-scale, compose-asymmetric) share:
// a login through the published port, a token fetch, and one awaited event.
import assert from 'node:assert/strict';

/** Logs in at `base` with the form (same-origin, as the page does); the session cookie. */
export async function logIn(base, username = 'gonzalo', password = 'password') {
  const response = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: base },
    body: new URLSearchParams({ username, password }),
  });
  assert.equal(response.status, 303, `login through ${base} redirects`);
  const cookie = response.headers.get('set-cookie');
  assert.ok(cookie, 'a session cookie');
  return cookie.split(';')[0];
}

/** A token for the session at `base`, and the node that issued it (a load balancer's X-Upstream). */
export async function fetchToken(base, cookie) {
  const response = await fetch(`${base}/getIoConnectionToken`, { headers: { cookie } });
  assert.equal(response.status, 200, `a token from ${base}`);
  return { token: await response.json(), upstream: response.headers.get('x-upstream') };
}

/** The next `event` on `socket`; rejects after `ms`. */
export function nextEvent(socket, event, ms = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    socket.once(event, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}
