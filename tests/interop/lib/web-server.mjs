// A tiny static server for examples/web, with nostr-tools' browser bundle at
// /vendor/nostr.bundle.js. Used by browser.test.mjs; also runnable by hand:
//   node tests/interop/lib/web-server.mjs [PORT]   then open http://127.0.0.1:PORT/?relay=ws://...
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const webRoot = path.resolve(here, '../../../examples/web');
export const bundle = path.resolve(here, '../node_modules/nostr-tools/lib/nostr.bundle.js');

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

// Resolves the listening http.Server (loopback only).
export function startWebServer(port = 0) {
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    let file;
    if (url.pathname === '/vendor/nostr.bundle.js') file = bundle;
    else if (url.pathname === '/') file = path.join(webRoot, 'index.html');
    else if (/^\/[\w-]+(\.[\w-]+)*$/.test(url.pathname)) file = path.join(webRoot, url.pathname.slice(1));
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const srv = await startWebServer(Number(process.argv[2] || 8080));
  console.log(`serving examples/web on http://127.0.0.1:${srv.address().port}/` +
              '?relay=ws://127.0.0.1:7777');
}
