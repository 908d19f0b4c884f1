/**
 * Shared setup of the dashboard tests: a small finished training job made by the real CLI against the
 * test's Redis, and a headless Chromium (Debian's package) with a fresh profile.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { runCli, tempDir, uniquePrefix } from '../helpers/services.js';

/** The tiny LOOP config the integration tests use (3 iterations, ~5 s). */
export const TINY = path.join('test', 'fixtures', 'configs', 'tiny.yaml');
/** Debian's Chromium; scripts/setup.sh --with-browser installs it. */
export const CHROMIUM = '/usr/bin/chromium';
/** Whether browser tests can run here; in CI a missing browser is a failure, not a skip. */
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
export const IN_CI = Boolean(process.env.CI);

/** Train the tiny config to completion under a fresh prefix; returns the prefix and the job id. */
export async function trainTinyJob(redisUrl: string, label: string): Promise<{ prefix: string; jobId: string }> {
  const prefix = uniquePrefix(label);
  const { dir, cleanup } = tempDir('dash-run');
  try {
    const r = await runCli(['train', TINY, '--run-dir', dir, '--redis', redisUrl, '--prefix', prefix, '--no-progress', '--no-dashboard'], {
      timeoutMs: 150_000,
    });
    if (r.code !== 0) throw new Error(`horizon train failed (${r.code}):\n${r.output}`);
    const jobId = /job (\S+): loop on/.exec(r.output)?.[1];
    if (!jobId) throw new Error(`no job id in the output of horizon train:\n${r.output}`);
    return { prefix, jobId };
  } finally {
    cleanup();
  }
}

/** Launch headless Chromium with a fresh user-data-dir; `close` also removes the profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const { chromium } = await import('playwright-core');
  const profile = tempDir('chromium-profile');
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      profile.cleanup();
    },
  };
}
