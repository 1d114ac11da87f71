// The relay's status page over plain HTTP: GET / from a browser gets the page, a Nostr client's
// GET / still gets NIP-11, a WebSocket upgrade on / still opens a session, and /status.json
// carries the stats the page draws, without user data. status-browser.test.mjs runs the page.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { Client, badSignature, keys, now, relayForFile, sign, tempDir } from './lib/harness.mjs';

// A retention rule for a kind no other test here publishes, checked every second, so that the
// removals show on the status page.
const configDir = tempDir();
const config = path.join(configDir, 'relay.toml');
fs.writeFileSync(config, '[retention]\nmax-age = ["1111: 1h"]\ninterval-seconds = 1\n');
const relay = relayForFile({ args: ['--config', config] });

async function statusJson() {
  const res = await fetch(`${relay.server.httpUrl}/status.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  return res.json();
}

test('GET / gives NIP-11 to a Nostr client and the page to a browser; /status.json has the stats',
     async () => {
  const { server } = relay;
  const nip11 = await fetch(`${server.httpUrl}/`, { headers: { Accept: 'application/nostr+json' } });
  assert.equal(nip11.status, 200);
  assert.equal(nip11.headers.get('content-type'), 'application/nostr+json');
  const info = await nip11.json();
  assert.ok(info.supported_nips.includes(11));
  assert.match(info.software, /relaycore/);

  const page = await fetch(`${server.httpUrl}/`, {
    headers: { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
  });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.match(page.headers.get('content-security-policy'), /default-src 'none'/);
  assert.match(page.headers.get('content-security-policy'), /connect-src 'self'/);
  const html = await page.text();
  assert.match(html, /<canvas id="chart-ingest"/);
  assert.match(html, /fetch\('\/status.json'/);
  // Self-contained: nothing is loaded from another origin.
  assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i);

  // A WebSocket upgrade on / still opens a session; its traffic shows in /status.json.
  const c = await Client.connect(server.url);
  const { sk, pk } = keys();
  const secret = `status page must not show this ${Math.random()}`;
  assert.equal((await c.publish(sign(sk, { content: secret }))).ok, true);
  const refused = await c.publish(badSignature(sign(sk, { content: 'forged' })));
  assert.equal(refused.ok, false);
  assert.match(refused.message, /^invalid:/);
  await c.req('live', { kinds: [1] });

  const doc = await statusJson();
  assert.equal(doc.info.name, info.name);
  assert.ok(Number.isInteger(doc.uptime_ms) && doc.uptime_ms >= 0);
  const s = doc.stats;
  assert.equal(s.frames_event, 2);
  assert.equal(s.events_stored, 1);
  assert.equal(s.sessions_open, 1);
  assert.equal(s.subscriptions_open, 1);
  assert.equal(s.events_delivered, 0);
  assert.equal(s.ack_latency.count, 2);
  for (const key of ['p50_us', 'p90_us', 'p99_us', 'sum_us']) {
    assert.ok(Number.isInteger(s.ack_latency[key]), key);
  }
  assert.equal(s.ack_latency.counts.length, s.ack_latency.bounds_us.length + 1);
  assert.deepEqual(Object.keys(s.refusals),
                   ['invalid', 'pow', 'duplicate', 'blocked', 'rate-limited', 'restricted', 'mute',
                    'auth-required', 'error', 'other']);
  assert.equal(s.refusals.invalid, 1);
  // The relay samples once a second for the charts: the publishing and then the open
  // subscription show in its history.
  let history = doc.history;
  while (!history.ingest_per_s.some((v) => v > 0) || history.subscriptions.at(-1) !== 1) {
    await new Promise((r) => setTimeout(r, 100));
    history = (await statusJson()).history;
  }
  assert.equal(history.interval_ms, 1000);
  const columns = ['uptime_ms', 'ingest_per_s', 'ok_p50_ms', 'ok_p99_ms', 'connections',
                   'subscriptions', 'deliveries_per_s'];
  assert.deepEqual(Object.keys(history), ['interval_ms', ...columns]);
  for (const column of columns) assert.equal(history[column].length, history.uptime_ms.length);
  const i = history.ingest_per_s.findIndex((v) => v > 0);
  assert.ok(history.ok_p50_ms[i] > 0 && history.ok_p99_ms[i] >= history.ok_p50_ms[i]);
  assert.equal(history.connections.at(-1), 1);

  // Counters only: no event content, no client key, no address.
  const text = JSON.stringify(doc);
  assert.ok(!text.includes(secret));
  assert.ok(!text.includes(pk));
  assert.ok(!text.includes('127.0.0.1'));
  await c.close();
});

test('the status page shows retention removals by rule', async () => {
  const html = await (await fetch(`${relay.server.httpUrl}/`, {
    headers: { Accept: 'text/html' },
  })).text();
  for (const id of ['retention-max-age', 'retention-max-per-author', 'retention-max-bytes',
                    'retention-removed']) {
    assert.match(html, new RegExp(`id="${id}"`));
  }
  const before = (await statusJson()).stats;
  assert.equal(before.retention_removed, 0);

  const c = await Client.connect(relay.server.url);
  const { sk } = keys();
  const aged = sign(sk, { kind: 1111, content: 'two hours old', created_at: now() - 7200 });
  const young = sign(sk, { kind: 1111, content: 'a minute old', created_at: now() - 60 });
  assert.equal((await c.publish(aged)).ok, true);
  assert.equal((await c.publish(young)).ok, true);
  // The next check, a second at most after the publishing, removes the aged event.
  let s = (await statusJson()).stats;
  while (s.retention_removed === 0) {
    await new Promise((r) => setTimeout(r, 100));
    s = (await statusJson()).stats;
  }
  assert.equal(s.retention_removed, 1);
  assert.equal(s.retention_removed_max_age, 1);
  assert.equal(s.retention_removed_max_per_author, 0);
  assert.equal(s.retention_removed_max_bytes, 0);
  const left = await c.query({ kinds: [1111] });
  assert.deepEqual(left.map((e) => e.id), [young.id]);
  await c.close();
  fs.rmSync(configDir, { recursive: true, force: true });
});
