// The socket-server's server API from Node 20+ (global fetch, no npm
// package), with the key the socket-server holds as api.key.
//   node api.mjs publish TARGET EVENT JSON    e.g. publish user:gonzalo notice '{"text":"hi"}'
//   node api.mjs revoke SID UNTIL             at logout; UNTIL: the exp of the session's last token
//   node api.mjs presence [user:USERNAME]
// Each prints the API's JSON answer; a refusal goes to stderr, exit status 1.
import { pathToFileURL } from "node:url";

// The API's answer, decoded; a refusal (4xx, 5xx) is thrown with its body.
export async function socketApi(method, path, body) {
  const response = await fetch(process.env.SOCKET_URL.replace(/\/$/, "") + path, {
    method,
    headers: {
      Authorization: `Bearer ${process.env.API_KEY}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`socket API ${method} ${path}: ${response.status} ${text}`);
  }
  return JSON.parse(text);
}

// Sends `event` with `data` to a target ("user:NAME", "session:SID",
// "room:NAME", "everyone") or a list of them: {id, sockets}.
export const publish = (to, event, data) => socketApi("POST", "/api/publish", { to, event, data });

// At logout: ends the session's sockets, and refuses its tokens until `until`.
export const revokeSession = (sid, until) =>
  socketApi("POST", "/api/sessions/revoke", { sid, until });

export const presence = (user) =>
  socketApi("GET", "/api/presence" + (user === undefined ? "" : "/" + encodeURIComponent(user)));

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [command, ...args] = process.argv.slice(2);
  try {
    let answer;
    if (command === "publish" && args.length === 3) {
      answer = await publish(args[0], args[1], JSON.parse(args[2]));
    } else if (command === "revoke" && args.length === 2) {
      answer = await revokeSession(args[0], Number(args[1]));
    } else if (command === "presence" && args.length <= 1) {
      answer = await presence(args[0]);
    } else {
      throw new Error("usage: node api.mjs publish TARGET EVENT JSON | revoke SID UNTIL | presence [user:USERNAME]");
    }
    console.log(JSON.stringify(answer));
  } catch (error) {
    console.error(error.message, error.cause?.message ?? "");
    process.exit(1);
  }
}
