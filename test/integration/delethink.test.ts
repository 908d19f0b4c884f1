/**
 * Delethink and LongCoT end to end on CPU through the real queue (`horizon train`: embedded redis-server,
 * a learner, a worker process), a tiny model on reasoning/running-sum, then `horizon eval` with chunk caps
 * beyond the training budget. What must hold whatever the (untrained) policy writes: chunk counts within
 * the cap I, trace lengths within the thinking budget, one metrics record per iteration and an eval record,
 * and an accuracy-vs-budget table for every requested cap.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runCli, tempDir } from '../helpers/services.js';

const TINY = [
  '--set',
  'model.dModel=32',
  '--set',
  'model.nLayers=1',
  '--set',
  'model.nHeads=2',
  '--set',
  'sft.steps=6',
  '--set',
  'sft.batchSize=4',
  '--set',
  'train.iterations=2',
  '--set',
  'train.evalEvery=2',
  '--set',
  'train.evalTasks=4',
  '--set',
  'rollout.tasksPerIteration=2',
  '--set',
  'rollout.groupSize=4',
  '--set',
  'loop.minibatchSize=4',
  '--set',
  'workers.count=1',
  '--set',
  'backend=wasm',
];

function records(runDir: string): Record<string, number>[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe.each([
  ['delethink', 'configs/delethink-sum.yaml'],
  ['longcot', 'configs/longcot-sum.yaml'],
])('%s through the queue', (context, config) => {
  it('trains two iterations and evaluates accuracy against thinking budget', async () => {
    const { dir, cleanup } = tempDir(`e2e-${context}`);
    try {
      const r = await runCli(['train', path.join(REPO, config), '--run-dir', dir, '--no-progress', '--no-dashboard', ...TINY], {
        timeoutMs: 150_000,
      });
      expect(r.code, r.output).toBe(0);
      const its = records(dir).filter((m) => m.step >= 1 && m['charts/reward_mean'] !== undefined);
      expect(its.map((m) => m.step)).toEqual([1, 2]);
      for (const m of its) {
        // C = 48, m = 24, I = 4: at most 4 chunks and 48 + 3·24 = 120 thinking tokens (+ end-of-turn).
        const maxChunks = context === 'delethink' ? 4 : 1;
        expect(m['charts/episode_turns']).toBeGreaterThanOrEqual(1);
        expect(m['charts/episode_turns']).toBeLessThanOrEqual(maxChunks);
        expect(m['rollout/episodes']).toBe(8);
        expect(m['losses/steps']).toBeGreaterThan(0);
        expect(Number.isFinite(m['losses/policy_loss'])).toBe(true);
      }
      // An untrained policy rarely stops: Delethink traces run past one chunk.
      if (context === 'delethink') expect(Math.max(...its.map((m) => m['charts/episode_turns']))).toBeGreaterThan(1);
      expect(records(dir).some((m) => m['eval/success_rate'] !== undefined)).toBe(true);

      const ev = await runCli(['eval', dir, '--tasks', '3', '--chunks', '1,4,8', '--no-baselines', '--set', 'env.options.length=16'], {
        timeoutMs: 120_000,
      });
      expect(ev.code, ev.output).toBe(0);
      expect(ev.output).toMatch(/chunks +budget +ckpt 2 accuracy/);
      for (const [chunks, budget] of [
        [1, 48],
        [4, 120],
        [8, 216],
      ])
        expect(ev.output).toMatch(new RegExp(`\\n${chunks} +${budget} +\\d+\\.\\d%`));
    } finally {
      cleanup();
    }
  });
});
