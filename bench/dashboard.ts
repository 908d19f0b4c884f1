/**
 * The dashboard under a long job: a job record with 10,000 iterations of full metrics records (every key of
 * docs/metrics.md) and the newest 500 iterations of recorded trajectories, served by a real
 * `horizon dashboard` child process. Measures
 *   - the job page's JSON endpoints (status + config, all metrics, one trajectory group) and its HTML
 *     shell: median and p95 over repeated requests, and the bytes sent;
 *   - a full page load in headless Chromium (navigation until every chart is drawn), when
 *     /usr/bin/chromium exists;
 *   - the server's RSS while it is polled for a while the way open pages poll it (incremental
 *     `?from=` requests while a writer appends a record per iteration, plus a page opening now and
 *     then that fetches everything), sampled from /proc: start, peak, end and the slope over the second
 *     half (MB per minute; ~0 means bounded).
 *
 *   npx tsx bench/dashboard.ts [--iterations 10000] [--requests 20] [--page-loads 5] [--poll-seconds 60] [--json out.json]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { connectRedis } from '../rollout/connection.js';
import { JobControl } from '../rollout/jobs.js';
import { RETENTION, type TrajectorySample } from '../rollout/protocol.js';
import { ByteTokenizer, EOT_ID } from '../models/tokenizer.js';
import {
  HORIZON_BIN,
  benchConfig,
  intFlag,
  machineInfo,
  machineLine,
  markdownTable,
  mean,
  parseFlags,
  percentile,
  processMemoryMb,
  progress,
  sleep,
  slope,
  startBenchRedis,
  writeJsonIfAsked,
} from './lib.js';

const USAGE = 'npx tsx bench/dashboard.ts [--iterations 10000] [--requests 20] [--page-loads 5] [--poll-seconds 60] [--json out.json]';
const CHROMIUM = '/usr/bin/chromium';

/** One metrics record as the learner writes it (values vary smoothly so the curves are not flat). */
function metricsRecord(step: number): Record<string, number> {
  const t = step / 1000;
  return {
    step,
    'charts/reward_mean': 0.5 + 0.4 * Math.tanh(t) + 0.02 * Math.sin(step),
    'charts/success_rate': 0.4 + 0.5 * Math.tanh(t),
    'charts/episode_turns': 3 + Math.cos(step / 7),
    'charts/episode_tokens': 90 + (step % 11),
    'losses/loss': 0.1 / (1 + t) + 0.01 * Math.sin(step / 3),
    'losses/policy_loss': 0.09 / (1 + t),
    'losses/approx_kl': 0.001 + 0.0005 * Math.sin(step / 5),
    'losses/clipfrac': 0.05 + 0.01 * Math.cos(step / 9),
    'losses/ratio_mean': 1 + 0.001 * Math.sin(step),
    'losses/ratio_max': 1.2,
    'losses/grad_norm': 0.5 + 0.1 * Math.sin(step / 13),
    'losses/steps': 4,
    'losses/aborted': 0,
    'losses/logprob_mismatch': 1e-7,
    'rollout/episodes': 96,
    'rollout/episodes_per_s': 40 + (step % 7),
    'rollout/tokens_per_s': 1200 + (step % 13),
    'rollout/filtered': step % 5,
    'rollout/cancelled': step % 3,
    'rollout/failed_groups': step % 97 === 0 ? 1 : 0,
    'rollout/retries': step % 31 === 0 ? 1 : 0,
    'rollout/duplicates': 0,
    'rollout/staleness': 0,
    'rewards/solved': 0.4 + 0.5 * Math.tanh(t),
    'rewards/guesses': 3,
    'time/collect_s': 2.1,
    'time/update_s': 0.4,
    'time/elapsed_s': step * 2.5,
    'time/trained_tokens': 5000,
  };
}

/** A recorded iteration shaped like the tiny config's: 2 groups × 3 rollouts of ~100 tokens. */
function sampleRecord(step: number): TrajectorySample {
  const tokenizer = new ByteTokenizer();
  const groups = [0, 1].map((groupIndex) => ({
    groupIndex,
    task: { split: 'train', index: step * 2 + groupIndex, seed: 3 },
    rollouts: [0, 1, 2].map((k) => {
      const env = [256, ...tokenizer.encode(`Guess my number (1-8). Turn ${k}: too low, try again between 3 and 8. `)];
      const policy = [...tokenizer.encode('5'), EOT_ID];
      const tokens = [...env, ...policy, ...env.slice(1), ...policy];
      const isOutput = tokens.map((t, i) =>
        (i >= env.length && i < env.length + policy.length) || i >= tokens.length - policy.length ? 1 : 0,
      ) as (0 | 1)[];
      return {
        advantage: k - 1,
        trained: k !== 1,
        trajectory: {
          rolloutId: `bench/1/${step}/${groupIndex}/${k}`,
          groupId: `g${groupIndex}`,
          policyVersion: step - 1,
          segments: [
            { tokens, isOutput, logProbs: isOutput.map((m) => (m ? -0.7 : 0)), turn: tokens.map((_, i) => (i < env.length ? 0 : 1)) },
          ],
          reward: { total: k / 2, parts: { solved: k === 2 ? 1 : 0, guesses: 2 } },
          finishReason: 'done' as const,
          turns: 2,
          retries: 0,
          wallMs: 40,
        },
      };
    }),
  }));
  return { step, groups };
}

