/**
 * Screenshots of the dashboard's pages for the docs, taken with Debian's Chromium (headless):
 *
 *   npx tsx dashboard/screenshots.ts --url http://127.0.0.1:8265/ --job <job id> [--step N --group G] [--out docs/img]
 *
 * Writes jobs.png, job.png (the whole page), trajectories.png and queues.png (PNG, 1200 px wide).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    job: { type: 'string' },
    step: { type: 'string' },
    group: { type: 'string' },
    out: { type: 'string', default: 'docs/img' },
  },
});
if (!values.url || !values.job) {
  console.error(
    'usage: npx tsx dashboard/screenshots.ts --url http://127.0.0.1:8265/ --job <job id> [--step N --group G] [--out docs/img]',
  );
  process.exit(2);
}
mkdirSync(values.out!, { recursive: true });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
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
const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
const job = encodeURIComponent(values.job);
const pick = values.step ? `?step=${values.step}&group=${values.group ?? 0}` : '';
// [file, route, selector that means loaded, whole page (the job page's curves are below the fold)]
const shots: Array<[string, string, string, boolean]> = [
  ['jobs.png', '', 'body[data-loaded="1"]', false],
  ['job.png', `jobs/${job}`, 'body[data-loaded="1"]', true],
  ['trajectories.png', `jobs/${job}/trajectories${pick}`, 'body[data-loaded="1"]', false],
  ['queues.png', 'queues', 'main, #root > *', false],
];
for (const [file, route, ready, fullPage] of shots) {
  await page.goto(new URL(route, values.url).href);
  await page.waitForSelector(ready, { timeout: 20_000 });
  await page.waitForTimeout(800);
  await page.screenshot({ path: path.join(values.out!, file), fullPage });
  console.log(path.join(values.out!, file));
}
await browser.close();
