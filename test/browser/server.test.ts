/**
 * The dashboard server without a browser: safe binding, the token, bull-board's read-only mode, the DNS
 * rebinding guard, incremental metrics and the JSON errors. Runs against a real Redis.
 */
import http from 'node:http';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobControl } from '../../rollout/jobs.js';
import { QUEUES } from '../../rollout/protocol.js';
import { queueConnection } from '../../rollout/queue-connection.js';
import { checkBindSafety, isLoopbackHost, startDashboard, type DashboardHandle } from '../../dashboard/server.js';
import { segmentPieces } from '../../dashboard/trajectory.js';
import { runCli, startCli, tempDir, uniquePrefix, useTestRedis, waitFor } from '../helpers/services.js';
import { TINY } from './fixture.js';

const redis = useTestRedis();

/** GET/PUT with an explicit Host header (fetch does not let a caller set one). */
function request(
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('binding', () => {
  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.3.2.1', 'localhost', '::1', '[::1]'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.5', 'example.com', '127.0.0.1.example.com'].some(isLoopbackHost)).toBe(false);
  });

  it('refuses a non-loopback host without a token, before connecting anywhere', async () => {
    expect(() => checkBindSafety('0.0.0.0', undefined)).toThrow(/refusing to serve the dashboard on 0\.0\.0\.0 without a token/);
    expect(() => checkBindSafety('0.0.0.0', 's3cret')).not.toThrow();
    await expect(startDashboard({ redisUrl: redis.url(), host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'E_DASHBOARD_UNSAFE' });
    const cli = await runCli(['dashboard', '--redis', redis.url(), '--host', '0.0.0.0', '--port', '0'], { timeoutMs: 30_000 });
    expect(cli.code).toBe(1);
    expect(cli.output).toContain('E_DASHBOARD_UNSAFE');
  });
});