/** Where the page's latest update spent its time (ms), as app.js records it. */
interface PageTimings {
  fetch: number;
  ingest: number;
  draw: number;
}

async function timed(url: string): Promise<{ ms: number; bytes: number; status: number }> {
  const start = performance.now();
  const res = await fetch(url);
  const body = await res.arrayBuffer();
  return { ms: performance.now() - start, bytes: body.byteLength, status: res.status };
}

async function main(): Promise<void> {
  const flags = parseFlags(USAGE, { iterations: '10000', requests: '20', 'page-loads': '5', 'poll-seconds': '60', json: '' });
  const iterations = intFlag(flags.iterations, 'iterations');
  const requests = intFlag(flags.requests, 'requests');
  const pageLoads = intFlag(flags['page-loads'], 'page-loads', 0);
  const pollSeconds = intFlag(flags['poll-seconds'], 'poll-seconds', 0);
  const info = machineInfo('none (no tensors)');

  const redisService = await startBenchRedis();
  const url = redisService.server.url;
  const redis = await connectRedis(url);
  const prefix = 'bench-dashboard';
  const jobs = new JobControl(redis, url, { prefix });
  const config = benchConfig('test/fixtures/configs/tiny.yaml', [`train.iterations=${iterations + 1000}`]);
  const jobId = await jobs.submit(config, { jobId: 'long-job', enqueue: false });
  progress(`writing ${iterations} metrics records and ${RETENTION.samples} recorded iterations`);
  await jobs.replaceMetrics(
    jobId,
    Array.from({ length: iterations }, (_, i) => metricsRecord(i + 1)),
  );
  for (let step = Math.max(1, iterations - RETENTION.samples + 1); step <= iterations; step++)
    await jobs.pushSample(jobId, sampleRecord(step));
  await jobs.update(jobId, {
    state: 'running',
    iteration: iterations,
    policyVersion: iterations,
    attempt: 1,
    startedAt: Date.now(),
    rewardMean: 0.9,
  });

  const child = spawn(process.execPath, [HORIZON_BIN, 'dashboard', '--redis', url, '--prefix', prefix, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /dashboard: (http:\/\/\S+\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`horizon dashboard exited (${code}): ${out}`)));
  });
  const rssAtStart = processMemoryMb(child.pid!)!.rssMb;
  progress(`dashboard at ${base} (RSS ${rssAtStart.toFixed(1)} MB)`);

  // ---- endpoints ----
  const endpoints: Array<[string, string]> = [
    ['job page HTML shell', `jobs/${jobId}`],
    ['/api/jobs/:id (status + config)', `api/jobs/${jobId}`],
    [`/api/jobs/:id/metrics (all ${iterations} records)`, `api/jobs/${jobId}/metrics`],
    ['/api/jobs/:id/metrics?from=last (one poll)', `api/jobs/${jobId}/metrics?from=${iterations - 1}`],
    [`/api/jobs/:id/samples (index of ${RETENTION.samples} iterations)`, `api/jobs/${jobId}/samples`],
    ['/api/jobs/:id/samples/:step/:group (one group)', `api/jobs/${jobId}/samples/${iterations}/0`],
  ];
  const endpointRows: Array<(string | number)[]> = [];
  const endpointJson: Record<string, unknown> = {};
  for (const [label, path] of endpoints) {
    await timed(base + path); // warm-up
    const runs: number[] = [];
    let bytes = 0;
    for (let i = 0; i < requests; i++) {
      const r = await timed(base + path);
      if (r.status !== 200) throw new Error(`${path} answered ${r.status}`);
      runs.push(r.ms);
      bytes = r.bytes;
    }
    endpointRows.push([label, percentile(runs, 50), percentile(runs, 95), bytes / 1024]);
    endpointJson[label] = { medianMs: percentile(runs, 50), p95Ms: percentile(runs, 95), bytes };
  }
  const dataMs =
    (endpointJson[endpoints[1][0]] as { medianMs: number }).medianMs + (endpointJson[endpoints[2][0]] as { medianMs: number }).medianMs;

  // ---- full page load in Chromium ----
  const pageRows: Array<(string | number)[]> = [];
  let pageLoadMs: number[] = [];
  const pageTimings: PageTimings[] = [];
  let charts = 0;
  if (pageLoads > 0 && existsSync(CHROMIUM)) {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
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
    const context = await browser.newContext();
    for (let i = 0; i <= pageLoads; i++) {
      const page = await context.newPage();
      const start = performance.now();
      await page.goto(`${base}jobs/${jobId}`);
      await page.waitForSelector('body[data-loaded="1"]', { timeout: 60_000 });
      const ms = performance.now() - start;
      const points = await page.locator('[data-chart="Reward"]').getAttribute('data-points');
      if (points !== String(iterations)) throw new Error(`the reward chart drew ${points} points, expected ${iterations}`);
      const timings = (await page.evaluate(
        () => (window as unknown as { __dashboard: { timings: PageTimings } }).__dashboard.timings,
      )) as PageTimings;
      charts = await page.locator('[data-chart]').count();
      if (i > 0) {
        // The first load also fills Chromium's cache of uPlot and the script.
        pageLoadMs.push(ms);
        pageTimings.push(timings);
      }
      await page.close();
    }
    await browser.close();
    pageRows.push([
      `job page, ${iterations} iterations, ${charts} charts`,
      percentile(pageLoadMs, 50),
      percentile(pageLoadMs, 95),
      mean(pageTimings.map((t) => t.fetch)),
      mean(pageTimings.map((t) => t.ingest)),
      mean(pageTimings.map((t) => t.draw)),
    ]);
  } else {
    progress(pageLoads > 0 ? `${CHROMIUM} is missing: no browser page-load measurement` : 'page loads skipped (--page-loads 0)');
    pageLoadMs = [];
  }

  // ---- RSS while polling ----
  const rss: Array<{ s: number; mb: number }> = [];
  let polls = 0;
  let fullLoads = 0;
  if (pollSeconds > 0) {
    progress(`polling for ${pollSeconds} s`);
    const start = performance.now();
    const elapsed = () => (performance.now() - start) / 1000;
    let next = iterations;
    let step = iterations;
    let lastFull = 0;
    const sampler = setInterval(() => {
      const m = processMemoryMb(child.pid!);
      if (m) rss.push({ s: elapsed(), mb: m.rssMb });
    }, 500);
    while (elapsed() < pollSeconds) {
      // A running job: one new iteration recorded every ~200 ms (both metrics and a trajectory sample).
      if (polls % 2 === 0) {
        step++;
        await jobs.pushMetrics(jobId, metricsRecord(step));
        await jobs.pushSample(jobId, sampleRecord(step));
        await jobs.update(jobId, { iteration: step, policyVersion: step });
      }
      // Four open pages polling status and new metrics.
      for (let p = 0; p < 4; p++) {
        await timed(`${base}api/jobs/${jobId}`);
        const body = (await (await fetch(`${base}api/jobs/${jobId}/metrics?from=${next}`)).json()) as { next: number };
        if (p === 3) next = body.next;
      }
      polls++;
      // Every 2 s a page opens: everything at once.
      if (elapsed() - lastFull > 2) {
        await timed(`${base}api/jobs/${jobId}/metrics`);
        await timed(`${base}api/jobs/${jobId}/samples/${step}/1`);
        fullLoads++;
        lastFull = elapsed();
      }
      await sleep(100);
    }
    clearInterval(sampler);
  }

  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await jobs.close();
  redis.disconnect();
  await redisService.stop();

  console.log(`## Dashboard: a job with ${iterations.toLocaleString('en-US')} iterations\n`);
  console.log(machineLine(info));
  console.log(`\nServer-side time per request (fetch from the same machine, ${requests} requests after a warm-up):\n`);
  console.log(markdownTable(['request', 'median ms', 'p95 ms', 'KB sent'], endpointRows));
  console.log(`\nJob page data (status + all metrics), median: ${dataMs.toFixed(0)} ms.`);
  if (pageRows.length) {
    console.log(
      `\nFull page load in headless Chromium (navigation until every chart is drawn; ${pageLoadMs.length} loads after one warm-up):\n`,
    );
    console.log(markdownTable(['page', 'median ms', 'p95 ms', 'of which: metrics fetch ms', 'merge ms', 'draw (uPlot) ms'], pageRows));
  }
  if (rss.length) {
    const half = rss.filter((r) => r.s >= pollSeconds / 2);
    const perMin = slope(half.map((r) => ({ x: r.s / 60, y: r.mb })));
    console.log(
      `\nServer RSS while polled for ${pollSeconds} s (${polls} rounds of 4 pages × (status + metrics?from=), ${fullLoads} full page data loads, one new iteration per 2 rounds):\n`,
    );
    console.log(
      markdownTable(
        ['RSS at start MB', 'peak MB', 'end MB', 'mean 2nd half MB', 'slope 2nd half MB/min'],
        [[rssAtStart, Math.max(...rss.map((r) => r.mb)), rss[rss.length - 1].mb, mean(half.map((r) => r.mb)), perMin]],
      ),
    );
  }
  writeJsonIfAsked(typeof flags.json === 'string' && flags.json ? flags.json : undefined, {
    machine: info,
    iterations,
    endpoints: endpointJson,
    dataMs,
    pageLoadMs,
    pageTimings,
    rss,
    polls,
    fullLoads,
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
