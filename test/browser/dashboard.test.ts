/**
 * The dashboard in a real browser (headless Chromium) against a real Redis holding a small finished
 * training job: every page loads, the reward chart drew exactly the recorded points, the trajectory viewer
 * shows the tokens of the chosen rollout, text from Redis never runs as HTML, and bad data gets a message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ByteTokenizer, EOT_ID } from '../../models/tokenizer.js';
import { loadConfigFile } from '../../configs/resolve.js';
import { JobControl } from '../../rollout/jobs.js';
import { jobKeys, type TrajectorySample } from '../../rollout/protocol.js';
import { startDashboard, type DashboardHandle } from '../../dashboard/server.js';
import { useTestRedis } from '../helpers/services.js';
import { HAVE_CHROMIUM, IN_CI, TINY, launchChromium, trainTinyJob } from './fixture.js';

const runBrowser = HAVE_CHROMIUM || IN_CI;
if (!runBrowser)
  console.warn(
    'SKIPPED test/browser/dashboard.test.ts: /usr/bin/chromium is missing (install it with `bash scripts/setup.sh --with-browser` as root)',
  );

describe.skipIf(!runBrowser)('dashboard in Chromium', () => {
  const redis = useTestRedis();
  let prefix = '';
  let jobId = '';
  let jobs: JobControl;
  let dashboard: DashboardHandle;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let context: BrowserContext;

  beforeAll(async () => {
    ({ prefix, jobId } = await trainTinyJob(redis.url(), 'dash-browser'));
    jobs = new JobControl(redis.client(), redis.url(), { prefix });
    dashboard = await startDashboard({ redisUrl: redis.url(), prefix, port: 0 });
    browser = await launchChromium();
    context = browser.context;
  });
  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await jobs?.close();
  });

  async function open(path: string): Promise<{ page: Page; status: number }> {
    const page = await context.newPage();
    const response = await page.goto(new URL(path, dashboard.url).href);
    await page.waitForSelector('body[data-loaded="1"]', { timeout: 15_000 });
    return { page, status: response?.status() ?? 0 };
  }

  it('lists the job with its state, iterations and algorithm', async () => {
    const { page, status } = await open('/');
    expect(status).toBe(200);
    const cells = await page.locator(`tr[data-job="${jobId}"] td`).allTextContents();
    expect(cells.slice(0, 4)).toEqual([jobId, 'completed', '3/3', '3']);
    expect(cells[5]).toBe('loop');
    expect(cells[6]).toBe('toy/guess');
    await page.close();
  });

  it('job page: status, config text, and a reward chart drawn from exactly the recorded points', async () => {
    const { page, status } = await open(`/jobs/${jobId}`);
    expect(status).toBe(200);
    expect(await page.locator('#state').textContent()).toBe('completed');
    expect(await page.locator('#progress-text').textContent()).toBe('iteration 3 of 3');
    expect(await page.locator('#config').textContent()).toContain('name: toy/guess');

    const recorded = (await jobs.metrics(jobId)).filter((m) => (m.step as number) >= 1);
    expect(recorded.length).toBe(3);
    const drawn = (await page.evaluate(
      () =>
        (window as unknown as { __dashboard: { charts: Record<string, { keys: string[]; x: number[]; ys: number[][] }> } }).__dashboard
          .charts.Reward,
    )) as {
      keys: string[];
      x: number[];
      ys: number[][];
    };
    expect(drawn.keys[0]).toBe('charts/reward_mean');
    expect(drawn.x).toEqual(recorded.map((m) => m.step));
    expect(drawn.ys[0]).toEqual(recorded.map((m) => m['charts/reward_mean']));
    // uPlot drew it: a canvas inside the chart card, which reports the same number of points.
    const card = page.locator('[data-chart="Reward"]');
    expect(await card.getAttribute('data-points')).toBe('3');
    expect(await card.locator('canvas').count()).toBeGreaterThan(0);
    // Failures by cause: totals match the records.
    const retries = recorded.reduce((a, m) => a + (m['rollout/retries'] as number), 0);
    expect(await page.locator('tr[data-cause="rollout/retries"] td').nth(1).textContent()).toBe(String(retries));
    expect(await page.locator('#message').isHidden()).toBe(true);
    await page.close();
  });

  it('trajectory viewer shows the tokens, mask, log-probs and advantage of the chosen rollout', async () => {
    const samples = await jobs.samples(jobId);
    const sample = samples.find((s) => s.step === 2)!;
    const group = sample.groups[1] ?? sample.groups[0];
    const { page, status } = await open(`/jobs/${jobId}/trajectories?step=2&group=${group.groupIndex}`);
    expect(status).toBe(200);
    expect(await page.locator('#step').inputValue()).toBe('2');
    expect(await page.locator('section[data-rollout]').count()).toBe(group.rollouts.length);

    const tokenizer = new ByteTokenizer();
    for (const [k, rollout] of group.rollouts.entries()) {
      const section = page.locator(`section[data-rollout="${k}"]`);
      const tokens = rollout.trajectory.segments.flatMap((s) => s.tokens);
      const mask = rollout.trajectory.segments.flatMap((s) => s.isOutput);
      const text = (await section.locator('.tok.policy, .tok.env').allTextContents()).join('');
      expect(text).toBe(tokenizer.decode(tokens));
      // The toy game is ASCII: one span per byte token, policy spans exactly where the mask is 1.
      expect(await section.locator('.tok.policy').count()).toBe(tokens.filter((t, i) => t < 256 && mask[i] === 1).length);
      expect(await section.locator('.tok.special', { hasText: '⏎EOT' }).count()).toBe(tokens.filter((t) => t === EOT_ID).length);
      expect(await section.locator('.advantage').textContent()).toBe(`advantage ${rollout.advantage.toFixed(4)}`);
      expect(await section.locator('.trained').textContent()).toBe(rollout.trained ? 'trained' : 'not trained (|A| filter)');
      for (const [part, value] of Object.entries(rollout.trajectory.reward.parts)) {
        expect(await section.locator(`[data-part="${part}"]`).textContent()).toBe(`${part} ${value.toFixed(4)}`);
      }
      // The first policy token's hover text carries its sampler log-prob.
      const firstPolicy = mask.findIndex((m, i) => m === 1 && tokens[i] < 256);
      if (firstPolicy >= 0) {
        const logProb = rollout.trajectory.segments.flatMap((s) => s.logProbs)[firstPolicy];
        expect(await section.locator('.tok.policy').first().getAttribute('title')).toContain(`log-prob ${logProb.toFixed(4)}`);
      }
    }

    // Picking another iteration in the select loads its groups.
    await page.evaluate(() => document.body.removeAttribute('data-loaded'));
    await page.locator('#step').selectOption('1');
    await page.waitForSelector('body[data-loaded="1"]');
    await page.waitForFunction(
      () => (window as unknown as { __dashboard: { trajectory?: { step: number } } }).__dashboard.trajectory?.step === 1,
    );
    expect(new URL(page.url()).searchParams.get('step')).toBe('1');
    await page.close();
  });

  it('renders text from Redis as text: a trajectory containing <script> does not run', async () => {
    const payload = '<script>window.__xss=1</script>';
    const tokenizer = new ByteTokenizer();
    const envTokens = [256, ...tokenizer.encode(`Say ${payload}: `)];
    const policyTokens = [...tokenizer.encode('<img src=x onerror="window.__xss=2">'), EOT_ID];
    const tokens = [...envTokens, ...policyTokens];
    const crafted: TrajectorySample = {
      step: 999,
      groups: [
        {
          groupIndex: 0,
          task: { split: 'train', index: 0, seed: 1 },
          rollouts: [
            {
              advantage: 0.5,
              trained: true,
              trajectory: {
                rolloutId: `${jobId}/x/999/0/0`,
                groupId: 'g',
                policyVersion: 3,
                segments: [
                  {
                    tokens,
                    isOutput: tokens.map((_, i) => (i >= envTokens.length ? 1 : 0)),
                    logProbs: tokens.map((_, i) => (i >= envTokens.length ? -0.25 : 0)),
                    turn: tokens.map(() => 0),
                  },
                ],
                reward: { total: 1, parts: { '<b onmouseover=alert(1)>bold</b>': 1 } },
                finishReason: 'done',
                turns: 1,
                retries: 0,
                wallMs: 5,
              },
            },
          ],
        },
      ],
    };
    await jobs.pushSample(jobId, crafted);
    const { page } = await open(`/jobs/${jobId}/trajectories?step=999&group=0`);
    const text = await page.locator('section[data-rollout="0"] .tokens').textContent();
    expect(text).toContain(payload);
    expect(text).toContain('<img src=x onerror="window.__xss=2">');
    expect(await page.locator('section[data-rollout="0"] .meta').textContent()).toContain('<b onmouseover=alert(1)>bold</b> 1.0000');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('#rollouts script, #rollouts img, #rollouts b').count()).toBe(0);
    await page.close();
  });

  it('unknown job, job without data and a malformed record each get a clear message', async () => {
    const unknown = await open('/jobs/no-such-job');
    expect(unknown.status).toBe(404);
    expect(await unknown.page.locator('#message').textContent()).toContain('no training job "no-such-job"');
    await unknown.page.close();

    // A submitted job that never ran: no metrics, no samples.
    const fresh = await jobs.submit(loadConfigFile(TINY, []), { jobId: 'never-ran', enqueue: false });
    const job = await open(`/jobs/${fresh}`);
    expect(await job.page.locator('#state').textContent()).toBe('queued');
    expect(await job.page.locator('#charts-empty').textContent()).toContain('no iterations recorded yet');
    await job.page.close();
    const traj = await open(`/jobs/${fresh}/trajectories`);
    expect(await traj.page.locator('#message').textContent()).toContain('no recorded trajectories yet');
    await traj.page.close();

    // A corrupted metrics record (not JSON) is reported, not a blank page.
    await redis.client().rpush(jobKeys(prefix, fresh).metrics, '{"step": 1, "charts/reward_mean":');
    const broken = await open(`/jobs/${fresh}`);
    expect(await broken.page.locator('#message').textContent()).toContain('not valid JSON');
    expect(await broken.page.locator('#state').textContent()).toBe('queued');
    await broken.page.close();
  });
});
