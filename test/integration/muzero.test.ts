/**
 * mallocMuZero through the product, on CPU: `horizon train` on the tiny recipe (embedded redis-server, the
 * learner, one worker process playing self-play jobs from the queue), then `horizon eval` on a few
 * programs; Ctrl-C and `horizon resume` (the replay buffer is rebuilt from fresh self-play); and a
 * malformed self-play payload on the queue, failed without retries.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { checkMapping } from '../../envs/malloc/checker.js';
import { loadProgramFile } from '../../envs/malloc/loaders.js';
import { PROTOCOL_VERSION, QUEUES, jobKeys } from '../../rollout/protocol.js';
import { queueConnection } from '../../rollout/queue-connection.js';
import { RolloutWorker } from '../../rollout/worker.js';
import { REPO, runCli, startCli, tempDir, uniquePrefix, useTestRedis, waitFor } from '../helpers/services.js';

const CONFIG = path.join(REPO, 'configs/mallocmuzero-tiny.yaml');
const SMALL = [
  'muzero.learner.minReplayPositions=64',
  'muzero.selfPlay.gamesPerJob=4',
  'muzero.train.batchSize=32',
  // Relative to the config file (configs/).
  'muzero.eval.files=[../data/malloc/heldout/random-00.json, ../examples/data/malloc-sample.csv]',
].flatMap((s) => ['--set', s]);

const testRedis = useTestRedis();

function records(runDir: string): Record<string, number>[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

const iterationsOf = (runDir: string) => records(runDir).filter((m) => m['charts/reward_mean'] !== undefined);

describe('horizon train / eval on a muzero config', () => {
  it('trains through the queue with the learner owning the replay, then evaluates checkpoints per program', async () => {
    const { dir, cleanup } = tempDir('muzero');
    try {
      const sets = ['train.iterations=3', 'train.evalEvery=3', 'train.checkpointEvery=2', 'muzero.learner.updatesPerIteration=4'].flatMap(
        (s) => ['--set', s],
      );
      const r = await runCli(['train', CONFIG, '--run-dir', dir, '--no-progress', '--no-dashboard', ...SMALL, ...sets], {
        timeoutMs: 120_000,
      });
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/muzero on the malloc game, 3 iterations, 1 workers/);
      expect(r.output).toMatch(/reward \d\.\d{3} → \d\.\d{3}, success \d+% → \d+%/);
      const its = iterationsOf(dir);
      expect(its.map((m) => m.step)).toEqual([1, 2, 3]);
      for (const m of its) {
        expect(m['charts/reward_mean']).toBeGreaterThan(0); // placing buffers always saves time on these programs
        expect(m['charts/reward_mean']).toBeLessThan(1);
        expect(m['charts/success_rate']).toBeGreaterThanOrEqual(0);
        expect(m['charts/success_rate']).toBeLessThanOrEqual(1);
        expect(m['losses/steps']).toBe(4);
        expect(Number.isFinite(m['losses/loss'])).toBe(true);
        expect(m['replay/positions']).toBeGreaterThanOrEqual(64);
        expect(m['rollout/failed_jobs']).toBe(0);
        expect(m['rollout/duplicates']).toBe(0);
        expect(m['rollout/episodes_per_s']).toBeGreaterThan(0);
        expect(m['time/elapsed_s']).toBeGreaterThan(0);
        // Games are played by the version current when their job was queued: never a newer one.
        if (m['selfplay/staleness'] !== undefined) expect(m['selfplay/staleness_max']).toBeGreaterThanOrEqual(0);
      }
      // Step 1 waited for minReplayPositions (4-game jobs of 16–24 buffers: at least one job).
      expect(its[0]['rollout/episodes']).toBeGreaterThanOrEqual(4);
      expect(its[0]['selfplay/staleness']).toBe(0);
      const evalRecord = records(dir).find((m) => m['eval/speedup_mean'] !== undefined);
      expect(evalRecord).toMatchObject({ step: 3, 'eval/programs': 2 });
      expect(evalRecord!['eval/at_least_as_good']).toBeGreaterThanOrEqual(0);
      expect(readdirSync(path.join(dir, 'checkpoints'))).toEqual(['iter-000000', 'iter-000002', 'iter-000003']);
      for (const f of ['config.json', 'report.html', 'worker-0.log']) expect(existsSync(path.join(dir, f)), f).toBe(true);

      const json = path.join(dir, 'eval.json');
      const programs = ['data/malloc/heldout/random-00.json', 'data/malloc/heldout/convnet-00.json', 'examples/data/malloc-sample.csv'];
      const ev = await runCli(['eval', dir, '--checkpoint', '0', '--checkpoint', 'last', '--programs', ...programs, '--json', json], {
        timeoutMs: 60_000,
      });
      expect(ev.code, ev.output).toBe(0);
      expect(ev.output).toMatch(
        /checkpoint 0: 3 programs, gumbel search, 8 simulations, learned dynamics, no search noise; 3\/3 mappings pass the checker/,
      );
      expect(ev.output).toMatch(/checkpoint 3: 3 programs, .*3\/3 mappings pass the checker/);
      expect(ev.output).toContain('| program | buffers | baseline time | agent time | speed-up |');
      for (const name of ['random-00', 'convnet-00', 'malloc-sample'])
        expect(ev.output).toMatch(new RegExp(`\\| ${name} \\| \\d+ \\| \\d+\\.\\d \\| \\d+\\.\\d \\| [+-]\\d+\\.\\d\\d % \\|`));
      expect(ev.output).toMatch(
        /speed-up over 3 programs: mean [+-]\d+\.\d\d %, median [+-]\d+\.\d\d %, best [+-]\d+\.\d\d %; agent at least as good on \d+ %/,
      );
      // Every mapping the agent produced passes the checker, and the speed-ups follow from the times.
      const saved = JSON.parse(readFileSync(json, 'utf8'));
      expect(saved.evals.map((e: { checkpoint: number }) => e.checkpoint)).toEqual([0, 3]);
      for (const e of saved.evals) {
        programs.forEach((file, i) => {
          const { compiled } = loadProgramFile(path.join(REPO, file), { capacityFraction: 0.5 });
          expect(checkMapping(compiled, e.result.mappings[i]).ok).toBe(true);
          const row = e.result.rows[i];
          expect(row.speedup).toBeCloseTo(row.baselineTime / row.agentTime - 1, 12);
        });
      }
    } finally {
      cleanup();
    }
  });

  it('continues after Ctrl-C with `horizon resume` from the checkpoint, refilling the replay from self-play', async () => {
    const { dir, cleanup } = tempDir('muzero-resume');
    try {
      const sets = ['train.iterations=4', 'train.checkpointEvery=2', 'muzero.learner.updatesPerIteration=25'].flatMap((s) => ['--set', s]);
      const run = startCli(['train', CONFIG, '--run-dir', dir, '--no-progress', '--no-dashboard', ...SMALL, ...sets]);
      await waitFor(
        () => (existsSync(path.join(dir, 'checkpoints', 'iter-000002')) ? true : undefined),
        90_000,
        'the checkpoint of iteration 2',
      );
      run.child.kill('SIGINT');
      expect(await run.exited, run.output()).toBe(130);
      const jobId = readFileSync(path.join(dir, 'job-id'), 'utf8').trim();
      const resumed = await runCli(['resume', jobId, '--run-dir', dir, '--no-progress', '--no-dashboard'], { timeoutMs: 120_000 });
      expect(resumed.code, resumed.output).toBe(0);
      expect(resumed.output).toMatch(
        /resumed from .*iter-0000\d\d at iteration \d; the replay buffer starts empty and refills from self-play/,
      );
      const its = iterationsOf(dir);
      expect(its.map((m) => m.step)).toEqual([1, 2, 3, 4]);
      const from = Number(/at iteration (\d)/.exec(resumed.output)![1]);
      // The first iteration after the resume waited for fresh games: its replay holds only this attempt's.
      const first = its[from];
      expect(first['replay/episodes']).toBe(first['rollout/episodes']);
      expect(first['time/wait_s']).toBeGreaterThan(0);
    } finally {
      cleanup();
    }
  });
});

describe('horizon cancel on a muzero job', () => {
  it('stops the learner at its next iteration and leaves the job cancelled', async () => {
    const { dir, cleanup } = tempDir('muzero-cancel');
    const prefix = uniquePrefix('cancel');
    try {
      const sets = ['train.iterations=200', 'muzero.learner.updatesPerIteration=2'].flatMap((s) => ['--set', s]);
      const run = startCli([
        'train',
        CONFIG,
        '--run-dir',
        dir,
        '--no-progress',
        '--no-dashboard',
        '--redis',
        testRedis.url(),
        '--prefix',
        prefix,
        ...SMALL,
        ...sets,
      ]);
      await waitFor(
        () => (existsSync(path.join(dir, 'metrics.jsonl')) && iterationsOf(dir).length >= 1 ? true : undefined),
        60_000,
        'the first iteration',
      );
      const jobId = readFileSync(path.join(dir, 'job-id'), 'utf8').trim();
      const cancel = await runCli(['cancel', jobId, '--redis', testRedis.url(), '--prefix', prefix]);
      expect(cancel.output).toContain(`${jobId}: cancelling`);
      expect(await run.exited, run.output()).toBe(1);
      expect(run.output()).toMatch(/cancelled: run directory/);
      expect(await testRedis.client().hmget(jobKeys(prefix, jobId).status, 'state', 'algorithm')).toEqual(['cancelled', 'muzero']);
      expect(iterationsOf(dir).length).toBeLessThan(200);
    } finally {
      cleanup();
    }
  });
});

describe('a malformed self-play payload on the rollouts queue', () => {
  it('is failed without retries, naming the problem; a self-play job of a job that is not running is skipped', async () => {
    const prefix = uniquePrefix('selfplay');
    const queue = new Queue(QUEUES.rollouts, { connection: queueConnection(testRedis.url()), prefix });
    const worker = new RolloutWorker({ redisUrl: testRedis.url(), prefix, log: () => undefined });
    await worker.start();
    try {
      const bad = await queue.add(
        'selfplay',
        {
          v: PROTOCOL_VERSION,
          kind: 'selfplay',
          jobId: 'x',
          attempt: 1,
          jobIndex: 0,
          policyVersion: 0,
          programs: [],
          config: {},
          configDir: '/',
        },
        { attempts: 3 },
      );
      const stale = await queue.add(
        'selfplay',
        {
          v: PROTOCOL_VERSION,
          kind: 'selfplay',
          jobId: 'gone',
          attempt: 1,
          jobIndex: 0,
          policyVersion: 0,
          programs: [{ id: 'p', workload: { generator: 'random' } }],
          config: {},
          configDir: '/',
        },
        { attempts: 3 },
      );
      const failedReason = await waitFor(
        async () => {
          const job = await queue.getJob(bad.id!);
          return (await job?.isFailed()) ? job!.failedReason : undefined;
        },
        20_000,
        'the malformed job to fail',
      );
      expect(failedReason).toContain('malformed self-play job');
      expect(failedReason).toContain('programs');
      expect((await queue.getJob(bad.id!))!.attemptsMade).toBe(1); // unrecoverable: not retried
      const skipped = await waitFor(
        async () => {
          const job = await queue.getJob(stale.id!);
          return (await job?.isCompleted()) ? job!.returnvalue : undefined;
        },
        20_000,
        'the stale job to be skipped',
      );
      expect(skipped).toMatchObject({ selfPlayJob: 'gone.a1.s0', discarded: true });
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});
