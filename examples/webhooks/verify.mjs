// A receiver of authbridge's presence webhooks: it checks each request as the
// Standard Webhooks specification says, then handles the event.
//
//   WEBHOOK_SECRET='the value of webhooks.secret' PORT=8000 node verify.mjs
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const TOLERANCE = 5 * 60; // seconds: an older (or newer) signature is a replay

/** The event, if the request is authentic and recent; throws otherwise. */
export function verifyWebhook(secret, headers, body) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!secret || !id || !timestamp || !signatures) {
    throw new Error("missing webhook headers (or secret)");
  }
  const age = Date.now() / 1000 - Number(timestamp);
  if (!/^[0-9]+$/.test(timestamp) || Math.abs(age) > TOLERANCE) {
    throw new Error("timestamp too old or too new");
  }
  const hmac = createHmac("sha256", secret).update(`${id}.${timestamp}.`).update(body);
  const expected = Buffer.from(`v1,${hmac.digest("base64")}`);
  // A space-separated list of "v1,SIGNATURE": one match is enough.
  for (const signature of signatures.split(" ").map((given) => Buffer.from(given))) {
    if (signature.length === expected.length && timingSafeEqual(signature, expected)) {
      return JSON.parse(body);
    }
  }
  throw new Error("no valid signature");
}

const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let event;
    try {
      // The raw bytes, as they were signed (not a re-serialized object).
      event = verifyWebhook(process.env.WEBHOOK_SECRET, request.headers, Buffer.concat(chunks));
    } catch (error) {
      response.writeHead(400).end(error.message); // not 2xx: tried again later
      return;
    }
    // event.type is "user.online" or "user.offline", event.data.user the
    // username. An event may come twice (at least once): skip a webhook-id
    // already handled. Answer within 10 s; queue slow work.
    const id = request.headers["webhook-id"];
    console.log(JSON.stringify({ id, type: event.type, user: event.data.user }));
    response.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT ?? 8000), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
