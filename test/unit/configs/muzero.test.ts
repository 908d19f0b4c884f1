/**
 * Algorithm `muzero` in the run config: the `muzero` section with its orchestration fields, no env
 * section (and a clear error when a token-policy algorithm has none), the shipped recipes.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { loadConfigFile, resolveConfig } from '../../../configs/resolve.js';
import { REPO } from '../../helpers/services.js';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('algorithm muzero', () => {
  it('needs no env section and fills the orchestration defaults', () => {
    const c = resolveConfig({ algorithm: 'muzero' });
    expect(c.env).toEqual({ name: undefined, module: undefined, options: {} });
    expect(c.muzero.selfPlay).toEqual({ gamesPerJob: 16, jobsInFlight: 8, jobTimeoutSec: 1800 });
    expect(c.muzero.learner).toEqual({ updatesPerIteration: 32, minReplayPositions: 2048 });
    expect(c.muzero.reanalyse).toEqual({ episodesPerIteration: 0 });
    expect(c.muzero.eval).toEqual({ heldout: true, files: [], maxPrograms: 0, deterministic: true });
    expect(c.muzero.programs.generate.map((g) => [g.count, g.workload.generator])).toEqual([
      [32, 'random'],
      [16, 'transformer'],
      [16, 'convnet'],
    ]);
    // Workload defaults are filled in (the same program on learner and workers).
    expect(c.muzero.programs.generate[0].workload).toMatchObject({ instructions: 48, capacityFraction: 0.5, alignment: 64 });
  });

  it('survives the round trip through a stored config (what learner and workers re-resolve)', () => {
    const c = resolveConfig({ algorithm: 'muzero', muzero: { search: { simulations: 8 } } });
    const { derived: _derived, ...stored } = c;
    const again = resolveConfig(JSON.parse(JSON.stringify(stored)));
    expect(again.muzero).toEqual(c.muzero);
    expect(again.env).toEqual(c.env);
  });

  it('refuses an env section, sft steps, a replay that can never fill and an empty program set', () => {
    expect(errorOf(() => resolveConfig({ algorithm: 'muzero', env: { name: 'toy/guess' } })).message).toMatch(
      /algorithm muzero .* reads no env section; remove env \(it sets toy\/guess\)/,
    );
    expect(errorOf(() => resolveConfig({ algorithm: 'muzero', sft: { steps: 10 } })).message).toContain('sft.steps = 10');
    expect(
      errorOf(() => resolveConfig({ algorithm: 'muzero', muzero: { replay: { capacity: 100 }, learner: { minReplayPositions: 200 } } }))
        .message,
    ).toContain('muzero.learner.minReplayPositions (200) exceeds muzero.replay.capacity (100)');
    expect(errorOf(() => resolveConfig({ algorithm: 'muzero', muzero: { programs: { generate: [] } } })).message).toContain(
      'muzero.programs: no training programs',
    );
    expect(errorOf(() => resolveConfig({ algorithm: 'muzero', muzero: { selfPlay: { gamesPerJob: 0 } } })).message).toContain(
      'muzero.selfPlay.gamesPerJob',
    );
    expect(
      errorOf(() =>
        resolveConfig({ algorithm: 'muzero', muzero: { programs: { generate: [{ count: 2, workload: { generator: 'lstm' } }] } } }),
      ).message,
    ).toContain('muzero.programs.generate.0.workload');
  });

  it('token-policy algorithms still need exactly one of env.name / env.module', () => {
    expect(errorOf(() => resolveConfig({ algorithm: 'loop' })).message).toMatch(
      /env: algorithm loop trains a token policy on an environment: set env\.name .*toy\/guess.* or env\.module/,
    );
    expect(errorOf(() => resolveConfig({})).message).toContain('algorithm loop trains a token policy');
    expect(errorOf(() => resolveConfig({ algorithm: 'grpo', env: {} })).message).toContain('exactly one of env.name');
  });
});

describe('the mallocMuZero recipes', () => {
  it.each(['configs/mallocmuzero-tiny.yaml', 'configs/mallocmuzero-small.yaml'])('%s resolves', (file) => {
    const c = loadConfigFile(path.join(REPO, file));
    expect(c.algorithm).toBe('muzero');
    expect(c.muzero.learner.minReplayPositions).toBeLessThanOrEqual(c.muzero.replay.capacity);
    // Training seeds stay below the held-out set's (≥ 1000).
    for (const g of c.muzero.programs.generate) expect(g.workload.seed + g.count - 1).toBeLessThan(1000);
  });

  it('the small recipe is the spec’s small scale: K = 32, 16 simulations, batch 256, Adam 3e-4', () => {
    const c = loadConfigFile(path.join(REPO, 'configs/mallocmuzero-small.yaml'));
    expect(c.muzero.game.candidates).toBe(32);
    expect(c.muzero.search).toMatchObject({ algorithm: 'gumbel', simulations: 16 });
    expect(c.muzero.train).toMatchObject({ batchSize: 256, learningRate: 3e-4 });
    expect(c.workers.count * c.workers.concurrency).toBeLessThan(c.muzero.selfPlay.jobsInFlight);
  });
});
