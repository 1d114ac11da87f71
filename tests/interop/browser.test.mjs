// A real browser against relaycore-relay: Debian's Chromium, driven by playwright-core (which
// never downloads a browser here), opens examples/web/index.html, which signs a note with
// nostr-tools' browser bundle, publishes it, subscribes and shows it when it comes back. The
// screenshot is kept in $RELAYCORE_ARTIFACTS/browser.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { Client, RelayServer, artifactsDir } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const webRoot = path.resolve(here, '../../examples/web');
const bundle = path.join(here, 'node_modules/nostr-tools/lib/nostr.bundle.js');
const chromiumPath = process.env.RELAYCORE_CHROMIUM || '/usr/bin/chromium';
const haveChromium = fs.existsSync(chromiumPath);
const skip = !haveChromium && !process.env.CI
  ? `${chromiumPath} is not installed (run scripts/install-deps); skipped outside CI`
  : false;

let server;
let web;
let webUrl;

// A tiny static server for examples/web, plus nostr-tools' browser bundle at /vendor/.
function startWebServer() {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    let file;
    if (url.pathname === '/vendor/nostr.bundle.js') file = bundle;
    else if (url.pathname === '/') file = path.join(webRoot, 'index.html');
    else if (/^\/[\w.-]+$/.test(url.pathname)) file = path.join(webRoot, url.pathname.slice(1));
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

before(async () => {
  if (skip) return;
  server = await RelayServer.start();
  web = await startWebServer();
  webUrl = `http://127.0.0.1:${web.address().port}`;
});

after(async () => {
  if (web) await new Promise((r) => web.close(r));
  if (server) {
    const { code } = await server.stop();
    server.cleanup();
    assert.equal(code, 0, server.output);
  }
});

test('Chromium publishes a note signed in the page and shows it when it comes back',
     { skip, timeout: 60000 }, async (t) => {
  assert.ok(haveChromium, `${chromiumPath} is missing: scripts/install-deps installs chromium`);
  assert.ok(fs.existsSync(bundle), 'nostr-tools is not installed: run scripts/install-deps');
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    const errors = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    const text = `hello relaycore from Chromium ${Date.now()}`;
    await page.goto(`${webUrl}/?relay=${encodeURIComponent(server.url)}` +
                    `&text=${encodeURIComponent(text)}`);
    const note = page.locator('#received .note .content');
    await note.first().waitFor({ timeout: 20000 });
    assert.equal(await note.first().textContent(), text);
    await page.waitForFunction(() => document.body.dataset.state === 'received', null,
                               { timeout: 10000 });
    // NIP-11 fetched cross-origin from the page (the relay's CORS headers at work).
    await page.waitForFunction(() => /relaycore/.test(document.getElementById('relay-name')
                                                      .textContent), null, { timeout: 10000 });
    const pubkey = (await page.locator('#pubkey').textContent()).trim();
    const shot = path.join(artifactsDir(), 'browser.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    assert.deepEqual(errors, []);

    // The relay really stored it, as the page's key signed it.
    const c = await Client.connect(server.url);
    const stored = await c.query({ authors: [pubkey] });
    await c.close();
    assert.equal(stored.length, 1);
    assert.equal(stored[0].content, text);
    assert.deepEqual(stored[0].tags, [['client', 'relaycore-web']]);
  } finally {
    await browser.close();
  }
});
