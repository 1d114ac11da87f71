// The relay's status page in Debian's Chromium (playwright-core): the page loads from the relay
// alone, and while clients publish and subscribe its charts must show that traffic. The
// screenshot is kept in $RELAYCORE_ARTIFACTS/status.png.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { launchChromium, skipWithoutChromium as skip } from './lib/browser.mjs';
import { Client, artifactsDir, badSignature, keys, relayForFile, sign } from './lib/harness.mjs';

const relay = relayForFile({ skip });

test('Chromium shows live charts of the traffic, loading nothing from elsewhere',
     { skip, timeout: 90000 }, async (t) => {
  const { server } = relay;
  const browser = await launchChromium();
  const clients = [];
  let publishing = true;
  let publisher;
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    const requests = [];
    page.on('request', (req) => requests.push(req.url()));
    await page.goto(`${server.httpUrl}/`);
    await page.waitForFunction(() => document.body.dataset.state === 'live', null,
                               { timeout: 10000 });
    assert.match(await page.locator('#name').textContent(), /\S/);
    assert.match(await page.locator('#software').textContent(), /relaycore/);

    // Two subscribers with a live subscription each, and a publisher that keeps publishing
    // (with one forged event, refused as invalid) until the charts show it.
    for (let i = 0; i < 2; ++i) {
      const c = await Client.connect(server.url);
      await c.req(`sub${i}`, { kinds: [1] });
      clients.push(c);
    }
    const pub = await Client.connect(server.url);
    clients.push(pub);
    const { sk } = keys();
    assert.equal((await pub.publish(badSignature(sign(sk, { content: 'forged' })))).ok, false);
    publisher = (async () => {
      let n = 0;
      while (publishing) {
        const ok = await pub.publish(sign(sk, { content: `traffic ${n++}` }));
        assert.equal(ok.ok, true, ok.message);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const chartHasData = (id) => page.waitForFunction((chartId) => {
      const c = document.getElementById(chartId);
      return Number(c.dataset.points) > 0 && Number(c.dataset.max) > 0;
    }, id, { timeout: 20000 });
    for (const id of ['chart-ingest', 'chart-latency', 'chart-connections', 'chart-subscriptions',
                      'chart-deliveries']) {
      await chartHasData(id);
    }
    await page.waitForFunction(() => Number(document.body.dataset.samples) >= 5, null,
                               { timeout: 20000 });
    publishing = false;
    await publisher;

    assert.ok(Number(await page.locator('#chart-connections').getAttribute('data-max')) >= 3);
    assert.ok(Number(await page.locator('#chart-subscriptions').getAttribute('data-max')) >= 2);
    assert.equal(await page.locator('#refusals tr[data-prefix="invalid"] td.n').textContent(),
                 '1');
    assert.ok(Number(await page.locator('#events-stored').textContent()) > 0);
    // No retention rule here: the removals by rule read 0, filled from the stats.
    for (const id of ['retention-max-age', 'retention-max-per-author', 'retention-max-bytes',
                      'retention-removed']) {
      assert.equal(await page.locator(`#${id}`).textContent(), '0', id);
    }
    // The ingest line is really drawn: pixels of its colour on the canvas.
    const linePixels = await page.evaluate(() => {
      const canvas = document.getElementById('chart-ingest');
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i] === 0x1f && data[i + 1] === 0x77 && data[i + 2] === 0xb4 && data[i + 3] === 255) {
          ++n;
        }
      }
      return n;
    });
    assert.ok(linePixels > 20, `ingest chart has ${linePixels} pixels of its line colour`);

    const shot = path.join(artifactsDir(), 'status.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    assert.deepEqual(errors, []);
    const origin = new URL(server.httpUrl).origin;
    const elsewhere = requests.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin);
    assert.deepEqual(elsewhere, []);
    assert.ok(requests.filter((u) => u === `${origin}/status.json`).length >= 3);
  } finally {
    publishing = false;
    await publisher?.catch(() => {});
    for (const c of clients) await c.close();
    await browser.close();
  }
});
