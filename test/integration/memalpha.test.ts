/**
 * Mem-α end to end on CPU through the real queue (`horizon train`: embedded redis-server, a learner, a
 * worker process) with a tiny writer, then `horizon eval` against the baselines. What must hold whatever
 * the (barely trained) writer writes: one sample per chunk (3 turns per episode), per-chunk GRPO updates
 * that ran, and the baselines' rows next to the writer's.
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
  'sft.steps=4',
  '--set',
  'sft.batchSize=2',
  '--set',
  'rollout.maxTokensPerTurn=48',
  '--set',
  'train.iterations=2',
  '--set',
  'train.evalEvery=0',
  '--set',
  'rollout.tasksPerIteration=2',
  '--set',
  'rollout.groupSize=3',
  '--set',
  'loop.minibatchSize=8',
  '--set',
  'workers.count=1',
  '--set',
  'backend=wasm',
];

describe('Mem-α through the queue', () => {
  it('trains two iterations on per-chunk samples and evaluates against the baselines', async () => {
    const { dir, cleanup } = tempDir('e2e-memalpha');
    try {
      const r = await runCli(
        ['train', path.join(REPO, 'configs/memalpha-tiny.yaml'), '--run-dir', dir, '--no-progress', '--no-dashboard', ...TINY],
        { timeoutMs: 200_000 },
      );
      expect(r.code, r.output).toBe(0);
      const its = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((m) => m.step >= 1);
      expect(its.map((m) => m.step)).toEqual([1, 2]);
      for (const m of its) {
        expect(m['charts/episode_turns']).toBe(3); // one fresh-context turn per chunk
        expect(m['rollout/episodes']).toBe(6);
        expect(m['losses/steps']).toBeGreaterThan(0);
        for (const k of ['rewards/r1', 'rewards/r2_mean', 'rewards/r3']) expect(Number.isFinite(m[k]), k).toBe(true);
        expect(m['rewards/r1']).toBeGreaterThanOrEqual(0);
        expect(m['rewards/r1']).toBeLessThanOrEqual(1);
      }
      const ev = await runCli(['eval', dir, '--tasks', '4', '--split', 'eval'], { timeoutMs: 150_000 });
      expect(ev.code, ev.output).toBe(0);
      for (const row of ['checkpoint 2', 'long-context', 'rag-top-k', 'heuristic'])
        expect(ev.output).toMatch(new RegExp(`\\n${row} +4 +\\d\\.\\d{3}`));
      expect(ev.output).toMatch(/qa\/synthetic\/ar/);
    } finally {
      cleanup();
    }
  });
});
