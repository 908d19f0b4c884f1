/**
 * Weighted sums of reward functions: `combineRewards([[exactMatch, 1], [format, 0.1]])`.
 */
import { ConfigError } from '../core/errors.js';
import type { Reward } from './types.js';
import type { RewardFn } from './types.js';

/** One term of a combination: a reward function and its weight. */
export type WeightedReward<History, Task> = readonly [RewardFn<History, Task>, number];

/**
 * A reward function whose total is Σ weight_i · total_i over the terms. Each term's parts and total are
 * kept under the term's namespace — the function's name (`exactMatch/solved`, `exactMatch/total`), or
 * `reward<i>` for an anonymous function; a name used twice gets `#<i>` appended (i = term index).
 * Weights may be any finite number; keep the combined total in [0, 1] if the algorithm expects that
 * (LOOP does not require it, but advantage filters are tuned for that scale).
 */
export function combineRewards<History, Task>(terms: ReadonlyArray<WeightedReward<History, Task>>): RewardFn<History, Task> {
  if (terms.length === 0) throw new ConfigError('combineRewards needs at least one [rewardFn, weight] term');
  const namespaces: string[] = [];
  terms.forEach(([fn, weight], i) => {
    if (typeof fn !== 'function') throw new ConfigError(`combineRewards term ${i}: expected a reward function, got ${typeof fn}`);
    if (!Number.isFinite(weight))
      throw new ConfigError(`combineRewards term ${i} (${fn.name || 'anonymous'}): weight must be a finite number, got ${weight}`);
    const base = fn.name || `reward${i}`;
    namespaces.push(namespaces.includes(base) ? `${base}#${i}` : base);
  });

  return (history, task): Reward => {
    let total = 0;
    const parts: Record<string, number> = {};
    terms.forEach(([fn, weight], i) => {
      const reward = fn(history, task);
      total += weight * reward.total;
      parts[`${namespaces[i]}/total`] = reward.total;
      for (const [part, value] of Object.entries(reward.parts)) parts[`${namespaces[i]}/${part}`] = value;
    });
    return { total, parts };
  };
}
