// NIP-01 and friends against the real relaycore-relay binary, over real WebSockets, with events
// signed by nostr-tools: publishing, every filter field, live delivery, CLOSE, replaceable,
// addressable and ephemeral kinds, NIP-09 deletion, NIP-40 expiration, NIP-45 COUNT, NIP-11,
// /metrics, reconnects and a restart on the same database.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';
import { verifyEvent } from 'nostr-tools/pure';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';

import {
  Client, RelayServer, badSignature, keys, now, sign, signer, sleep,
} from './lib/harness.mjs';

useWebSocketImplementation(WebSocket);

let server;
let client;

before(async () => {
  server = await RelayServer.start();
  client = await Client.connect(server.url);
});

after(async () => {
  if (client) await client.close();
  if (server) {
    const { code, signal } = await server.stop();
    server.cleanup();
    assert.equal(signal, null, `relay killed by ${signal}:\n${server.output}`);
    assert.equal(code, 0, `relay exit status after SIGTERM:\n${server.output}`);
  }
});

const ids = (events) => events.map((e) => e.id).sort();

describe('publishing', () => {
  test('a signed event gets OK true, and comes back byte-for-byte verifiable', async () => {
    const { sk } = keys();
    const ev = sign(sk, { content: 'hello from nostr-tools', tags: [['t', 'interop']] });
    const res = await client.publish(ev);
    assert.deepEqual(res, { ok: true, message: '' });
    const [got] = await client.query({ ids: [ev.id] });
    assert.ok(got, 'event not found by id');
    assert.equal(got.id, ev.id);
    assert.equal(got.sig, ev.sig);
    assert.deepEqual(got.tags, ev.tags);
    assert.equal(got.content, ev.content);
    assert.ok(verifyEvent({ ...got }), 'nostr-tools verifyEvent fails on the stored event');
  });

  test('a duplicate gets OK true with "duplicate:"', async () => {
    const { sk } = keys();
    const ev = sign(sk, { content: 'twice' });
    assert.equal((await client.publish(ev)).ok, true);
    const again = await client.publish(ev);
    assert.equal(again.ok, true);
    assert.match(again.message, /^duplicate:/);
  });

  test('a bad signature gets OK false with "invalid:" and is not stored', async () => {
    const { sk } = keys();
    const ev = sign(sk, { content: 'tampered signature' });
    const res = await client.publish(badSignature(ev));
    assert.equal(res.ok, false);
    assert.match(res.message, /^invalid:/);
    assert.deepEqual(await client.query({ ids: [ev.id] }), []);
  });

  test('a wrong id gets OK false with "invalid:"', async () => {
    const { sk } = keys();
    const ev = sign(sk, { content: 'original' });
    const res = await client.publish({ ...ev, content: 'edited after signing' });
    assert.equal(res.ok, false);
    assert.match(res.message, /^invalid:/);
  });

  // Every EVENT gets exactly one OK: an upper-case id is refused under the id as sent.
  test('an upper-case hex id gets OK false "invalid:" under that id', async () => {
    const ev = sign(keys().sk, { content: 'shouting id' });
    const upper = ev.id.toUpperCase();
    const c = await Client.connect(server.url);
    try {
      const res = await c.publish({ ...ev, id: upper }, { timeoutMs: 1500 });
      assert.equal(res.ok, false);
      assert.match(res.message, /^invalid:/);
    } finally {
      await c.close();
    }
  });

  test('nostr-tools Relay publishes and subscribes', async () => {
    const relay = await Relay.connect(server.url);
    try {
      const { sk, pk } = keys();
      const ev = sign(sk, { content: 'via nostr-tools Relay' });
      await relay.publish(ev);
      const got = [];
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no EOSE from nostr-tools sub')), 5000);
        const sub = relay.subscribe([{ authors: [pk] }], {
          onevent: (e) => got.push(e),
          oneose: () => {
            clearTimeout(timer);
            sub.close();
            resolve();
          },
        });
      });
      assert.deepEqual(ids(got), [ev.id]);
      assert.equal(await relay.count([{ authors: [pk] }]), 1);
    } finally {
      relay.close();
    }
  });
});

