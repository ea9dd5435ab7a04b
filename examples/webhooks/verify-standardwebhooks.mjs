// The same receiver with the official Standard Webhooks library for Node
// (`npm install standardwebhooks`), which takes the key as "whsec_" and the
// base64 of the secret's bytes.
//
//   WEBHOOK_SECRET='the value of webhooks.secret' PORT=8000 node verify-standardwebhooks.mjs
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const key = `whsec_${Buffer.from(process.env.WEBHOOK_SECRET).toString("base64")}`;
const webhook = new Webhook(key);

const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let event;
    try {
      // The signature, and the timestamp within 5 minutes either way.
      event = webhook.verify(Buffer.concat(chunks), request.headers);
    } catch (error) {
      response.writeHead(400).end(error.message); // not 2xx: tried again later
      return;
    }
    const id = request.headers["webhook-id"];
    console.log(JSON.stringify({ id, type: event.type, user: event.data.user }));
    response.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT ?? 8000), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
