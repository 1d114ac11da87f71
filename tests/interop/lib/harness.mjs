// Shared helpers for the interop tests: start and stop the real relaycore-relay binary on a free
// loopback port with a fresh database, talk to it over real WebSockets (ws), and sign events with
// nostr-tools. Nothing here reaches beyond 127.0.0.1.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import * as wasm from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';

export { sleep };

// The relay binary, from ctest's environment.
export function relayBinary() {
  const bin = process.env.RELAYCORE_RELAY;
  if (!bin) {
    throw new Error(
      'RELAYCORE_RELAY is not set: run these tests through ctest, or set it to the ' +
        'relaycore-relay binary (e.g. build/examples/relaycore-relay)',
    );
  }
  if (!fs.existsSync(bin)) throw new Error(`RELAYCORE_RELAY=${bin} does not exist`);
  return bin;
}

// Where screenshots and figures go (the build tree under ctest).
export function artifactsDir() {
  const dir = process.env.RELAYCORE_ARTIFACTS || path.join(os.tmpdir(), 'relaycore-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// A port that was free a moment ago: bind port 0 on loopback, read it, release it.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'relaycore-interop-'));
}

export const now = () => Math.floor(Date.now() / 1000);

// Relays still running: killed if this process ends early, so none outlives a failed run.
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const child of running) child.kill('SIGKILL');
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  });
}

// A running relaycore-relay child process.
export class RelayServer {
  // Starts the binary and waits for its "listening" line. `db` defaults to a fresh temp file;
  // `port` defaults to a free one (the same port can be passed again to restart in place).
  static async start({ auth = false, db, port, args = [] } = {}) {
    const bin = relayBinary();
    let dir;
    if (!db) {
      dir = tempDir();
      db = path.join(dir, 'relay.db');
    }
    let lastError;
    // A port found free can be taken by someone else before the relay binds it: try again.
    for (let attempt = 0; attempt < 3; ++attempt) {
      const p = port ?? (await freePort());
      const server = new RelayServer(bin, p, db, dir, auth, args);
      try {
        await server.#launch();
        return server;
      } catch (err) {
        lastError = err;
        if (port !== undefined) break;
      }
    }
    throw lastError;
  }

  constructor(bin, port, db, dir, auth, args) {
    this.bin = bin;
    this.port = port;
    this.db = db;
    this.dir = dir;
    this.auth = auth;
    this.url = `ws://127.0.0.1:${port}`;
    this.httpUrl = `http://127.0.0.1:${port}`;
    this.args = [
      '--listen', `127.0.0.1:${port}`,
      '--relay-url', this.url,
      '--db', db,
      ...(auth ? ['--auth'] : []),
      ...args,
    ];
    this.output = '';
  }

