/**
 * horizon's GPU engine (here on Mesa's lavapipe) through the real queue and real worker processes: the
 * learner trains on it and the workers decode on it. LOOP learns the lucky-digit bandit as it does on
 * tfjs (test/integration/learning), the learner's recomputed log-probs match the workers' sampled ones,
 * and the engine's checkpoint plays as well as training ended, evaluated by tfjs on wasm and by the
 * engine's decoder alike (the same episodes: the decoder samples exactly what the tfjs sampler does).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { iterationMetrics, luckyDigitSets } from '../helpers/lucky-digit.js';
import { REPO, runCli, tempDir } from '../helpers/services.js';
import { requireRuntime } from '../unit/engine/helpers.js';

const rt = await requireRuntime();

describe.skipIf(!rt)('LOOP on the GPU engine', () => {
  it('learns the lucky digit through the queue, and its checkpoint evaluates on wasm', async () => {
    const { dir, cleanup } = tempDir('engine-learn');
    try {
      const sets = ['backend=engine', ...luckyDigitSets()];
      const r = await runCli(
        [
          'train',
          path.join(REPO, 'test/fixtures/configs/tiny.yaml'),
          '--run-dir',
          dir,
          '--no-progress',
          '--no-dashboard',
          ...sets.flatMap((s) => ['--set', s]),
        ],
        {
          timeoutMs: 150_000,
        },
      );
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/backend: engine \(/);
      const metrics = iterationMetrics(dir);
      const rewards = metrics.map((m) => m['charts/reward_mean']);
      expect(rewards).toHaveLength(15);
      expect(metrics.reduce((a, m) => a + m['losses/steps'], 0)).toBeGreaterThan(30); // the engine took real steps
      // Sampled (worker, engine decoder) vs recomputed (learner, engine training forward) log-probs.
      for (const m of metrics) expect(m['losses/logprob_mismatch']).toBeLessThan(1e-4);
      for (const k of [0, 1]) expect(readFileSync(path.join(dir, `worker-${k}.log`), 'utf8')).toMatch(/backend engine \(decoding on /);
      const first = (rewards[0] + rewards[1] + rewards[2]) / 3;
      const last = (rewards[12] + rewards[13] + rewards[14]) / 3;
      expect(first).toBeLessThan(0.3);
      expect(last).toBeGreaterThan(0.6);

      // The same checkpoint evaluated by tfjs on wasm and by the engine's decoder: the same episodes.
      const scores: Record<string, unknown>[] = [];
      for (const backend of ['wasm', 'engine']) {
        const out = path.join(dir, `eval-${backend}.json`);
        const e = await runCli(['eval', dir, '--checkpoint', 'last', '--backend', backend, '--tasks', '50', '--json', out], {
          timeoutMs: 60_000,
        });
        expect(e.code, e.output).toBe(0);
        const evaluated = JSON.parse(readFileSync(out, 'utf8')) as {
          evals: { result: { policy: { successRate: number } & Record<string, unknown> } }[];
        };
        expect(evaluated.evals[0].result.policy.successRate).toBeGreaterThan(0.6);
        scores.push(evaluated.evals[0].result.policy);
      }
      expect(scores[1]).toEqual(scores[0]);
    } finally {
      cleanup();
    }
  });
});
