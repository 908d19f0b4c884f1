/**
 * The distributed pipeline against a real redis-server with real processes: a `horizon learner` and two
 * `horizon worker` processes train a tiny LOOP job; a worker SIGKILLed mid-group has its group redone and
 * no rollout is trained on twice; a learner SIGKILLed mid-run is resumed from its last checkpoint.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { JobControl } from '../../rollout/jobs.js';
import { QUEUES } from '../../rollout/protocol.js';
import { queueConnection } from '../../rollout/queue-connection.js';
import { REPO, runCli, startCli, tempDir, uniquePrefix, useTestRedis, waitFor, type CliProcess } from '../helpers/services.js';

const TINY = path.join(REPO, 'test/fixtures/configs/tiny.yaml');

const testRedis = useTestRedis();

interface Cluster {
  readonly prefix: string;
  readonly runsDir: string;
  readonly jobs: JobControl;
  learner: CliProcess;
  readonly workers: CliProcess[];
  stop(): Promise<void>;
}

function startCluster(label: string, runsDir: string): Cluster {
  const prefix = uniquePrefix(label);
  const url = testRedis.url();
  const learner = startCli(['learner', '--redis', url, '--prefix', prefix, '--runs-dir', runsDir]);
  const workers = [0, 1].map(() => startCli(['worker', '--redis', url, '--prefix', prefix]));
  const cluster: Cluster = {
    prefix,
    runsDir,
    jobs: new JobControl(testRedis.client(), url, { prefix }),
    learner,
    workers,
    async stop() {
      for (const p of [cluster.learner, ...workers]) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await Promise.all([cluster.learner, ...workers].map((p) => p.exited));
      await cluster.jobs.close();
    },
  };
  return cluster;
}

async function submit(cluster: Cluster, sets: string[]): Promise<string> {
  const result = await runCli([
    'submit',
    TINY,
    '--redis',
    testRedis.url(),
    '--prefix',
    cluster.prefix,
    ...sets.flatMap((s) => ['--set', s]),
  ]);
  expect(result.code, result.output).toBe(0);
  return result.output.trim().split('\n')[0];
}

async function waitForState(cluster: Cluster, jobId: string, states: string[], timeoutMs: number): Promise<string> {
  return waitFor(
    async () => {
      const s = await cluster.jobs.status(jobId);
      return states.includes(s.state) ? s.state : undefined;
    },
    timeoutMs,
    `job ${jobId} to reach ${states.join('/')}`,
    500,
  ).catch(async (err) => {
    const logs = await cluster.jobs.logs(jobId).catch(() => []);
    throw new Error(
      `${(err as Error).message}\nlearner:\n${cluster.learner.output()}\njob log:\n${logs.join('\n')}\nworker 0:\n${cluster.workers[0].output().slice(-3000)}`,
    );
  });
}

function metricsOf(runDir: string): Array<Record<string, number>> {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((m) => m.step >= 1);
}

describe('learner and two worker processes on a real Redis', () => {
  it('complete three LOOP iterations and record everything a run needs', async () => {
    const { dir, cleanup } = tempDir('cluster');
    const cluster = startCluster('three', dir);
    try {
      const jobId = await submit(cluster, []);
      expect(await waitForState(cluster, jobId, ['completed', 'failed'], 150_000)).toBe('completed');
      const status = await cluster.jobs.status(jobId);
      expect(status.iteration).toBe(3);
      expect(status.policyVersion).toBe(3);
      const runDir = path.join(dir, jobId);
      const metrics = metricsOf(runDir);
      expect(metrics.map((m) => m.step)).toEqual([1, 2, 3]);
      for (const m of metrics) {
        expect(m['rollout/episodes']).toBeGreaterThan(0);
        expect(m['rollout/episodes']).toBeLessThanOrEqual(12); // T·K = 4·3
        expect(m['rollout/duplicates']).toBe(0);
        expect(m['rollout/failed_groups']).toBe(0);
        expect(m['losses/logprob_mismatch']).toBeLessThan(1e-3); // sampler and learner agree
      }
      expect(existsSync(path.join(runDir, 'report.html'))).toBe(true);
      expect(JSON.parse(readFileSync(path.join(runDir, 'config.json'), 'utf8')).name).toBe('tiny');
      expect(readdirSync(path.join(runDir, 'checkpoints'))).toContain('iter-000003');
      expect((await cluster.jobs.metrics(jobId)).length).toBe(3);
      // Two whole groups per iteration are kept for the trajectory viewer, with advantages summing to 0 (LOO).
      const samples = await cluster.jobs.samples(jobId);
      expect(samples.map((s) => s.step)).toEqual([1, 2, 3]);
      for (const sample of samples) {
        expect(sample.groups).toHaveLength(2);
        for (const group of sample.groups) {
          expect(group.rollouts.length).toBe(3);
          expect(Math.abs(group.rollouts.reduce((a, r) => a + r.advantage, 0))).toBeLessThan(1e-9);
          for (const r of group.rollouts) expect(r.trajectory.segments[0].tokens.length).toBe(r.trajectory.segments[0].isOutput.length);
        }
      }
    } finally {
      await cluster.stop();
      cleanup();
    }
  });

  it('redo the group of a worker SIGKILLed mid-group, training on every rollout at most once', async () => {
    const { dir, cleanup } = tempDir('killworker');
    const cluster = startCluster('killworker', dir);
    const queue = new Queue(QUEUES.rollouts, { connection: queueConnection(testRedis.url()), prefix: cluster.prefix });
    try {
      const slow = path.join(REPO, 'test/fixtures/plugins/slow-guess.ts');
      const jobId = await submit(cluster, [
        `env.module=${slow}`,
        'env.name=null',
        'env.options.delayMs=400',
        'train.iterations=2',
        'rollout.stragglerStop.enabled=false',
      ]);
      // Find a group in progress and the worker process holding it.
      const victim = await waitFor(
        async () => {
          const active = await queue.getActive();
          const job = active.find((j) => j.processedBy);
          return job ? { id: job.id!, pid: Number(job.processedBy!.split(':').at(-1)) } : undefined;
        },
        90_000,
        'an active group',
        100,
      );
      const worker = cluster.workers.find((w) => w.child.pid === victim.pid);
      expect(worker, `worker pid ${victim.pid} among ${cluster.workers.map((w) => w.child.pid).join(',')}`).toBeDefined();
      const killedAt = Date.now();
      worker!.child.kill('SIGKILL');
      const redoneAfter = await waitFor(
        async () => ((await (await queue.getJob(victim.id))?.isCompleted()) ? Date.now() - killedAt : undefined),
        60_000,
        'the killed group to be redone',
        200,
      );
      console.info(`killed worker's group completed by another worker ${redoneAfter} ms after the kill`);
      expect(redoneAfter).toBeLessThan(30_000);
      expect(await waitForState(cluster, jobId, ['completed', 'failed'], 120_000)).toBe('completed');
      const metrics = metricsOf(path.join(dir, jobId));
      expect(metrics.map((m) => m.step)).toEqual([1, 2]);
      for (const m of metrics) {
        expect(m['rollout/duplicates']).toBe(0);
        expect(m['rollout/failed_groups']).toBe(0);
        expect(m['rollout/episodes']).toBe(12); // straggler stop off: every group complete, each rollout once
      }
    } finally {
      await queue.close();
      await cluster.stop();
      cleanup();
    }
  });

  it('resume a learner SIGKILLed mid-run from its last checkpoint and finish with the same iteration count', async () => {
    const { dir, cleanup } = tempDir('killlearner');
    const cluster = startCluster('killlearner', dir);
    try {
      const slow = path.join(REPO, 'test/fixtures/plugins/slow-guess.ts');
      const jobId = await submit(cluster, [`env.module=${slow}`, 'env.name=null', 'env.options.delayMs=150', 'train.iterations=5']);
      await waitFor(async () => ((await cluster.jobs.status(jobId)).iteration >= 2 ? true : undefined), 120_000, 'iteration 2', 200);
      cluster.learner.child.kill('SIGKILL');
      await cluster.learner.exited;
      const interrupted = await cluster.jobs.status(jobId);
      expect(interrupted.state).toBe('running');
      const shown = await runCli(['status', jobId, '--redis', testRedis.url(), '--prefix', cluster.prefix]);
      expect(shown.output).toContain(`running (no learner: horizon resume ${jobId})`);
      expect(interrupted.iteration).toBeLessThan(5);
      const resumed = await runCli(['resume', jobId, '--redis', testRedis.url(), '--prefix', cluster.prefix]);
      expect(resumed.code, resumed.output).toBe(0);
      cluster.learner = startCli(['learner', '--redis', testRedis.url(), '--prefix', cluster.prefix, '--runs-dir', dir]);
      expect(await waitForState(cluster, jobId, ['completed', 'failed'], 150_000)).toBe('completed');
      const status = await cluster.jobs.status(jobId);
      expect(status.iteration).toBe(5);
      expect(status.attempt).toBe(2);
      expect((await cluster.jobs.logs(jobId)).some((l) => l.includes('resumed from'))).toBe(true);
      // Each iteration's metrics appear exactly once, in order, in the file and in Redis.
      expect(metricsOf(path.join(dir, jobId)).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
      expect((await cluster.jobs.metrics(jobId)).filter((m) => Number(m.step) >= 1).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await cluster.stop();
      cleanup();
    }
  });
});
