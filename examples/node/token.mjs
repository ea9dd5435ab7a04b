// A socket token for a logged-in user, made by the Node application itself:
// HS256 with the key the socket-server holds as jwt.secret (node:crypto only).
//   JWT_SECRET=… node token.mjs USERNAME SID      prints the token
import { createHmac, randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";

// A new login session id: make one at login, keep it in the session and put
// it in every token of that login.
export function newSessionId() {
  return randomBytes(16).toString("hex");
}

const base64url = (data) => Buffer.from(data).toString("base64url");

// ttl: at most the socket-server's jwt.ttl_secs (300 by default).
export function socketToken(username, sid, ttl = 300) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "HS256", typ: "JWT" };
  const claims = {
    sub: username,
    user: { username },
    iat: now,
    exp: now + ttl,
    iss: process.env.JWT_ISSUER ?? "web-frontend", // jwt.issuer
    aud: process.env.JWT_AUDIENCE ?? "socket-server", // jwt.audience
    sid,
    jti: randomBytes(16).toString("hex"),
  };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createHmac("sha256", process.env.JWT_SECRET).update(input).digest();
  return `${input}.${base64url(signature)}`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.length !== 4 || !process.env.JWT_SECRET) {
    console.error("usage: JWT_SECRET=… node token.mjs USERNAME SID");
    process.exit(2);
  }
  console.log(socketToken(process.argv[2], process.argv[3]));
}
