// Debian's Chromium driven by playwright-core, which never downloads a browser here. Outside CI
// a test skips when Chromium is missing; in CI it fails.
import fs from 'node:fs';

import { chromium } from 'playwright-core';

export const chromiumPath = process.env.RELAYCORE_CHROMIUM || '/usr/bin/chromium';
export const haveChromium = fs.existsSync(chromiumPath);

// The `skip` option for a test that needs Chromium.
export const skipWithoutChromium = !haveChromium && !process.env.CI
  ? `${chromiumPath} is not installed (run scripts/install-deps); skipped outside CI`
  : false;

// A headless Chromium that reaches out to nothing by itself (no updates, sync or QUIC).
export function launchChromium() {
  if (!haveChromium) {
    throw new Error(`${chromiumPath} is missing: scripts/install-deps installs chromium`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
