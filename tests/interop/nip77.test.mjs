// NIP-77 negentropy against the real relaycore-relay binary, with the client nostr-tools ships
// (lib/esm/nip77.js: NegentropySync over its Relay class). The package does not export that
// module, so it is loaded by path. Each sync must tell the client exactly which ids only it has
// and which only the relay has; after the client moves them, a second sync finds nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';

import {
  NegentropyStorageVector,
  NegentropySync,
} from './node_modules/nostr-tools/lib/esm/nip77.js';
import { Client, RelayServer, keys, now, signer } from './lib/harness.mjs';

useWebSocketImplementation(WebSocket);

const servers = [];
after(async () => {
  for (const server of servers) {
    const { code, signal } = await server.stop();
    server.cleanup();
    assert.equal(signal, null, `relay killed by ${signal}:\n${server.output}`);
    assert.equal(code, 0, `relay exit status after SIGTERM:\n${server.output}`);
  }
});

async function startRelay(args = []) {
  const server = await RelayServer.start({ args });
  servers.push(server);
  return server;
}

// Runs one sync with nostr-tools over `events` (the client's set) and `filter`. Resolves with
// the ids the client has that the relay lacks, those it needs, and how the sync ended.
async function nostrToolsSync(url, events, filter) {
  const relay = await Relay.connect(url);
  const storage = new NegentropyStorageVector();
  for (const e of events) storage.insert(e.created_at, e.id);
  storage.seal();
  const have = [];
  const need = [];
  let messages = 0;
  const reason = await new Promise((resolve) => {
    const sync = new NegentropySync(relay, storage, filter, {
      onhave: (id) => have.push(id),
      onneed: (id) => need.push(id),
      onclose: (why) => resolve(why ?? 'done'),
    });
    const reconcile = sync.neg.reconcile.bind(sync.neg);
    sync.neg.reconcile = (...a) => {
      messages += 1;
      return reconcile(...a);
    };
    sync.start();
  });
  relay.close();
  // nostr-tools may report an id twice: when its own reply outgrows its frame size limit, the
  // range it sends for the rest starts before ranges it has already settled, and the relay
  // answers those again. The sets are what the sync is for.
  const unique = (ids) => [...new Set(ids)].sort();
  return { have: unique(have), need: unique(need), reason, messages, reported: have.length };
}

// `n` signed kind-1 events, a few seconds apart, several per second at times.
async function makeEvents(n, tag) {
  const sign = await signer();
  const { sk } = keys();
  const base = now() - 100000;
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(sign(sk, { content: `${tag} ${i}`, tags: [['t', tag]], created_at: base + (i >> 1) }));
  }
  return out;
}

async function publishAll(url, events) {
  const c = await Client.connect(url);
  try {
    const pending = events.map((e) => c.publish(e, { timeoutMs: 60000 }));
    for (const r of await Promise.all(pending)) assert.equal(r.ok, true, r.message);
  } finally {
    await c.close();
  }
}

const idsOf = (events) => events.map((e) => e.id).sort();

describe('nostr-tools NegentropySync against relaycore-relay', () => {
  let server;
  before(async () => {
    server = await startRelay();
  });

  for (const [name, total, frame] of [['small', 300, null], ['many rounds', 4000, 4096]]) {
    test(`${name}: both sides learn exactly the ids the other has and lacks`, async () => {
      const s = frame ? await startRelay(['--neg-frame-bytes', String(frame)]) : server;
      const tag = `neg-${name.replace(/ /g, '-')}`;
      const events = await makeEvents(total, tag);
      // The relay gets two thirds; the client has the last two thirds, overlapping on a third.
      const third = Math.floor(total / 3);
      const onRelay = events.slice(0, 2 * third);
      const onClient = events.slice(third);
      await publishAll(s.url, onRelay);

      const filter = { kinds: [1], '#t': [tag] };
      const first = await nostrToolsSync(s.url, onClient, filter);
      assert.equal(first.reason, 'done');
      assert.deepEqual(first.have, idsOf(events.slice(2 * third)), 'ids only the client has');
      assert.deepEqual(first.need, idsOf(events.slice(0, third)), 'ids only the relay has');
      if (frame) assert.ok(first.messages > 2, `only ${first.messages} relay messages`);

      // The client moves them both ways: uploads what it has, fetches what it needs.
      const byId = new Map(onClient.map((e) => [e.id, e]));
      await publishAll(s.url, first.have.map((id) => byId.get(id)));
      const c = await Client.connect(s.url);
      const fetched = [];
      for (let i = 0; i < first.need.length; i += 500) {
        fetched.push(...(await c.query({ ids: first.need.slice(i, i + 500) })));
      }
      await c.close();
      assert.deepEqual(idsOf(fetched), first.need);

      const second = await nostrToolsSync(s.url, [...onClient, ...fetched], filter);
      assert.equal(second.reason, 'done');
      assert.deepEqual(second.have, []);
      assert.deepEqual(second.need, []);
    });
  }

  test('a filter over --neg-max-records ends the sync with NEG-ERR "blocked:"', async () => {
    const s = await startRelay(['--neg-max-records', '10']);
    const events = await makeEvents(20, 'neg-cap');
    await publishAll(s.url, events);
    const c = await Client.connect(s.url);
    c.send(['NEG-OPEN', 'cap', { kinds: [1] }, '6100000200']);
    const m = await c.next((x) => x[1] === 'cap', { what: 'NEG-ERR for cap' });
    assert.equal(m[0], 'NEG-ERR');
    assert.match(m[2], /^blocked: /);
    await c.close();
    // nostr-tools sees the sync end.
    const r = await nostrToolsSync(s.url, [], { kinds: [1] });
    assert.deepEqual(r.need, []);
  });

  test('bad input gets NEG-ERR or NOTICE and the connection keeps working', async () => {
    const c = await Client.connect(server.url);
    const answer = (sub) => c.next((x) => x[1] === sub || x[0] === 'NOTICE', { what: sub });
    c.send(['NEG-OPEN', 'hex', {}, 'zz']);
    assert.match((await answer('hex'))[2], /^invalid: .*hex/);
    c.send(['NEG-OPEN', 'ver', {}, '05']);
    assert.match((await answer('ver'))[2], /^invalid: .*version/);
    c.send(['NEG-OPEN', 'v2', {}, '62']);
    assert.deepEqual(await answer('v2'), ['NEG-MSG', 'v2', '61']);
    c.send(['NEG-OPEN', 'rng', {}, '61000009']);
    assert.match((await answer('rng'))[2], /^invalid: .*mode/);
    c.send(['NEG-MSG', 'ghost', '61']);
    const ghost = await answer('ghost');
    assert.equal(ghost[0], 'NEG-ERR');
    assert.match(ghost[2], /^closed: /);
    c.send(['NEG-CLOSE']);
    assert.match((await answer('-'))[1], /^invalid: /);
    const count = await c.count({ kinds: [1] });
    assert.equal(typeof count, 'number');
    await c.close();
  });

  test('NIP-11 lists 77, and not when sync is turned off', async () => {
    const info = async (url) => {
      const res = await fetch(url.replace('ws://', 'http://'), {
        headers: { Accept: 'application/nostr+json' },
      });
      return res.json();
    };
    assert.ok((await info(server.url)).supported_nips.includes(77));
    const off = await startRelay(['--neg-max-sessions', '0']);
    assert.ok(!(await info(off.url)).supported_nips.includes(77));
  });
});
