// Copies the official socket.io-client browser bundle (installed by `npm ci`,
// pinned by package-lock.json) to dist/, where the web-frontend's build embeds it.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const dist = join(dirname(require.resolve('socket.io-client/package.json')), 'dist');
mkdirSync(join(here, 'dist'), { recursive: true });
for (const file of ['socket.io.min.js', 'socket.io.min.js.map']) {
  copyFileSync(join(dist, file), join(here, 'dist', file));
}
const { version } = require('socket.io-client/package.json');
console.log(`socket.io-client ${version} -> crates/web-frontend/client/dist/socket.io.min.js`);