  #launch() {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      running.add(child);
      this.pid = child.pid;
      let listening = false;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`relaycore-relay did not print "listening" in 15 s:\n${this.output}`));
      }, 15000);
      const onData = (chunk) => {
        this.output += chunk.toString();
        if (!listening && /listening on/.test(this.output)) {
          listening = true;
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      this.exited = new Promise((res) => {
        child.on('exit', (code, signal) => {
          running.delete(child);
          this.exitCode = code;
          this.exitSignal = signal;
          res({ code, signal });
          if (!listening) {
            clearTimeout(timer);
            reject(new Error(`relaycore-relay exited (${code ?? signal}) before listening:\n` +
                             this.output));
          }
        });
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  // VmRSS and VmHWM (peak) of the relay process, in KiB.
  memory() {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kib = (name) => Number((status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm')) || [])[1]);
    return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
  }

  async metrics() {
    const res = await fetch(`${this.httpUrl}/metrics`);
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
    return res.text();
  }

  // The value of one relaycore_ metric (first sample whose name and labels match).
  async metric(name) {
    const text = await this.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  // SIGTERM, then the exit status: a clean drain exits 0. Returns { code, signal }.
  async stop({ timeoutMs = 15000 } = {}) {
    if (this.exitCode !== undefined || this.exitSignal) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  // Removes the temp dir made for the database (when this server made it).
  cleanup() {
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// One relay for the tests of a file: started before them (unless `skip`, a test's skip option,
// is set) and stopped after them, when it must exit 0. Its `server` is the RelayServer.
export function relayForFile({ skip = false, ...options } = {}) {
  const relay = { server: undefined };
  before(async () => {
    if (!skip) relay.server = await RelayServer.start(options);
  });
  after(async () => {
    if (!relay.server) return;
    const { code } = await relay.server.stop();
    relay.server.cleanup();
    if (code !== 0) throw new Error(`relaycore-relay exited ${code}:\n${relay.server.output}`);
  });
  return relay;
}

// A WebSocket client that keeps every unread message in a queue so a test can wait for the one
// it wants, in any order.
export class Client {
  static connect(url, options = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
      const client = new Client(ws);
      // The handshake's response headers, for tests of what was negotiated.
      ws.once('upgrade', (res) => { client.upgradeHeaders = res.headers; });
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.raw = [];
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w.fail(new Error(`connection closed (${code})`));
      });
    });
    ws.on('error', () => {});
    ws.on('message', (data) => {
      let msg;
      try {
        msg = JSON.parse(data.toString());
      } catch (err) {
        msg = ['<unparseable>', data.toString()];
      }
      this.queue.push(msg);
      this.#wake();
    });
  }

  #wake() {
    for (const w of [...this.waiters]) {
      const i = this.queue.findIndex(w.pred);
      if (i >= 0) {
        const [msg] = this.queue.splice(i, 1);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.done(msg);
      }
    }
  }

  send(message) {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  // The first queued or future message matching `pred`, removed from the queue.
  next(pred, { timeoutMs = 10000, what = 'a message' } = {}) {
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    if (this.closeInfo) return Promise.reject(new Error(`connection closed before ${what}`));
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        done: (m) => {
          clearTimeout(w.timer);
          resolve(m);
        },
        fail: (e) => {
          clearTimeout(w.timer);
          reject(e);
        },
      };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; queue: ` +
                         JSON.stringify(this.queue).slice(0, 500)));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  // Resolves true if nothing matching `pred` arrives within `ms`.
  async nothing(pred, ms = 500) {
    try {
      await this.next(pred, { timeoutMs: ms });
      return false;
    } catch (err) {
      if (/timed out/.test(err.message)) return true;
      throw err;
    }
  }

  // Sends EVENT and waits for its OK. Returns { ok, message }.
  async publish(event, opts) {
    this.send(['EVENT', event]);
    const m = await this.next((x) => x[0] === 'OK' && x[1] === event.id,
                              { what: `OK for ${event.id}`, ...opts });
    return { ok: m[2], message: m[3] };
  }

  // Sends REQ and collects the stored events up to EOSE. The subscription stays open.
  async req(subId, ...filters) {
    this.send(['REQ', subId, ...filters]);
    const events = [];
    for (;;) {
      const m = await this.next(
        (x) => (x[0] === 'EVENT' || x[0] === 'EOSE' || x[0] === 'CLOSED') && x[1] === subId,
        { what: `EOSE for ${subId}` },
      );
      if (m[0] === 'EOSE') return events;
      if (m[0] === 'CLOSED') throw new Error(`subscription ${subId} CLOSED: ${m[2]}`);
      events.push(m[2]);
    }
  }

  // REQ, events up to EOSE, then CLOSE.
  async query(...filters) {
    const subId = `q${Math.random().toString(36).slice(2, 10)}`;
    const events = await this.req(subId, ...filters);
    this.send(['CLOSE', subId]);
    return events;
  }

  // NIP-45 COUNT; returns the count.
  async count(...filters) {
    const subId = `c${Math.random().toString(36).slice(2, 10)}`;
    this.send(['COUNT', subId, ...filters]);
    const m = await this.next((x) => (x[0] === 'COUNT' || x[0] === 'CLOSED') && x[1] === subId,
                              { what: `COUNT for ${subId}` });
    if (m[0] === 'CLOSED') throw new Error(`COUNT ${subId} CLOSED: ${m[2]}`);
    return m[2].count;
  }

  close() {
    this.ws.close();
    return this.closed;
  }

  terminate() {
    this.ws.terminate();
  }
}

// A key pair from nostr-tools.
export function keys() {
  const sk = generateSecretKey();
  return { sk, pk: getPublicKey(sk) };
}

// A signed event (nostr-tools finalizeEvent, its pure-JS signer).
export function sign(sk, { kind = 1, content = '', tags = [], created_at = now() } = {}) {
  return finalizeEvent({ kind, content, tags, created_at }, sk);
}

// A copy of a signed event whose signature no longer matches (one hex digit changed): the relay
// refuses it with "invalid:".
export function badSignature(event) {
  return { ...event, sig: (event.sig[0] === '0' ? '1' : '0') + event.sig.slice(1) };
}

// The same through nostr-tools' WebAssembly signer (libsecp256k1 in nostr-wasm), several times
// faster: for the tests that sign hundreds of events.
let wasmReady;
export async function signer() {
  wasmReady ??= initNostrWasm().then((w) => wasm.setNostrWasm(w));
  await wasmReady;
  return (sk, { kind = 1, content = '', tags = [], created_at = now() } = {}) =>
    wasm.finalizeEvent({ kind, content, tags, created_at }, sk);
}

// Checks that a brand-new connection can publish and read back: the server is alive and serving.
export async function assertServes(server) {
  const c = await Client.connect(server.url);
  try {
    const { sk } = keys();
    const ev = sign(sk, { content: `alive check ${Math.random()}` });
    const ok = await c.publish(ev);
    if (!ok.ok) throw new Error(`alive check publish refused: ${ok.message}`);
    const got = await c.query({ ids: [ev.id] });
    if (got.length !== 1 || got[0].id !== ev.id) {
      throw new Error(`alive check REQ returned ${JSON.stringify(got)}`);
    }
  } finally {
    await c.close();
  }
}
