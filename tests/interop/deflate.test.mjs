// permessage-deflate against real clients: the ws package and Chromium both negotiate it with
// relaycore-relay (the Sec-WebSocket-Extensions answer is checked, not assumed), publish and
// read back through it; --permessage-deflate off turns it off. It also measures what a REQ
// streaming 500 typical notes costs on the wire with and without compression, and the relay's
// CPU time for it, which benchmarks/README.md reports.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';
import { Client, RelayServer, keys, signer } from './lib/harness.mjs';

const kNotes = 500;
const kWords = ('the relay note nostr today people think really good time new just like some ' +
  'more about what when world know would could love zap great morning coffee build ship code ' +
  'open source protocol client key sign post reply thread follow friends music photo sunset ' +
  'bitcoin lightning wallet node privacy freedom speech censorship decentralized community ' +
  'weekend hiking mountain city train book reading writing learning design simple fast').split(' ');

let server;
let authors;
let published = 0;

// Notes as people write them: a sentence or three, a reply or mention tag now and then, a
// hashtag; fifty authors.
function typicalNotes(sign, n) {
  const out = [];
  let seed = 7;
  const rand = (k) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % k;
  };
  for (let i = 0; i < n; ++i) {
    const { sk } = authors[rand(authors.length)];
    const words = Array.from({ length: 8 + rand(50) }, () => kWords[rand(kWords.length)]);
    const tags = [];
    if (rand(2) === 0) tags.push(['p', authors[rand(authors.length)].pk]);
    if (rand(3) === 0) tags.push(['t', kWords[rand(kWords.length)]]);
    out.push(sign(sk, { content: words.join(' '), tags, created_at: 1700000000 + i }));
  }
  return out;
}

// Bytes the relay's answers took on the socket while `fn` ran.
async function wireBytes(client, fn) {
  const before = client.ws._socket.bytesRead;
  const result = await fn();
  return { bytes: client.ws._socket.bytesRead - before, result };
}

// The relay's user plus system CPU time so far, in seconds.
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;  // utime, stime at USER_HZ 100
}

before(async () => {
  server = await RelayServer.start();
  authors = Array.from({ length: 50 }, () => keys());
});

after(async () => {
  if (server) {
    const { code } = await server.stop();
    server.cleanup();
    assert.equal(code, 0, server.output);
  }
});

// A ws client; `perMessageDeflate` as ws takes it (false: no offer).
function wsConnect(url, perMessageDeflate) {
  return Client.connect(url, { perMessageDeflate });
}

test('ws negotiates permessage-deflate, and publishes and reads back through it', async () => {
  const sign = await signer();
  const c = await wsConnect(server.url, { threshold: 0 });
  try {
    assert.match(c.ws.extensions, /permessage-deflate/);
    const answer = c.upgradeHeaders['sec-websocket-extensions'];
    assert.equal(answer, 'permessage-deflate; client_no_context_takeover');
    // threshold 0: ws compresses every EVENT it sends, so the relay inflates them all.
    for (const ev of typicalNotes(sign, kNotes)) {
      const { ok, message } = await c.publish(ev);
      assert.ok(ok, message);
      ++published;
    }
    const back = await c.query({ kinds: [1], limit: kNotes });
    assert.equal(back.length, kNotes);
  } finally {
    await c.close();
  }
});

test('a REQ of 500 typical notes takes at most 40% of its bytes on the wire', async (t) => {
  assert.equal(published, kNotes);
  const plain = await wsConnect(server.url, false);
  const packed = await wsConnect(server.url, true);
  try {
    assert.equal(plain.upgradeHeaders['sec-websocket-extensions'], undefined);
    const rounds = 10;
    let plainBytes = 0, packedBytes = 0, plainCpu = 0, packedCpu = 0;
    for (let i = 0; i < rounds; ++i) {
      let cpu = cpuSeconds(server.pid);
      const p = await wireBytes(plain, () => plain.query({ kinds: [1], limit: kNotes }));
      plainCpu += cpuSeconds(server.pid) - cpu;
      cpu = cpuSeconds(server.pid);
      const z = await wireBytes(packed, () => packed.query({ kinds: [1], limit: kNotes }));
      packedCpu += cpuSeconds(server.pid) - cpu;
      assert.equal(p.result.length, kNotes);
      assert.deepEqual(z.result, p.result);
      plainBytes += p.bytes;
      packedBytes += z.bytes;
    }
    const ratio = packedBytes / plainBytes;
    const mb = plainBytes / 1e6;
    t.diagnostic(`REQ of ${kNotes} notes: ${plainBytes / rounds} bytes plain, ` +
                 `${packedBytes / rounds} compressed (${(100 * ratio).toFixed(1)}%)`);
    t.diagnostic(`relay CPU: ${(1000 * plainCpu / rounds).toFixed(1)} ms plain, ` +
                 `${(1000 * packedCpu / rounds).toFixed(1)} ms compressed per REQ; ` +
                 `${(1000 * (packedCpu - plainCpu) / mb).toFixed(1)} ms per MB compressed`);
    assert.ok(ratio <= 0.40, `compressed REQ stream is ${(100 * ratio).toFixed(1)}% of plain`);
  } finally {
    await plain.close();
    await packed.close();
  }
});

test('--permessage-deflate off declines the offer', async () => {
  const off = await RelayServer.start({ args: ['--permessage-deflate', 'off'] });
  try {
    const c = await wsConnect(off.url, true);
    assert.equal(c.upgradeHeaders['sec-websocket-extensions'], undefined);
    assert.equal(c.ws.extensions, '');
    const back = await c.query({ kinds: [1], limit: 1 });
    assert.equal(back.length, 0);
    await c.close();
  } finally {
    const { code } = await off.stop();
    off.cleanup();
    assert.equal(code, 0, off.output);
  }
});

test('Chromium negotiates permessage-deflate and reads a REQ through it',
     { skip: skipWithoutChromium, timeout: 60000 }, async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const got = await page.evaluate((url) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let events = 0;
      ws.onerror = () => reject(new Error('WebSocket error'));
      ws.onopen = () => ws.send(JSON.stringify(['REQ', 'b', { kinds: [1], limit: 500 }]));
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        if (msg[0] === 'EVENT') ++events;
        if (msg[0] === 'EOSE') {
          resolve({ extensions: ws.extensions, events });
          ws.close();
        }
      };
    }), server.url);
    assert.equal(got.extensions, 'permessage-deflate; client_no_context_takeover');
    assert.equal(got.events, published);
  } finally {
    await browser.close();
  }
});