describe('REQ filters', () => {
  const a = keys();
  const b = keys();
  const tag = `tag-${Math.random().toString(36).slice(2)}`;
  const t0 = now() - 1000;
  let e1, e2, e3, f1;

  before(async () => {
    e1 = sign(a.sk, { kind: 1, created_at: t0 + 100, content: 'e1', tags: [['t', `${tag}-alpha`]] });
    e2 = sign(a.sk, {
      kind: 7,
      created_at: t0 + 200,
      content: '+',
      tags: [['e', e1.id], ['p', b.pk]],
    });
    e3 = sign(a.sk, { kind: 1, created_at: t0 + 300, content: 'e3', tags: [['t', `${tag}-beta`]] });
    f1 = sign(b.sk, { kind: 1, created_at: t0 + 250, content: 'f1', tags: [['t', `${tag}-alpha`]] });
    for (const ev of [e1, e2, e3, f1]) assert.equal((await client.publish(ev)).ok, true);
  });

  test('ids', async () => {
    assert.deepEqual(ids(await client.query({ ids: [e1.id, f1.id] })), ids([e1, f1]));
  });

  test('authors', async () => {
    assert.deepEqual(ids(await client.query({ authors: [a.pk] })), ids([e1, e2, e3]));
    assert.deepEqual(ids(await client.query({ authors: [a.pk, b.pk] })), ids([e1, e2, e3, f1]));
  });

  test('kinds', async () => {
    assert.deepEqual(ids(await client.query({ authors: [a.pk], kinds: [7] })), ids([e2]));
    assert.deepEqual(ids(await client.query({ authors: [a.pk], kinds: [1] })), ids([e1, e3]));
  });

  test('#e', async () => {
    assert.deepEqual(ids(await client.query({ '#e': [e1.id] })), ids([e2]));
  });

  test('#p', async () => {
    assert.deepEqual(ids(await client.query({ '#p': [b.pk] })), ids([e2]));
  });

  test('#t', async () => {
    assert.deepEqual(ids(await client.query({ '#t': [`${tag}-alpha`] })), ids([e1, f1]));
    assert.deepEqual(ids(await client.query({ '#t': [`${tag}-alpha`], authors: [b.pk] })),
                     ids([f1]));
  });

  test('since (inclusive)', async () => {
    assert.deepEqual(ids(await client.query({ authors: [a.pk], since: t0 + 200 })), ids([e2, e3]));
  });

  test('until (inclusive)', async () => {
    assert.deepEqual(ids(await client.query({ authors: [a.pk], until: t0 + 200 })), ids([e1, e2]));
  });

  test('limit returns the newest, newest first', async () => {
    const got = await client.query({ authors: [a.pk, b.pk], limit: 2 });
    assert.deepEqual(got.map((e) => e.id), [e3.id, f1.id]);
  });

  test('several filters are OR-ed', async () => {
    const got = await client.query({ ids: [e1.id] }, { authors: [b.pk] });
    assert.deepEqual(ids(got), ids([e1, f1]));
  });

  test('every stored event verifies with nostr-tools', async () => {
    for (const ev of await client.query({ authors: [a.pk, b.pk] })) {
      assert.ok(verifyEvent({ ...ev }), `event ${ev.id} does not verify`);
    }
  });
});

