// ctest's entry point: `node run.mjs FILE.test.mjs` runs one test file under Node's built-in
// test runner, after checking that the npm packages are installed, so a missing `npm ci` is a
// clear failure rather than a module-resolution stack trace.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node run.mjs FILE.test.mjs...');
  process.exit(2);
}
const missing = ['ws', 'nostr-tools', 'playwright-core'].filter(
  (p) => !fs.existsSync(path.join(here, 'node_modules', p, 'package.json')),
);
if (missing.length > 0) {
  console.error(`interop: npm packages missing in ${path.join(here, 'node_modules')}: ` +
                `${missing.join(', ')}.\nRun scripts/install-deps (it runs \`npm ci\` in ` +
                'tests/interop) and try again.');
  process.exit(1);
}
// The binary each file drives: the desktop test runs the Qt app, the others relaycore-relay.
const binaries = new Map([['RELAYCORE_RELAY', 'relaycore-relay'],
                          ['RELAYCORE_DESKTOP', 'relaycore-desktop']]);
for (const name of new Set(files.map((f) => (path.basename(f).startsWith('desktop.')
  ? 'RELAYCORE_DESKTOP' : 'RELAYCORE_RELAY')))) {
  if (!process.env[name]) {
    console.error(`interop: ${name} is not set; run through ctest, or point it at the ` +
                  `${binaries.get(name)} binary.`);
    process.exit(1);
  }
}
const r = spawnSync(process.execPath, ['--test', ...files], { cwd: here, stdio: 'inherit' });
if (r.error) throw r.error;
process.exit(r.status ?? 1);
