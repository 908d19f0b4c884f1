/**
 * The real CLI end to end: `horizon train` on a tiny config (embedded redis-server, learner, two worker
 * processes), then Ctrl-C in the middle of a run — everything it started stops — and a local
 * `horizon resume` that finishes the job from its checkpoint.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runCli, startCli, tempDir, waitFor } from '../helpers/services.js';

const TINY = path.join(REPO, 'test/fixtures/configs/tiny.yaml');
const SLOW = path.join(REPO, 'test/fixtures/plugins/slow-guess.ts');

/** Pids of processes whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.includes(needle) && state !== 'Z') pids.push(Number(entry));
    } catch {
      // The process exited while we looked.
    }
  }
  return pids;
}

function metricSteps(runDir: string): number[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).step as number)
    .filter((s) => s >= 1);
}

describe('horizon train', () => {
  it('runs a tiny job end to end and leaves a complete run directory', async () => {
    const { dir, cleanup } = tempDir('e2e');
    try {
      const r = await runCli(['train', TINY, '--run-dir', dir, '--no-progress'], { timeoutMs: 150_000 });
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/redis-server on redis:\/\/127\.0\.0\.1:\d+ \(AOF in /);
      expect(r.output).toMatch(/completed: run directory/);
      expect(r.output).toMatch(/reward \d\.\d{3} → \d\.\d{3}/);
      for (const f of ['config.json', 'metrics.jsonl', 'report.html', 'job-id', 'worker-0.log', 'worker-1.log'])
        expect(existsSync(path.join(dir, f)), f).toBe(true);
      expect(readdirSync(path.join(dir, 'redis', 'appendonlydir')).length).toBeGreaterThan(0);
      expect(metricSteps(dir)).toEqual([1, 2, 3]);
      expect(readdirSync(path.join(dir, 'checkpoints'))).toContain('iter-000003');
      expect(readFileSync(path.join(dir, 'report.html'), 'utf8')).toContain('"title":"Reward"');
      const port = /127\.0\.0\.1:(\d+)/.exec(r.output)![1];
      expect(processesMentioning(`127.0.0.1:${port}`)).toEqual([]); // workers and redis are gone
      // `horizon eval` on the warm start and the last checkpoint of the run.
      const json = path.join(dir, 'eval.json');
      const ev = await runCli(['eval', dir, '--checkpoint', '0', '--checkpoint', 'last', '--tasks', '6', '--json', json]);
      expect(ev.code, ev.output).toBe(0);
      expect(ev.output).toMatch(/checkpoint 0 +6 +\d\.\d{3} +\d+\.\d%/);
      expect(ev.output).toMatch(/checkpoint 3 +6 /);
      const saved = JSON.parse(readFileSync(json, 'utf8'));
      expect(saved.evals.map((e: { checkpoint: number }) => e.checkpoint)).toEqual([0, 3]);
      // A second run from this run's weights (train.initFrom): no SFT stage, starts from checkpoint 3.
      const { dir: dir2, cleanup: cleanup2 } = tempDir('e2e-init');
      try {
        const r2 = await runCli(
          [
            'train',
            TINY,
            '--run-dir',
            dir2,
            '--no-progress',
            '--no-dashboard',
            '--set',
            `train.initFrom=${dir}`,
            '--set',
            'train.iterations=1',
          ],
          { timeoutMs: 120_000 },
        );
        expect(r2.code, r2.output).toBe(0);
        expect(r2.output).toMatch(/initialised from .*iter-000003 \(iteration 3 of that run\); SFT skipped/);
        expect(readFileSync(path.join(dir2, 'metrics.jsonl'), 'utf8')).not.toContain('sft/nll');
      } finally {
        cleanup2();
      }
      const bad = await runCli(['eval', dir, '--checkpoint', '7']);
      expect(bad.code).toBe(1);
      expect(bad.output).toMatch(/no checkpoint "7" .*available: 0, 1, 2, 3/);
    } finally {
      cleanup();
    }
  });

  it("stops the job with the workers' last log lines when every worker keeps crashing", async () => {
    const { dir, cleanup } = tempDir('e2e-crash');
    try {
      const r = await runCli(['train', TINY, '--run-dir', dir, '--no-progress', '--no-dashboard'], {
        env: { HORIZON_BIN: path.join(dir, 'missing-worker.js') },
        timeoutMs: 120_000,
      });
      expect(r.code, r.output).toBe(1);
      expect(r.output).toMatch(/every rollout worker exited 4 times; stopping the job\. From .*worker-\d\.log/);
      expect(r.output).toContain('missing-worker.js');
      expect(r.output).toMatch(/cancelled: every rollout worker crashed/);
    } finally {
      cleanup();
    }
  });

  it('resumes from an older checkpoint after the dead attempt published newer weights (learning env, so the weights differ)', async () => {
    const { dir, cleanup } = tempDir('resume-weights');
    try {
      const lengthEnv = path.join(REPO, 'test/fixtures/plugins/length-reward.ts');
      const sets = [
        'env.name=null',
        `env.module=${lengthEnv}`,
        'env.options={delayMs: 60}',
        'train.iterations=40',
        'train.checkpointEvery=1000',
        'optim.lr=0.01',
        'rollout.maxTurns=1',
        'sft.steps=0',
      ].flatMap((s) => ['--set', s]);
      const run = startCli(['train', TINY, '--run-dir', dir, '--no-progress', '--no-dashboard', ...sets]);
      // Only the warm start (iteration 0) is checkpointed; versions 1..n are published before the kill.
      await waitFor(
        () => (existsSync(path.join(dir, 'metrics.jsonl')) && metricSteps(dir).length >= 3 ? true : undefined),
        120_000,
        'three iterations',
      );
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(130);
      const jobId = readFileSync(path.join(dir, 'job-id'), 'utf8').trim();
      const resumed = await runCli(['resume', jobId, '--run-dir', dir, '--no-progress', '--no-dashboard'], { timeoutMs: 150_000 });
      expect(resumed.code, resumed.output).toBe(0);
      expect(resumed.output).toContain('resumed from');
      expect(metricSteps(dir)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    } finally {
      cleanup();
    }
  });

  it('stops redis and the workers on Ctrl-C, and `horizon resume` finishes the job from its checkpoint', async () => {
    const { dir, cleanup } = tempDir('sigint');
    try {
      const sets = ['env.name=null', `env.module=${SLOW}`, 'env.options.delayMs=150', 'train.iterations=4'].flatMap((s) => ['--set', s]);
      const run = startCli(['train', TINY, '--run-dir', dir, '--no-progress', ...sets]);
      await waitFor(
        () => (existsSync(path.join(dir, 'metrics.jsonl')) && metricSteps(dir).length >= 1 ? true : undefined),
        120_000,
        'the first iteration',
      );
      const port = /127\.0\.0\.1:(\d+)/.exec(run.output())![1];
      expect(processesMentioning(`127.0.0.1:${port}`).length).toBeGreaterThanOrEqual(2);
      run.child.kill('SIGINT');
      const code = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
      expect(code, run.output()).toBe(130);
      expect(run.output()).toContain(`horizon resume`);
      await waitFor(() => (processesMentioning(`127.0.0.1:${port}`).length === 0 ? true : undefined), 10_000, 'redis and workers to exit');
      const jobId = readFileSync(path.join(dir, 'job-id'), 'utf8').trim();
      const resumed = await runCli(['resume', jobId, '--run-dir', dir, '--no-progress'], { timeoutMs: 150_000 });
      expect(resumed.code, resumed.output).toBe(0);
      expect(resumed.output).toContain('resumed from');
      expect(metricSteps(dir)).toEqual([1, 2, 3, 4]);
    } finally {
      cleanup();
    }
  });
});
