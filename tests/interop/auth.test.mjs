// NIP-42 AUTH and NIP-70 protected events against relaycore-relay started with --auth.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';
import { finalizeEvent } from 'nostr-tools/pure';
import { makeAuthEvent } from 'nostr-tools/nip42';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';

import { Client, RelayServer, keys, now, sign } from './lib/harness.mjs';

useWebSocketImplementation(WebSocket);

let server;

before(async () => {
  server = await RelayServer.start({ auth: true });
});

after(async () => {
  if (server) {
    const { code, signal } = await server.stop();
    server.cleanup();
    assert.equal(signal, null, server.output);
    assert.equal(code, 0, server.output);
  }
});

// Connects and reads the AUTH challenge the relay sends on connect.
async function connectWithChallenge() {
  const c = await Client.connect(server.url);
  const m = await c.next((x) => x[0] === 'AUTH', { what: 'AUTH challenge on connect' });
  assert.equal(typeof m[1], 'string');
  assert.ok(m[1].length >= 16, `short challenge ${m[1]}`);
  return { c, challenge: m[1] };
}

async function sendAuth(c, event) {
  c.send(['AUTH', event]);
  const m = await c.next((x) => x[0] === 'OK' && x[1] === event.id, { what: 'OK for AUTH' });
  return { ok: m[2], message: m[3] };
}

describe('NIP-42 AUTH', () => {
  test('the NIP-11 document says auth_required', async () => {
    const res = await fetch(server.httpUrl, { headers: { Accept: 'application/nostr+json' } });
    const info = await res.json();
    assert.equal(info.limitation.auth_required, true);
    assert.ok(info.supported_nips.includes(42));
  });

  test('a challenge on connect, different for every connection', async () => {
    const a = await connectWithChallenge();
    const b = await connectWithChallenge();
    assert.notEqual(a.challenge, b.challenge);
    await a.c.close();
    await b.c.close();
  });

  test('a valid kind-22242 event made by nostr-tools nip42 gets OK true', async () => {
    const { c, challenge } = await connectWithChallenge();
    const { sk } = keys();
    const ev = finalizeEvent(makeAuthEvent(server.url, challenge), sk);
    assert.deepEqual(await sendAuth(c, ev), { ok: true, message: '' });
    await c.close();
  });

  test('a trailing slash or upper-case host in the relay tag still matches', async () => {
    const { c, challenge } = await connectWithChallenge();
    const ev = finalizeEvent(makeAuthEvent(`${server.url}/`.toUpperCase().replace('WS://', 'ws://'),
                                           challenge), keys().sk);
    assert.equal((await sendAuth(c, ev)).ok, true);
    await c.close();
  });

  test('a wrong challenge gets OK false', async () => {
    const { c, challenge } = await connectWithChallenge();
    const other = await connectWithChallenge();
    const ev = finalizeEvent(makeAuthEvent(server.url, other.challenge), keys().sk);
    assert.notEqual(other.challenge, challenge);
    const res = await sendAuth(c, ev);
    assert.equal(res.ok, false);
    assert.match(res.message, /^[a-z-]+: /);
    await c.close();
    await other.c.close();
  });

  test('a wrong relay URL gets OK false', async () => {
    const { c, challenge } = await connectWithChallenge();
    const ev = finalizeEvent(makeAuthEvent('wss://some.other.relay', challenge), keys().sk);
    const res = await sendAuth(c, ev);
    assert.equal(res.ok, false);
    assert.match(res.message, /^[a-z-]+: /);
    await c.close();
  });

  test('a stale created_at, wrong kind or bad signature gets OK false', async () => {
    const { c, challenge } = await connectWithChallenge();
    const { sk } = keys();
    const stale = finalizeEvent({ ...makeAuthEvent(server.url, challenge),
                                  created_at: now() - 3600 }, sk);
    assert.equal((await sendAuth(c, stale)).ok, false);
    const wrongKind = finalizeEvent({ ...makeAuthEvent(server.url, challenge), kind: 1 }, sk);
    assert.equal((await sendAuth(c, wrongKind)).ok, false);
    const good = finalizeEvent(makeAuthEvent(server.url, challenge), sk);
    const badSig = { ...good, sig: (good.sig[0] === 'a' ? 'b' : 'a') + good.sig.slice(1) };
    assert.equal((await sendAuth(c, badSig)).ok, false);
    await c.close();
  });

  test('events still work on an --auth relay without authenticating', async () => {
    const { c } = await connectWithChallenge();
    const ev = sign(keys().sk, { content: 'no auth needed for a plain note' });
    assert.equal((await c.publish(ev)).ok, true);
    await c.close();
  });
});

describe('NIP-70 protected events', () => {
  test('refused with "auth-required:" before AUTH, accepted after AUTH as the author', async () => {
    const { c, challenge } = await connectWithChallenge();
    const author = keys();
    const ev = sign(author.sk, { content: 'protected', tags: [['-']] });
    const before = await c.publish(ev);
    assert.equal(before.ok, false);
    assert.match(before.message, /^auth-required:/);
    assert.deepEqual(await c.query({ ids: [ev.id] }), []);

    const auth = finalizeEvent(makeAuthEvent(server.url, challenge), author.sk);
    assert.equal((await sendAuth(c, auth)).ok, true);
    const afterAuth = await c.publish(ev);
    assert.deepEqual(afterAuth, { ok: true, message: '' });
    const [got] = await c.query({ ids: [ev.id] });
    assert.deepEqual(got.tags, [['-']]);
    await c.close();
  });

  test('authenticated as someone else: still refused', async () => {
    const { c, challenge } = await connectWithChallenge();
    const author = keys();
    const ev = sign(author.sk, { content: 'protected, wrong signer', tags: [['-']] });
    const auth = finalizeEvent(makeAuthEvent(server.url, challenge), keys().sk);
    assert.equal((await sendAuth(c, auth)).ok, true);
    const res = await c.publish(ev);
    assert.equal(res.ok, false);
    assert.match(res.message, /^(auth-required|restricted):/);
    await c.close();
  });

  test('nostr-tools Relay with onauth authenticates and publishes a protected event', async () => {
    const author = keys();
    const relay = await Relay.connect(server.url);
    try {
      // nostr-tools names the relay by its normalised URL (with a trailing slash).
      relay.onauth = async (template) => finalizeEvent(template, author.sk);
      const deadline = Date.now() + 5000;
      while (!relay.challenge && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(relay.challenge, 'nostr-tools saw no challenge');
      await relay.auth(relay.onauth);
      const ev = sign(author.sk, { content: 'protected via nostr-tools', tags: [['-']] });
      await relay.publish(ev);
    } finally {
      relay.close();
    }
  });
});