describe('subscriptions', () => {
  test('live delivery after EOSE, and CLOSE stops it', async () => {
    const author = keys();
    const sub = await Client.connect(server.url);
    const pub = await Client.connect(server.url);
    try {
      const old = sign(author.sk, { content: 'before REQ' });
      assert.equal((await pub.publish(old)).ok, true);
      const history = await sub.req('live', { authors: [author.pk] });
      assert.deepEqual(ids(history), [old.id]);

      const fresh = sign(author.sk, { content: 'after EOSE' });
      assert.equal((await pub.publish(fresh)).ok, true);
      const m = await sub.next((x) => x[0] === 'EVENT' && x[1] === 'live', { what: 'live event' });
      assert.equal(m[2].id, fresh.id);
      assert.ok(verifyEvent({ ...m[2] }));

      // An event that does not match the filter is not delivered.
      const other = sign(keys().sk, { content: 'someone else' });
      assert.equal((await pub.publish(other)).ok, true);

      sub.send(['CLOSE', 'live']);
      // CLOSE has no reply; a round trip on the same connection orders it before the next
      // publish.
      await sub.count({ ids: [fresh.id] });
      const afterClose = sign(author.sk, { content: 'after CLOSE' });
      assert.equal((await pub.publish(afterClose)).ok, true);
      assert.ok(await sub.nothing((x) => x[0] === 'EVENT', 700), 'EVENT delivered after CLOSE');
    } finally {
      await sub.close();
      await pub.close();
    }
  });

  test('a REQ in the middle of a burst: every event exactly once, history or live', async () => {
    const { sk, pk } = keys();
    const signFast = await signer();
    const t = now() - 1000;
    const evs = Array.from({ length: 300 }, (_, i) =>
      signFast(sk, { content: `gapless ${i}`, created_at: t + i }));
    const pub = await Client.connect(server.url);
    const sub = await Client.connect(server.url);
    try {
      const acks = evs.map((ev) => pub.next((x) => x[0] === 'OK' && x[1] === ev.id,
                                            { timeoutMs: 30000 }));
      for (const ev of evs.slice(0, 150)) pub.send(['EVENT', ev]);
      await acks[20];  // some history exists
      const history = sub.req('gapless', { authors: [pk] });
      for (const ev of evs.slice(150)) pub.send(['EVENT', ev]);
      const seen = new Map();
      for (const ev of await history) seen.set(ev.id, (seen.get(ev.id) || 0) + 1);
      for (const m of await Promise.all(acks)) assert.equal(m[2], true, m[3]);
      const deadline = Date.now() + 15000;
      while (seen.size < evs.length && Date.now() < deadline) {
        const m = await sub.next((x) => x[0] === 'EVENT' && x[1] === 'gapless',
                                 { timeoutMs: Math.max(1, deadline - Date.now()) });
        seen.set(m[2].id, (seen.get(m[2].id) || 0) + 1);
      }
      assert.ok(await sub.nothing((x) => x[0] === 'EVENT', 300), 'an extra EVENT arrived');
      assert.equal(seen.size, evs.length, 'events missing');
      for (const [id, n] of seen) assert.equal(n, 1, `${id} delivered ${n} times`);
    } finally {
      await pub.close();
      await sub.close();
    }
  });

  test('a REQ with the same id replaces the subscription', async () => {
    const a = keys();
    const b = keys();
    const sub = await Client.connect(server.url);
    try {
      await sub.req('s', { authors: [a.pk] });
      await sub.req('s', { authors: [b.pk] });
      assert.equal((await client.publish(sign(a.sk, { content: 'to a' }))).ok, true);
      const evB = sign(b.sk, { content: 'to b' });
      assert.equal((await client.publish(evB)).ok, true);
      const m = await sub.next((x) => x[0] === 'EVENT', { what: 'event for b' });
      assert.equal(m[2].id, evB.id);
      assert.ok(await sub.nothing((x) => x[0] === 'EVENT', 300));
    } finally {
      await sub.close();
    }
  });
});

describe('replaceable, addressable, ephemeral kinds', () => {
  for (const kind of [0, 3, 10002]) {
    test(`kind ${kind}: the newest wins, whatever the arrival order`, async () => {
      const { sk, pk } = keys();
      const t = now() - 100;
      const v1 = sign(sk, { kind, created_at: t, content: kind === 0 ? '{"name":"v1"}' : '' });
      const v3 = sign(sk, {
        kind,
        created_at: t + 20,
        content: kind === 0 ? '{"name":"v3"}' : '',
        tags: kind === 10002 ? [['r', 'wss://relay.example.com']] : [],
      });
      const v2 = sign(sk, { kind, created_at: t + 10, content: kind === 0 ? '{"name":"v2"}' : '' });
      assert.equal((await client.publish(v1)).ok, true);
      assert.equal((await client.publish(v3)).ok, true);
      await client.publish(v2);  // older than what is stored: accepted or refused, never kept
      const got = await client.query({ authors: [pk], kinds: [kind] });
      assert.deepEqual(ids(got), [v3.id]);
    });
  }

  test('kind 30023: one per (author, d tag), the newest wins', async () => {
    const { sk, pk } = keys();
    const t = now() - 100;
    const p1v1 = sign(sk, { kind: 30023, created_at: t, tags: [['d', 'post-1']], content: 'v1' });
    const p1v2 = sign(sk, { kind: 30023, created_at: t + 10, tags: [['d', 'post-1']], content: 'v2' });
    const p2 = sign(sk, { kind: 30023, created_at: t + 5, tags: [['d', 'post-2']], content: 'p2' });
    const other = keys();
    const o1 = sign(other.sk, { kind: 30023, created_at: t, tags: [['d', 'post-1']], content: 'x' });
    for (const ev of [p1v1, p1v2, p2, o1]) assert.equal((await client.publish(ev)).ok, true);
    assert.deepEqual(ids(await client.query({ authors: [pk], kinds: [30023] })), ids([p1v2, p2]));
    assert.deepEqual(ids(await client.query({ kinds: [30023], '#d': ['post-1'],
                                              authors: [pk, other.pk] })),
                     ids([p1v2, o1]));
  });

  test('kind 20001 (ephemeral): delivered live, not stored', async () => {
    const { sk, pk } = keys();
    const sub = await Client.connect(server.url);
    try {
      await sub.req('eph', { authors: [pk] });
      const ev = sign(sk, { kind: 20001, content: 'here and gone' });
      assert.equal((await client.publish(ev)).ok, true);
      const m = await sub.next((x) => x[0] === 'EVENT' && x[1] === 'eph', { what: 'ephemeral' });
      assert.equal(m[2].id, ev.id);
      assert.deepEqual(await client.query({ ids: [ev.id] }), []);
      assert.deepEqual(await client.query({ authors: [pk] }), []);
    } finally {
      await sub.close();
    }
  });
});

