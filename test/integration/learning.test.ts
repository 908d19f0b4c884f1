/**
 * LOOP actually learns, through the real queue and real processes: on a one-turn bandit whose reward is
 * 1 only for the lucky digit, a warm-started tiny policy goes from saying it about one time in ten to
 * saying it most of the time within 15 iterations. Seeds fix every random choice (tasks, init,
 * sampling), so the run is reproducible.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { iterationMetrics, luckyDigitSets } from '../helpers/lucky-digit.js';
import { REPO, runCli, tempDir } from '../helpers/services.js';

describe('LOOP on the lucky-digit bandit', () => {
  it('raises the reward from its warm-start level to most of the time', async () => {
    const { dir, cleanup } = tempDir('learn');
    try {
      const sets = luckyDigitSets();
      const r = await runCli(
        [
          'train',
          path.join(REPO, 'test/fixtures/configs/tiny.yaml'),
          '--run-dir',
          dir,
          '--no-progress',
          ...sets.flatMap((s) => ['--set', s]),
        ],
        { timeoutMs: 150_000 },
      );
      expect(r.code, r.output).toBe(0);
      const rewards = iterationMetrics(dir).map((m) => m['charts/reward_mean']);
      expect(rewards).toHaveLength(15);
      const first = (rewards[0] + rewards[1] + rewards[2]) / 3;
      const last = (rewards[12] + rewards[13] + rewards[14]) / 3;
      expect(first).toBeLessThan(0.3); // uniform digits after the warm start: ≈ 0.1
      expect(last).toBeGreaterThan(0.6);
    } finally {
      cleanup();
    }
  });
});
