// relaycore-desktop, the Qt example app, on a virtual X display (Xvfb): another app publishes a
// note into the app's relay over WebSocket with nostr-tools and the note reaches the window's feed;
// the app's own note, signed with the key it keeps in its data directory, reaches WebSocket
// clients; SIGTERM closes it cleanly; the key and the feed survive a restart. The window's
// screenshot is kept in $RELAYCORE_ARTIFACTS/desktop.png.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { getPublicKey, verifyEvent } from 'nostr-tools/pure';

import { Client, artifactsDir, keys, sign, tempDir } from './lib/harness.mjs';

const kWaitMs = 20000;

// Children still running: killed if this process ends early, so none outlives a failed run.
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function track(child) {
  running.add(child);
  child.on('exit', () => running.delete(child));
  return child;
}

// Starts Xvfb on a display it picks itself (-displayfd: no race for a free display number) and
// resolves with ":N" once it writes the number, which it does when it accepts clients.
function startXvfb() {
  const bin = process.env.RELAYCORE_XVFB || 'Xvfb';
  const xvfb = track(spawn(bin, ['-displayfd', '3', '-nolisten', 'tcp', '-screen', '0',
                                 '1024x768x24'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] }));
  let log = '';
  xvfb.stderr.on('data', (d) => { log += d; });
  return new Promise((resolve, reject) => {
    let fd3 = '';
    const timer = setTimeout(() => reject(new Error(`Xvfb did not start in ${kWaitMs} ms:\n${log}`)),
                             kWaitMs);
    xvfb.stdio[3].on('data', (d) => {
      fd3 += d;
      if (fd3.includes('\n')) {
        clearTimeout(timer);
        resolve({ process: xvfb, display: `:${fd3.trim()}` });
      }
    });
    xvfb.on('error', reject);
    xvfb.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`Xvfb exited (${code ?? signal}):\n${log}`));
    });
  });
}

// A running relaycore-desktop, and the lines it prints.
class DesktopApp {
  constructor(args, env) {
    const bin = process.env.RELAYCORE_DESKTOP;
    assert.ok(bin && fs.existsSync(bin), `RELAYCORE_DESKTOP=${bin} is not the app's binary`);
    this.output = '';
    this.watchers = new Set();
    this.child = track(spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    const onData = (d) => {
      this.output += d;
      for (const w of this.watchers) w();
    };
    this.child.stdout.on('data', onData);
    this.child.stderr.on('data', onData);
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': by then all of its output has been read.
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        for (const w of this.watchers) w();
        resolve(this.exit);
      });
    });
  }

  // The match of the first line "relaycore-desktop: <pattern>" printed so far or later; fails
  // when the app exits or nothing matches in time.
  waitFor(pattern, what) {
    const re = new RegExp(`^relaycore-desktop: ${pattern}$`, 'm');
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.output.match(re);
        if (!m && !this.exit) return;
        this.watchers.delete(check);
        clearTimeout(timer);
        if (m) resolve(m);
        else reject(new Error(`the app exited (${JSON.stringify(this.exit)}) before ${what}:\n` +
                              this.output));
      };
      const timer = setTimeout(() => {
        this.watchers.delete(check);
        reject(new Error(`no ${what} in ${kWaitMs} ms:\n${this.output}`));
      }, kWaitMs);
      this.watchers.add(check);
      check();
    });
  }

  async listening() {
    const [, pubkey] = await this.waitFor('pubkey ([0-9a-f]{64})', 'pubkey line');
    const [, url] = await this.waitFor('listening (ws://127\\.0\\.0\\.1:\\d+)', 'listening line');
    return { pubkey, url };
  }

  // SIGTERM, then the exit status.
  async stop() {
    if (!this.exit) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), kWaitMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}

let xvfb;
let env;
let dataDir;
const screenshot = path.join(artifactsDir(), 'desktop.png');
const ownText = `hello from the desktop app ${Date.now()}`;
let ownNote;
let outsideNote;
let firstPubkey;

