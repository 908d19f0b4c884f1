/** The shipped toolworld recipes load, and their episodes fit their token caps. */
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../../configs/resolve.js';
import { validateEnvOptions } from '../../../envs/loader.js';
import { runSolver, toolworldEnv } from '../../../envs/toolworld/env.js';
import { taskCount } from '../../../envs/toolworld/tasks.js';
import { REPO } from '../../helpers/services.js';

describe.each(['configs/loop-toolworld-tiny.yaml', 'configs/loop-toolworld.yaml'])('%s', (file) => {
  const config = loadConfigFile(`${REPO}/${file}`);
  const options = validateEnvOptions(toolworldEnv, config.env.options);

  it('names valid toolworld options with train and test-normal tasks', () => {
    expect(config.env.name).toBe('toolworld');
    expect(taskCount('train', options)).toBeGreaterThan(0);
    expect(taskCount('test-normal', options)).toBeGreaterThan(0);
  });

  it('fits the prompt and every demonstrated turn in the rollout caps', () => {
    const { rollout } = config;
    for (let index = 0; index < 60; index++) {
      const turns = runSolver({ split: 'train', index, seed: config.seed }, options, { mistake: 0, slip: 0 }).demonstration.turns;
      expect(Buffer.byteLength(turns[0].text) + 1 + rollout.maxTokensPerTurn).toBeLessThanOrEqual(config.derived.maxContextTokens);
      for (const turn of turns.filter((t) => t.role === 'policy'))
        expect(Buffer.byteLength(turn.text) + 1, turn.text).toBeLessThanOrEqual(rollout.maxTokensPerTurn);
      expect((turns.length - 1) / 2).toBeLessThanOrEqual(Math.min(rollout.maxTurns, options.maxTurns));
    }
  });
});