describe('NIP-09 deletion', () => {
  test("deletes the author's own events, not another author's", async () => {
    const a = keys();
    const b = keys();
    const mine = sign(a.sk, { content: 'delete me' });
    const keep = sign(a.sk, { content: 'keep me' });
    const theirs = sign(b.sk, { content: 'not yours to delete' });
    for (const ev of [mine, keep, theirs]) assert.equal((await client.publish(ev)).ok, true);
    const del = sign(a.sk, {
      kind: 5,
      tags: [['e', mine.id], ['e', theirs.id], ['k', '1']],
      content: 'oops',
    });
    assert.equal((await client.publish(del)).ok, true);
    const got = await client.query({ ids: [mine.id, keep.id, theirs.id] });
    assert.deepEqual(ids(got), ids([keep, theirs]));
    // The deletion request itself is kept, so that it propagates.
    assert.deepEqual(ids(await client.query({ authors: [a.pk], kinds: [5] })), [del.id]);
  });

  test('an a-tag deletion removes the addressable event', async () => {
    const { sk, pk } = keys();
    const art = sign(sk, { kind: 30023, tags: [['d', 'gone']], content: 'x', created_at: now() - 5 });
    assert.equal((await client.publish(art)).ok, true);
    const del = sign(sk, { kind: 5, tags: [['a', `30023:${pk}:gone`]] });
    assert.equal((await client.publish(del)).ok, true);
    assert.deepEqual(await client.query({ authors: [pk], kinds: [30023] }), []);
  });
});

describe('NIP-40 expiration', () => {
  test('an already expired event is refused', async () => {
    const { sk } = keys();
    const ev = sign(sk, { tags: [['expiration', String(now() - 10)]], content: 'too late' });
    const res = await client.publish(ev);
    assert.equal(res.ok, false);
    assert.match(res.message, /^invalid:/);
  });

  test('a short-lived event is served, then disappears', async () => {
    const { sk } = keys();
    const expiration = now() + 2;
    const ev = sign(sk, { tags: [['expiration', String(expiration)]], content: 'short-lived' });
    assert.equal((await client.publish(ev)).ok, true);
    assert.deepEqual(ids(await client.query({ ids: [ev.id] })), [ev.id]);
    await sleep(Math.max(0, (expiration + 1) * 1000 - Date.now()) + 100);
    assert.deepEqual(await client.query({ ids: [ev.id] }), []);
    assert.equal(await client.count({ ids: [ev.id] }), 0);
  });
});

describe('NIP-45 COUNT', () => {
  test('counts what a REQ would return', async () => {
    const { sk, pk } = keys();
    const t = now() - 50;
    for (let i = 0; i < 5; ++i) {
      const kind = i < 3 ? 1 : 7;
      assert.equal((await client.publish(sign(sk, { kind, created_at: t + i, content: `n${i}` }))).ok,
                   true);
    }
    assert.equal(await client.count({ authors: [pk] }), 5);
    assert.equal(await client.count({ authors: [pk], kinds: [7] }), 2);
    assert.equal(await client.count({ authors: [pk], since: t + 3 }), 2);
    assert.equal(await client.count({ authors: [keys().pk] }), 0);
  });
});

