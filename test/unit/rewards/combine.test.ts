import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import type { Reward } from '../../../envs/types.js';
import { combineRewards } from '../../../rewards/combine.js';

type History = readonly string[];
type Task = { readonly answer: string };

function exactMatch(history: History, task: Task): Reward {
  const hit = history.at(-1) === task.answer ? 1 : 0;
  return { total: hit, parts: { hit } };
}

function brevity(history: History): Reward {
  const turns = history.length;
  return { total: 1 / turns, parts: { turns } };
}

describe('combineRewards', () => {
  it('sums weighted totals and namespaces each term’s parts by the function name', () => {
    const reward = combineRewards<History, Task>([
      [exactMatch, 1],
      [brevity, 0.1],
    ]);
    // 1·1 + 0.1·(1/4) = 1.025
    expect(reward(['a', 'b', 'c', 'yes'], { answer: 'yes' })).toEqual({
      total: 1.025,
      parts: { 'exactMatch/total': 1, 'exactMatch/hit': 1, 'brevity/total': 0.25, 'brevity/turns': 4 },
    });
    // 1·0 + 0.1·(1/2) = 0.05
    expect(reward(['a', 'no'], { answer: 'yes' }).total).toBeCloseTo(0.05, 12);
  });

  it('allows negative weights (penalties)', () => {
    const reward = combineRewards<History, Task>([
      [exactMatch, 1],
      [brevity, -0.5],
    ]);
    expect(reward(['yes', 'yes'], { answer: 'yes' }).total).toBe(0.75);
  });

  it('names anonymous functions by position and disambiguates repeated names', () => {
    const reward = combineRewards<History, Task>([
      [exactMatch, 1],
      [exactMatch, 2],
      [() => ({ total: 0.5, parts: {} }), 1],
    ]);
    expect(reward(['yes'], { answer: 'yes' })).toEqual({
      total: 3.5,
      parts: { 'exactMatch/total': 1, 'exactMatch/hit': 1, 'exactMatch#1/total': 1, 'exactMatch#1/hit': 1, 'reward2/total': 0.5 },
    });
  });

  it('rejects an empty list and non-finite weights', () => {
    expect(() => combineRewards([])).toThrow(ConfigError);
    expect(() => combineRewards<History, Task>([[exactMatch, Number.NaN]])).toThrow(/exactMatch.*finite/);
  });
});
