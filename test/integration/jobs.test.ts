/**
 * Recorded trajectory samples in Redis: the compact index and the by-step lookup read what was pushed,
 * the newest record of a redone iteration wins, and data recorded without an index is still served.
 */
import { describe, expect, it } from 'vitest';
import { JobControl } from '../../rollout/jobs.js';
import { jobKeys, type TrajectorySample } from '../../rollout/protocol.js';
import { uniquePrefix, useTestRedis } from '../helpers/services.js';

const testRedis = useTestRedis();

function sample(step: number, reward: number): TrajectorySample {
  const trajectory = {
    rolloutId: `j/1/${step}/0/0`,
    groupId: `j/1/${step}/0`,
    policyVersion: step - 1,
    segments: [{ tokens: [256, 65, 257], isOutput: [0, 1, 1] as (0 | 1)[], logProbs: [0, -0.5, -0.1], turn: [-1, 0, 0] }],
    reward: { total: reward, parts: {} },
    finishReason: 'done' as const,
    turns: 1,
    retries: 0,
    wallMs: 1,
  };
  return {
    step,
    groups: [{ groupIndex: 0, task: { split: 'train', index: step, seed: 1 }, rollouts: [{ trajectory, advantage: 0, trained: false }] }],
  };
}

describe('recorded samples', () => {
  it('are listed from the index and looked up by step, newest record first', async () => {
    const jobs = new JobControl(testRedis.client(), testRedis.url(), { prefix: uniquePrefix('samples') });
    for (const [step, reward] of [
      [1, 0.1],
      [2, 0.2],
      [3, 0.3],
      [2, 0.9],
    ] as const)
      await jobs.pushSample('j', sample(step, reward));
    expect((await jobs.sampleIndex('j')).map((s) => s.step)).toEqual([1, 2, 3, 2]);
    expect((await jobs.sampleIndex('j'))[0].groups).toEqual([{ groupIndex: 0, task: { split: 'train', index: 1, seed: 1 }, rollouts: 1 }]);
    expect((await jobs.sampleAt('j', 2))!.groups[0].rollouts[0].trajectory.reward.total).toBe(0.9);
    expect((await jobs.sampleAt('j', 3))!.groups[0].rollouts[0].trajectory.reward.total).toBe(0.3);
    expect(await jobs.sampleAt('j', 7)).toBeUndefined();
    // Without the index (data from an older build) both still answer, from the full records.
    await testRedis.client().del(jobKeys(jobs.prefix, 'j').samplesIndex);
    expect((await jobs.sampleIndex('j')).map((s) => s.step)).toEqual([1, 2, 3, 2]);
    expect((await jobs.sampleAt('j', 2))!.groups[0].rollouts[0].trajectory.reward.total).toBe(0.9);
    await jobs.close();
  });
});