before(async () => {
  xvfb = await startXvfb();
  const home = tempDir();
  dataDir = path.join(home, 'data');
  const runtime = path.join(home, 'runtime');
  fs.mkdirSync(runtime, { mode: 0o700 });
  // The app's own X display, runtime directory and no session bus: nothing reaches the desktop
  // of whoever runs the test (without an address, libdbus would try to launch a bus for the
  // display, and leaks a buffer when it cannot).
  env = { ...process.env, DISPLAY: xvfb.display, QT_QPA_PLATFORM: 'xcb', XDG_RUNTIME_DIR: runtime,
          DBUS_SESSION_BUS_ADDRESS: 'disabled:' };
  fs.rmSync(screenshot, { force: true });
});

after(() => {
  if (xvfb) xvfb.process.kill('SIGTERM');
  if (dataDir) fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
});

test('a note published over WebSocket shows in the window, and the app\'s own note is signed ' +
     'with the key in its data directory', { timeout: 120000 }, async (t) => {
  const app = new DesktopApp(['--data-dir', dataDir, '--port', '0', '--post', ownText,
                              '--screenshot', screenshot], env);
  try {
    const { pubkey, url } = await app.listening();
    firstPubkey = pubkey;

    // The key: made on the first run, readable by its owner only, and the one the app signs with.
    const keyFile = path.join(dataDir, 'secret.key');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600, 'secret.key is not 0600');
    const secret = fs.readFileSync(keyFile, 'utf8').trim();
    assert.match(secret, /^[0-9a-f]{64}$/);
    assert.equal(getPublicKey(Uint8Array.from(Buffer.from(secret, 'hex'))), pubkey);

    const client = await Client.connect(url);
    try {
      // Another app's note, signed by nostr-tools, reaches the feed.
      outsideNote = sign(keys().sk, { content: 'hello from another app on this machine' });
      assert.deepEqual(await client.publish(outsideNote), { ok: true, message: '' });
      await app.waitFor(`shown ${outsideNote.id}`, `"shown" line for ${outsideNote.id}`);

      // The note posted in the app is on the relay every local app shares, signed with its key,
      // and in the app's own feed.
      const stored = await client.req('mine', { authors: [pubkey] });
      assert.ok(stored.length <= 1, JSON.stringify(stored));
      ownNote = stored[0] ?? (await client.next((m) => m[0] === 'EVENT' && m[1] === 'mine',
                                                { what: 'the app\'s own note' }))[2];
      client.send(['CLOSE', 'mine']);
      assert.equal(ownNote.pubkey, pubkey);
      assert.equal(ownNote.kind, 1);
      assert.equal(ownNote.content, ownText);
      assert.ok(verifyEvent({ ...ownNote }), 'nostr-tools rejects the app\'s signature');
      await app.waitFor(`shown ${ownNote.id}`, 'the app\'s own note in its feed');
    } finally {
      await client.close();
    }
  } finally {
    const { code, signal } = await app.stop();
    assert.equal(signal, null, `the app was killed by ${signal}:\n${app.output}`);
    assert.equal(code, 0, `exit status after SIGTERM:\n${app.output}`);
  }
  // SIGTERM saved the window, with both notes in it, then drained the relay.
  for (const line of [`screenshot ${screenshot}`, 'stopped']) {
    assert.ok(app.output.includes(`\nrelaycore-desktop: ${line}\n`), `no "${line}":\n${app.output}`);
  }
  const png = fs.readFileSync(screenshot);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  assert.ok(width >= 300 && height >= 200, `screenshot is ${width}x${height}`);
  t.diagnostic(`screenshot: ${screenshot} (${width}x${height})`);
});

test('a restart on the same data directory keeps the key and shows both notes again',
     { timeout: 120000 }, async () => {
  assert.ok(ownNote && outsideNote, 'the first test did not get as far as its notes');
  const app = new DesktopApp(['--data-dir', dataDir, '--port', '0'], env);
  try {
    const { pubkey } = await app.listening();
    assert.equal(pubkey, firstPubkey, 'a new key was made on restart');
    await app.waitFor(`shown ${outsideNote.id}`, 'the other app\'s note after restart');
    await app.waitFor(`shown ${ownNote.id}`, 'the app\'s own note after restart');
  } finally {
    const { code, signal } = await app.stop();
    assert.equal(signal, null, `the app was killed by ${signal}:\n${app.output}`);
    assert.equal(code, 0, `exit status after SIGTERM:\n${app.output}`);
  }
});