describe('limits from the NIP-11 document hold on the wire', () => {
  test('content over 64 KiB in a frame under 128 KiB: OK false "invalid:"', async () => {
    const ev = sign(keys().sk, { content: 'b'.repeat(70 * 1024) });
    const res = await client.publish(ev);
    assert.equal(res.ok, false);
    assert.match(res.message, /^invalid:/);
  });

  test('the 21st subscription on one connection is CLOSED "rate-limited:"', async () => {
    const c = await Client.connect(server.url);
    try {
      for (let i = 0; i < 20; ++i) await c.req(`s${i}`, { ids: ['0'.repeat(64)] });
      c.send(['REQ', 's20', { limit: 1 }]);
      const m = await c.next((x) => x[0] === 'CLOSED' && x[1] === 's20', { what: 'CLOSED s20' });
      assert.match(m[2], /^rate-limited:/);
      // Closing one makes room again.
      c.send(['CLOSE', 's0']);
      await c.req('s21', { limit: 1 });
    } finally {
      await c.close();
    }
  });

  test('a subscription id over 64 characters is refused with "invalid:"', async () => {
    const c = await Client.connect(server.url);
    try {
      c.send(['REQ', 'x'.repeat(65), { limit: 1 }]);
      const m = await c.next((x) => x[0] === 'CLOSED' || x[0] === 'NOTICE', { what: 'refusal' });
      assert.match(m[m.length - 1], /^invalid:/);
    } finally {
      await c.close();
    }
  });

  test('a limit over max_limit is clamped to 500, not refused', async () => {
    const { sk, pk } = keys();
    const signFast = await signer();
    const t = now() - 5000;
    const evs = Array.from({ length: 510 }, (_, i) =>
      signFast(sk, { content: `clamp ${i}`, created_at: t + i }));
    for (const ev of evs) client.send(['EVENT', ev]);
    for (const ev of evs) {
      const m = await client.next((x) => x[0] === 'OK' && x[1] === ev.id, { timeoutMs: 20000 });
      assert.equal(m[2], true, m[3]);
    }
    const got = await client.query({ authors: [pk], limit: 1000 });
    assert.equal(got.length, 500);
    assert.equal(got[0].id, evs[509].id, 'newest first');
    assert.equal(await client.count({ authors: [pk] }), 510);
  });
});

describe('HTTP on the same port', () => {
  test('NIP-11 document with Accept: application/nostr+json', async () => {
    const res = await fetch(server.httpUrl, { headers: { Accept: 'application/nostr+json' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /application\/nostr\+json/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const info = await res.json();
    for (const nip of [1, 9, 11, 40, 42, 45, 70]) {
      assert.ok(info.supported_nips.includes(nip), `supported_nips lacks ${nip}`);
    }
    assert.equal(typeof info.name, 'string');
    assert.equal(info.limitation.max_message_length, 131072);
    assert.equal(info.limitation.max_subscriptions, 20);
    assert.equal(info.limitation.auth_required, false);
  });

  test('a plain GET without the Accept header is not the NIP-11 document', async () => {
    const res = await fetch(server.httpUrl);
    assert.equal(res.status, 200);
    assert.doesNotMatch(res.headers.get('content-type') || '', /nostr\+json/);
    await res.text();
  });

  test('/metrics has relaycore_ metrics', async () => {
    const text = await server.metrics();
    assert.match(text, /^relaycore_\w+/m);
    assert.match(text, /^# TYPE relaycore_/m);
    assert.ok((await server.metric('relaycore_sessions_open')) >= 1, text.slice(0, 2000));
    assert.ok((await server.metric('relaycore_sessions_total')) >= 1);
    assert.match(text, /^relaycore_slow_consumer_disconnects_total \d+/m);
  });
});

describe('reconnects and restarts', () => {
  test('close, reconnect: the data is still there', async () => {
    const { sk, pk } = keys();
    const c1 = await Client.connect(server.url);
    const ev = sign(sk, { content: 'survives a reconnect' });
    assert.equal((await c1.publish(ev)).ok, true);
    await c1.close();
    const c2 = await Client.connect(server.url);
    assert.deepEqual(ids(await c2.query({ authors: [pk] })), [ev.id]);
    await c2.close();
  });

  test('restart on the same database: the data is still there', async () => {
    const { sk, pk } = keys();
    const first = await RelayServer.start();
    let second;
    try {
      const c1 = await Client.connect(first.url);
      const evs = [];
      for (let i = 0; i < 20; ++i) {
        const ev = sign(sk, { content: `restart ${i}`, created_at: now() - i });
        evs.push(ev);
        assert.equal((await c1.publish(ev)).ok, true);
      }
      const { code } = await first.stop();
      assert.equal(code, 0, first.output);
      assert.equal((await c1.closed).code !== undefined, true);

      second = await RelayServer.start({ db: first.db, port: first.port });
      const c2 = await Client.connect(second.url);
      assert.deepEqual(ids(await c2.query({ authors: [pk] })), ids(evs));
      assert.equal((await c2.publish(evs[0])).message.startsWith('duplicate:'), true);
      await c2.close();
    } finally {
      if (second) assert.equal((await second.stop()).code, 0, second.output);
      await first.stop();
      first.cleanup();
    }
  });
});