describe('with a token', () => {
  let dashboard: DashboardHandle;
  beforeAll(async () => {
    dashboard = await startDashboard({
      redisUrl: redis.url(),
      prefix: uniquePrefix('dash-token'),
      host: '0.0.0.0',
      port: 0,
      token: 's3cret',
    });
  });
  afterAll(() => dashboard?.close());

  it('answers 401 without the token or with a wrong one, and serves it with the right one', async () => {
    const base = `http://127.0.0.1:${dashboard.port}`;
    for (const path of ['/', '/api/jobs', '/queues', '/queues/api/queues', '/assets/app.js']) {
      expect((await request(base + path)).status).toBe(401);
      expect((await request(base + path, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    }
    const ok = await request(`${base}/api/jobs`, { headers: { authorization: 'Bearer s3cret' } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).jobs).toEqual([]);
    // ?token= works once and leaves an HttpOnly cookie the page's own requests then carry.
    const viaQuery = await request(`${base}/?token=s3cret`);
    expect(viaQuery.status).toBe(200);
    const cookie = String(viaQuery.headers['set-cookie']);
    expect(cookie).toMatch(/HttpOnly/);
    expect((await request(`${base}/api/jobs`, { headers: { cookie: cookie.split(';')[0] } })).status).toBe(200);
    expect((await request(`${base}/queues/api/queues`, { headers: { cookie: 'horizon_dashboard_token=nope' } })).status).toBe(401);
  });
});

describe('on loopback without a token', () => {
  const prefix = uniquePrefix('dash-ro');
  let readOnly: DashboardHandle;
  let actions: DashboardHandle;
  let rollouts: Queue;
  beforeAll(async () => {
    readOnly = await startDashboard({ redisUrl: redis.url(), prefix, port: 0 });
    actions = await startDashboard({ redisUrl: redis.url(), prefix, port: 0, allowActions: true });
    rollouts = new Queue(QUEUES.rollouts, { connection: queueConnection(redis.url()), prefix });
  });
  afterAll(async () => {
    await rollouts?.close();
    await readOnly?.close();
    await actions?.close();
  });

  it('refuses requests for another Host name (DNS rebinding)', async () => {
    expect((await request(`${readOnly.url}api/jobs`, { headers: { host: 'attacker.example' } })).status).toBe(403);
    expect((await request(`${readOnly.url}api/jobs`, { headers: { host: `localhost:${readOnly.port}` } })).status).toBe(200);
  });

  it('is read-only: bull-board retry, clean and remove are refused, and the job stays', async () => {
    const job = await rollouts.add('group', { n: 1 }, { jobId: 'g-1' });
    const queueApi = `${readOnly.url}queues/api/queues/${QUEUES.rollouts}`;
    const attempts = [
      request(`${queueApi}/${job.id}/retry`, { method: 'PUT' }),
      request(`${queueApi}/${job.id}/clean`, { method: 'PUT' }),
      request(`${queueApi}/retry/failed`, { method: 'PUT' }),
      request(`${queueApi}/clean/waiting`, { method: 'PUT' }),
      request(`${queueApi}/empty`, { method: 'PUT' }),
      request(`${queueApi}/pause`, { method: 'PUT' }),
    ];
    for (const r of await Promise.all(attempts)) {
      expect(r.status).toBe(405);
      expect(r.body).toContain('QUEUE_READ_ONLY');
    }
    expect(await rollouts.getJob('g-1')).toBeDefined();
    expect(await rollouts.isPaused()).toBe(false);
    // Reading still works.
    const list = await request(`${readOnly.url}queues/api/queues`);
    expect(list.status).toBe(200);
    expect(JSON.parse(list.body).queues.map((q: { name: string; readOnlyMode: boolean }) => [q.name, q.readOnlyMode])).toEqual([
      ['jobs', true],
      ['rollouts', true],
    ]);

    // With --allow-actions the same request removes the job.
    const removed = await request(`${actions.url}queues/api/queues/${QUEUES.rollouts}/${job.id}/clean`, { method: 'PUT' });
    expect(removed.status).toBe(204);
    expect(await rollouts.getJob('g-1')).toBeUndefined();
  });

  it('serves metrics incrementally with ?from= and answers JSON errors', async () => {
    const jobs = new JobControl(redis.client(), redis.url(), { prefix });
    await redis
      .client()
      .hset(`${prefix}:job:m1`, { state: 'running', name: 'm', algorithm: 'loop', env: 'toy/guess', iteration: 3, iterations: 5 });
    for (let step = 1; step <= 3; step++)
      await jobs.pushMetrics('m1', { step, 'charts/reward_mean': step / 10, 'losses/grad_norm': step, note: 'x' });
    const all = JSON.parse((await request(`${readOnly.url}api/jobs/m1/metrics`)).body);
    expect(all).toEqual({
      from: 0,
      next: 3,
      keys: ['step', 'charts/reward_mean', 'losses/grad_norm'],
      columns: [
        [1, 2, 3],
        [0.1, 0.2, 0.3],
        [1, 2, 3],
      ],
    });
    const rest = JSON.parse((await request(`${readOnly.url}api/jobs/m1/metrics?from=2`)).body);
    expect(rest).toMatchObject({ from: 2, next: 3, columns: [[3], [0.3], [3]] });
    const none = JSON.parse((await request(`${readOnly.url}api/jobs/m1/metrics?from=3`)).body);
    expect(none).toEqual({ from: 3, next: 3, keys: [], columns: [] });

    const bad = await request(`${readOnly.url}api/jobs/m1/metrics?from=-1`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toContain('?from= expects a whole number');
    const missing = await request(`${readOnly.url}api/jobs/nope/metrics`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).error).toContain('no training job "nope"');
    const noSample = await request(`${readOnly.url}api/jobs/m1/samples/1/0`);
    expect(noSample.status).toBe(404);
    expect(JSON.parse(noSample.body).error).toBe('no trajectories recorded for iteration 1 (recorded: none)');
    await jobs.close();
  });

  it('escapes the job id in the server-rendered page shell', async () => {
    const page = await request(`${readOnly.url}jobs/${encodeURIComponent('<img src=x>')}`);
    expect(page.status).toBe(404);
    expect(page.body).not.toContain('<img src=x>');
    expect(page.body).toContain('&lt;img src=x&gt;');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  });
});

describe('from the CLI', () => {
  it('`horizon dashboard` prints its URL, serves, and stops on SIGTERM', async () => {
    const proc = startCli(['dashboard', '--redis', redis.url(), '--prefix', uniquePrefix('dash-cli'), '--port', '0']);
    const url = await waitFor(() => /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(proc.output())?.[1], 30_000, 'the dashboard URL');
    const jobs = await request(`${url}api/jobs`);
    expect(jobs.status).toBe(200);
    expect(JSON.parse(jobs.body)).toMatchObject({ readOnly: true, jobs: [] });
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  });

  it('`horizon train` serves the dashboard for its job while it runs (and not with --no-dashboard)', async () => {
    const prefix = uniquePrefix('dash-train');
    const { dir, cleanup } = tempDir('dash-train');
    const proc = startCli([
      'train',
      TINY,
      '--run-dir',
      dir,
      '--redis',
      redis.url(),
      '--prefix',
      prefix,
      '--no-progress',
      '--set',
      'train.iterations=6',
    ]);
    const [, url, jobId] = await waitFor(
      () => /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)jobs\/(\S+)/.exec(proc.output()) ?? undefined,
      60_000,
      'the dashboard URL',
    );
    const job = await request(`${url}api/jobs/${jobId}`);
    expect(job.status).toBe(200);
    expect(JSON.parse(job.body).status).toMatchObject({ jobId, iterations: 6 });
    expect(await proc.exited).toBe(0);
    await expect(request(`${url}api/jobs`)).rejects.toThrow(/ECONNREFUSED/);
    const quiet = await runCli(
      [
        'train',
        TINY,
        '--run-dir',
        dir,
        '--redis',
        redis.url(),
        '--prefix',
        prefix,
        '--no-progress',
        '--no-dashboard',
        '--set',
        'train.iterations=1',
      ],
      { timeoutMs: 120_000 },
    );
    expect(quiet.code).toBe(0);
    expect(quiet.output).not.toContain('dashboard:');
    cleanup();
  });
});

describe('trajectory pieces', () => {
  it('keeps a multi-byte character whole, splits on the policy mask, and marks special ids', () => {
    // "é" is C3 A9; "€" is E2 82 AC; 257 = EOT; the last C3 has no continuation byte.
    const tokens = [256, 0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 257, 0xc3];
    const pieces = segmentPieces({
      tokens,
      isOutput: [0, 0, 1, 1, 0, 1, 1, 1, 0],
      logProbs: [0, 0, -0.5, -0.25, 0, -1, -2, -0.1, 0],
      turn: [-1, -1, 0, 0, 0, 0, 0, 0, 1],
    });
    expect(pieces.map((p) => [p.text, p.kind, p.ids])).toEqual([
      ['⟨BOS⟩', 'special', [256]],
      ['a', 'env', [0x61]],
      ['é', 'policy', [0xc3, 0xa9]],
      // The mask changes inside "€": its bytes cannot form one piece, each is shown as U+FFFD.
      ['\ufffd', 'env', [0xe2]],
      ['\ufffd', 'policy', [0x82]],
      ['\ufffd', 'policy', [0xac]],
      ['⏎EOT', 'special', [257]],
      ['\ufffd', 'env', [0xc3]],
    ]);
    expect(pieces[2].logProbs).toEqual([-0.5, -0.25]);
    expect(pieces[6].isOutput).toBe(true);
    expect(pieces[7].turn).toBe(1);
  });
});
