// A real browser against relaycore-relay: Debian's Chromium, driven by playwright-core (which
// never downloads a browser here), opens examples/web/index.html, which signs a note with
// nostr-tools' browser bundle, publishes it, subscribes and shows it when it comes back. The
// screenshot is kept in $RELAYCORE_ARTIFACTS/browser.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchChromium, skipWithoutChromium as skip } from './lib/browser.mjs';
import { Client, RelayServer, artifactsDir } from './lib/harness.mjs';
import { bundle, startWebServer } from './lib/web-server.mjs';

let server;
let web;
let webUrl;

before(async () => {
  if (skip) return;
  server = await RelayServer.start();
  web = await startWebServer();
  webUrl = `http://127.0.0.1:${web.address().port}`;
});

after(async () => {
  if (web) {
    web.closeAllConnections();
    await new Promise((r) => web.close(r));
  }
  if (server) {
    const { code } = await server.stop();
    server.cleanup();
    assert.equal(code, 0, server.output);
  }
});

test('Chromium publishes a note signed in the page and shows it when it comes back',
     { skip, timeout: 60000 }, async (t) => {
  assert.ok(fs.existsSync(bundle), 'nostr-tools is not installed: run scripts/install-deps');
  const browser = await launchChromium();
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
